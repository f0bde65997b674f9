"""Plain model code (torch, numpy, scipy); nothing here imports Kedro."""

"""General recommenders: EASE and Multi-VAE, tuned by Optuna."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

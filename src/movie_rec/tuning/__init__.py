"""Optuna tuning of the first-stage models: ``studies`` (a study's identity, search space,
stop rule and resuming) and ``storage`` (where studies live). No Kedro."""

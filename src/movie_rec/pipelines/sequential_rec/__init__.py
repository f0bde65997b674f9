"""Sequential recommenders: the models of the registry that read the order of a history."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

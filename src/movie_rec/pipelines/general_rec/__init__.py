"""General recommenders: the order-free models of the registry."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

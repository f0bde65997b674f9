"""Raw files → dense ids, time-ordered interactions, item features, validation split."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

"""Ensembling of the model candidates into the submission."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

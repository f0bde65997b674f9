"""Tabular second stage: a LightGBM ranker over candidates and side information."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

"""Reporting: metrics table, plots and the HTML report."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

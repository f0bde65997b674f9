"""Sequential recommenders: GRU4Rec, SASRec, BERT4Rec, SRGNN and S3Rec."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

"""Kedro glue of sequential_rec beyond the shared model nodes: S3Rec pre-training.

The model code lives in :mod:`movie_rec.models.sequential`; every model's own nodes are the
shared ones of :mod:`movie_rec.pipelines.model_nodes`.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import scipy.sparse as sp

from movie_rec.models.sequences import user_sequences
from movie_rec.models.sequential import fit as seq
from movie_rec.models.sequential.s3rec import PRETRAINED, SECTION, S3RecConfig, attribute_matrix
from movie_rec.parameters import model_settings, model_source
from movie_rec.records import Skipped
from movie_rec.registry import models_of
from movie_rec.runtime import RuntimeSettings, prepare_run

logger = logging.getLogger(__name__)


def fine_tuned_models() -> list[str]:
    """The registered models that start from the pre-trained S3Rec backbone."""
    return [spec.name for spec in models_of("sequential_rec") if PRETRAINED in spec.extra_inputs]


def pretrain_s3rec(
    interactions: pd.DataFrame,
    train_matrix: sp.csr_matrix,
    item_features: pd.DataFrame,
    item_directors: pd.DataFrame,
    item_writers: pd.DataFrame,
    params: dict[str, Any],
    runtime: RuntimeSettings,
) -> dict[str, Any] | Skipped:
    """S3Rec pre-training on ``interactions`` (split_train or all); the fine-tuning payload.

    It runs only when one of the fine-tuned models is enabled (its settings resolved over
    ``common``, as its own nodes resolve them).
    """
    fine_tuned = [model_settings(name, params) for name in fine_tuned_models()]
    if not any(settings.runs_on(runtime, train_matrix) for settings in fine_tuned):
        logger.info("s3rec fine-tuning models are disabled: skipping pre-training")
        return Skipped(SECTION)
    settings = model_source("sequential_rec", SECTION, params).settings(S3RecConfig)
    config = settings.hyperparameters
    device = prepare_run(runtime)
    n_users, n_items = train_matrix.shape
    attributes = attribute_matrix(
        item_features, item_directors, item_writers, n_items, list(config.attributes)
    )
    pretrained, result = seq.pretrain_s3rec(
        user_sequences(interactions, n_users),
        attributes,
        config,
        settings.train,
        device,
        runtime.seed,
    )
    logger.info("s3rec pre-training: %d updates, %.1fs", result.updates, result.seconds)
    return pretrained

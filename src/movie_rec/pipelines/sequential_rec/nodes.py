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
from movie_rec.models.sequential.s3rec import S3RecConfig, attribute_matrix
from movie_rec.models.training import TrainConfig
from movie_rec.pipelines.model_nodes import merged_settings, model_enabled
from movie_rec.runtime import prepare_run

logger = logging.getLogger(__name__)


def pretrain_s3rec(
    interactions: pd.DataFrame,
    train_matrix: sp.csr_matrix,
    item_features: pd.DataFrame,
    item_directors: pd.DataFrame,
    item_writers: pd.DataFrame,
    params: dict[str, Any],
    runtime: dict[str, Any],
) -> dict[str, Any]:
    """S3Rec pre-training on ``interactions`` (split_train or all); the fine-tuning payload.

    It runs only when one of the S3Rec fine-tuning models is enabled.
    """
    fine_tuned = (params.get(model, {}) for model in seq.FINE_TUNED)
    if not any(model_enabled(section, runtime, train_matrix) for section in fine_tuned):
        logger.info("s3rec fine-tuning models are disabled: skipping pre-training")
        return {"skipped": True}
    settings = merged_settings(params["common"], params["s3rec"])
    device = prepare_run(runtime)
    n_users, n_items = train_matrix.shape
    config = S3RecConfig.from_params(settings["hyperparameters"])
    attributes = attribute_matrix(
        item_features, item_directors, item_writers, n_items, list(config.attributes)
    )
    pretrained, result = seq.pretrain_s3rec(
        user_sequences(interactions, n_users),
        attributes,
        config,
        TrainConfig.from_params(settings["train"]),
        device,
        int(runtime["seed"]),
    )
    logger.info("s3rec pre-training: %d updates, %.1fs", result.updates, result.seconds)
    return pretrained

"""Kedro glue of sequential_rec: one validation fit and one final fit per model.

The model code lives in :mod:`movie_rec.models.sequential`; these nodes pick a model's
settings (``common`` merged with its own section), fit it, and write the DESIGN.md §5
outputs. A disabled model writes empty outputs (:func:`skipped_outputs`).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import scipy.sparse as sp

from movie_rec.evaluation import empty_candidates
from movie_rec.model_outputs import model_metrics, stopwatch
from movie_rec.models.sequences import user_sequences
from movie_rec.models.sequential import fit as seq
from movie_rec.models.sequential.s3rec import attribute_matrix
from movie_rec.runtime import resolve_device, seed_everything

logger = logging.getLogger(__name__)

S3REC_MODELS = ("s3rec_sasrec", "s3rec_bert4rec")


def model_settings(params: dict[str, Any], name: str) -> dict[str, Any]:
    """``common`` overridden by the model's own section (``s3rec`` for pre-training)."""
    return {**params.get("common", {}), **params.get(name, {})}


def is_enabled(params: dict[str, Any], name: str) -> bool:
    if name == "s3rec":
        return any(is_enabled(params, model) for model in S3REC_MODELS)
    return bool(params.get(name, {}).get("enabled", False))


def skipped_outputs(name: str) -> tuple[pd.DataFrame, dict[str, Any], int]:
    """What a disabled model writes: empty candidates, a skipped record, zero epochs."""
    logger.info("%s is disabled: writing empty outputs", name)
    return empty_candidates(), {"model": name, "skipped": True}, 0


def fit_validation(
    name: str,
    split_train: pd.DataFrame,
    valid_answers: pd.DataFrame,
    train_matrix_valid: sp.csr_matrix,
    params: dict[str, Any],
    runtime: dict[str, Any],
    candidate_params: dict[str, Any],
    pretrained: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any], int]:
    """Fit on ``split_train`` with early stopping; validation candidates, metrics, best epoch."""
    if not is_enabled(params, name):
        return skipped_outputs(name)
    settings = model_settings(params, name)
    device = resolve_device(runtime["device"])
    seed_everything(runtime["seed"])
    n_users, n_items = train_matrix_valid.shape
    sequences = user_sequences(split_train, n_users)
    with stopwatch() as fit_time:
        model = seq.build_model(name, n_items, settings, runtime["seed"], pretrained)
        evaluate = seq.evaluator(model, sequences, train_matrix_valid, valid_answers, device)
        result = seq.fit(model, sequences, settings, device, runtime["seed"], name, evaluate)
    with stopwatch() as predict_time:
        candidates = seq.predict(
            model, sequences, train_matrix_valid, candidate_params["k"], device
        )
    metrics = model_metrics(
        name,
        candidates,
        valid_answers,
        fit_seconds=fit_time["seconds"],
        predict_seconds=predict_time["seconds"],
        device=str(device),
        hyperparameters=settings,
        epochs=result.epochs_run,
        extra={"best_epoch": result.best_epoch, "updates": result.updates},
    )
    logger.info("%s validation recall@10 %.4f", name, metrics["recall@10"])
    return candidates, metrics, result.best_epoch


def fit_final(
    name: str,
    interactions: pd.DataFrame,
    train_matrix_full: sp.csr_matrix,
    best_epoch: int,
    params: dict[str, Any],
    runtime: dict[str, Any],
    candidate_params: dict[str, Any],
    pretrained: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Fit on all interactions for the validation fit's best epoch count; final candidates."""
    if not is_enabled(params, name):
        return skipped_outputs(name)[0]
    settings = model_settings(params, name)
    device = resolve_device(runtime["device"])
    seed_everything(runtime["seed"])
    n_users, n_items = train_matrix_full.shape
    sequences = user_sequences(interactions, n_users)
    model = seq.build_model(name, n_items, settings, runtime["seed"], pretrained)
    seq.fit(model, sequences, settings, device, runtime["seed"], name, epochs=best_epoch)
    return seq.predict(model, sequences, train_matrix_full, candidate_params["k"], device)


def pretrain_s3rec(
    interactions: pd.DataFrame,
    train_matrix: sp.csr_matrix,
    item_features: pd.DataFrame,
    item_directors: pd.DataFrame,
    item_writers: pd.DataFrame,
    params: dict[str, Any],
    runtime: dict[str, Any],
) -> dict[str, Any]:
    """S3Rec pre-training on ``interactions`` (split_train or all); the fine-tuning payload."""
    if not is_enabled(params, "s3rec"):
        logger.info("s3rec fine-tuning models are disabled: skipping pre-training")
        return {"skipped": True}
    settings = model_settings(params, "s3rec")
    device = resolve_device(runtime["device"])
    seed_everything(runtime["seed"])
    n_users, n_items = train_matrix.shape
    attributes = attribute_matrix(
        item_features, item_directors, item_writers, n_items, list(settings["attributes"])
    )
    sequences = user_sequences(interactions, n_users)
    pretrained, result = seq.pretrain_s3rec(
        sequences, attributes, settings, device, runtime["seed"]
    )
    logger.info("s3rec pre-training: %d epochs, %.1fs", result.epochs_run, result.seconds)
    return pretrained

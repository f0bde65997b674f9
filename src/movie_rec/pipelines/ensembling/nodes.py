"""Kedro glue of the ensembling pipeline; the fusion itself is in :mod:`movie_rec.ensemble`."""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd
import scipy.sparse as sp

from movie_rec import ensemble

logger = logging.getLogger(__name__)


def _tuned_fusion(
    candidates: dict[str, pd.DataFrame], answers: pd.DataFrame, params: dict[str, Any]
) -> tuple[ensemble.RankFusion | None, pd.DataFrame]:
    if not candidates:
        return None, pd.DataFrame(columns=["number", "value"])
    tuning = params["tuning"]
    return ensemble.tune_weighted_rank(
        candidates,
        answers,
        {
            **params["weighted_rank"],
            "n_trials": tuning["n_trials"],
            "timeout": tuning["timeout"],
            "min_gain_se": tuning.get("min_gain_se", 1.0),
            "guard_folds": tuning.get("guard_folds", 5),
        },
        seed=int(tuning["seed"]),
    )


def evaluate_ensembles(
    valid_answers: pd.DataFrame, params: dict[str, Any], **candidates_valid: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Tune ``weighted_rank`` on half the validated users; judge every method and model.

    Returns:
        ``ensemble_weights`` (the chosen method and tuned fusion), ``ensemble_metrics``
        (Recall@10 of every model and method on all / tuning / holdout users),
        ``ensemble_recommendations_valid`` (each method's validation top 10, column
        ``method``) and ``ensemble_optuna_trials`` (the tuning history).
    """
    candidates = ensemble.usable_candidates(candidates_valid, params["models"])
    tune_users, holdout_users = ensemble.split_users(valid_answers, int(params["tuning"]["seed"]))
    start = time.perf_counter()
    fusion, history = _tuned_fusion(
        candidates, valid_answers[valid_answers["user_idx"].isin(tune_users)], params
    )
    tuning_seconds = time.perf_counter() - start

    def judged(recommendations: pd.DataFrame) -> dict[str, Any]:
        return ensemble.evaluate_on_halves(
            recommendations, valid_answers, tune_users, holdout_users
        )

    models = {name: judged(frame) for name, frame in candidates.items()}
    methods, fused_frames = {}, []
    for method in ensemble.METHODS:
        fused, seconds = ensemble.timed_fusion(method, candidates, params, fusion)
        fit_seconds = tuning_seconds if method == "weighted_rank" else 0.0
        methods[method] = {
            **judged(fused),
            "fit_seconds": round(fit_seconds, 3),
            "predict_seconds": round(seconds, 3),
        }
        fused_frames.append(fused.assign(method=method))
        logger.info(
            "ensemble %s: holdout Recall@10 %.4f", method, methods[method]["holdout"]["recall@10"]
        )
    weights = {
        "method": params["method"],
        "models": list(candidates),
        "weighted_rank": fusion.to_dict() if fusion else None,
        "priority": {key: params[key] for key in ("priority_order", "min_votes", "vote_depth")},
    }
    metrics = {
        "tune_users": len(tune_users),
        "holdout_users": len(holdout_users),
        "trials": len(history),
        "models": models,
        "ensembles": methods,
    }
    return weights, metrics, pd.concat(fused_frames, ignore_index=True), history


def fuse_final(
    ensemble_weights: dict[str, Any],
    params: dict[str, Any],
    train_matrix_full: sp.csr_matrix,
    **candidates_final: pd.DataFrame,
) -> pd.DataFrame:
    """The chosen method on the final candidates, completed to 10 items by popularity."""
    candidates = ensemble.usable_candidates(candidates_final, ensemble_weights["models"])
    tuned = ensemble_weights["weighted_rank"]
    fusion = ensemble.RankFusion(**tuned) if tuned else None
    fused, _ = ensemble.timed_fusion(params["method"], candidates, params, fusion)
    return ensemble.complete_with_popular(fused, train_matrix_full)


def make_submission(
    ensemble_recommendations_final: pd.DataFrame,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
    train_matrix_full: sp.csr_matrix,
) -> pd.DataFrame:
    """The submission in raw ids, validated here so that a bad one is never saved."""
    submission = ensemble.build_submission(ensemble_recommendations_final, user_map, item_map)
    ensemble.validate_submission(submission, user_map, item_map, train_matrix_full)
    logger.info("submission: %d users × %d items, valid", len(user_map), ensemble.SUBMISSION_K)
    return submission

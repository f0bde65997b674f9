"""Kedro glue of the ensembling pipeline: :mod:`movie_rec.fusion` fuses,
:mod:`movie_rec.fusion_tuning` tunes and :mod:`movie_rec.submission` writes the submission."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movie_rec import fusion, fusion_tuning, submission
from movie_rec.evaluation import recall_at_k, recall_by_mix
from movie_rec.model_outputs import stopwatch
from movie_rec.models import release_year
from movie_rec.parameters import EnsemblingSettings, EvaluationSettings, ReleaseFilterSettings
from movie_rec.records import (
    EnsembleMetrics,
    FusionMetrics,
    Halves,
    MixRecall,
    Recall,
    ReleaseAblation,
)
from movie_rec.registry import MODELS

logger = logging.getLogger(__name__)


def taking_part(settings: EnsemblingSettings) -> list[str]:
    """``ensembling.models`` (null: every registered model), checked against the registry."""
    names = list(settings.models or MODELS)
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        raise ValueError(
            f"parameters_ensembling.yml: ensembling.models names unknown models {unknown}; "
            f"registered models: {list(MODELS)}"
        )
    return names


def _tuned_fusion(
    candidates: dict[str, pd.DataFrame],
    answers: pd.DataFrame,
    settings: EnsemblingSettings,
    mixes: list[tuple[int, int]],
) -> fusion_tuning.TunedFusion | None:
    if not candidates:
        return None
    tuning = settings.tuning
    return fusion_tuning.tune_weighted_rank(
        candidates,
        answers,
        {
            **settings.weighted_rank.to_dict(),
            "n_trials": tuning.n_trials,
            "min_gain_se": tuning.min_gain_se,
            "guard_folds": tuning.guard_folds,
            "max_users": tuning.max_users,
            "mixes": mixes,
        },
        seed=tuning.seed,
        second_stage=[name for name in candidates if MODELS[name].kind == "tabular"],
    )


@dataclass(frozen=True)
class ReleaseFilter:
    """No movie released after the user's last activity year + ``slack``
    (:mod:`movie_rec.models.release_year`)."""

    item_year: np.ndarray
    user_last_year: np.ndarray
    slack: float

    @classmethod
    def of(
        cls, history: pd.DataFrame, item_features: pd.DataFrame, n_users: int, slack: float
    ) -> ReleaseFilter:
        years = release_year.item_years(item_features, int(item_features["item_idx"].max()) + 1)
        last_year = release_year.user_last_activity_year(history, n_users)
        return cls(years, last_year, float(slack))

    def apply(self, candidates: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        return {
            name: release_year.release_year_filter(
                frame, self.item_year, self.user_last_year, self.slack
            )
            for name, frame in candidates.items()
        }

    def allowed(self, users: np.ndarray) -> np.ndarray:
        """``len(users) × n_items``: True where the movie is not released too late."""
        late = release_year.released_too_late(
            self.item_year[None, :], self.user_last_year[users, None], self.slack
        )
        return ~late


def release_filter(
    history: pd.DataFrame,
    item_features: pd.DataFrame,
    n_users: int,
    settings: ReleaseFilterSettings,
) -> ReleaseFilter | None:
    """The release-year filter of ``history``'s users, or None when it is switched off."""
    if not settings.enabled:
        return None
    return ReleaseFilter.of(history, item_features, n_users, settings.slack)


def evaluate_ensembles(
    valid_answers: pd.DataFrame,
    split_train: pd.DataFrame,
    item_features: pd.DataFrame,
    settings: EnsemblingSettings,
    evaluation: EvaluationSettings,
    **candidates_valid: pd.DataFrame,
) -> tuple[dict[str, Any], EnsembleMetrics, pd.DataFrame, pd.DataFrame]:
    """Tune ``weighted_rank`` on every validated user and choose the submission's list out
    of fold (:func:`movie_rec.fusion_tuning.tune_weighted_rank`); judge every method and model.

    Lists are release-year filtered first (when enabled). The tuning maximises Recall@10
    averaged over the last/random mixes of ``evaluation.mixes``. Every list is judged on all
    validated users and on a seeded half of them (``holdout``, the same users whatever the
    models), per mix (``by_mix``) and with and without the release-year filter
    (``release_filter``); ``weighted_rank`` by its cross-fitted lists where the fusion was
    chosen, so that no figure is taken on users a list was tuned on.

    Returns:
        ``ensemble_weights`` (the chosen method and tuned fusion), ``ensemble_metrics``,
        ``ensemble_recommendations_valid`` (each method's validation top 10, column
        ``method``) and ``ensemble_optuna_trials`` (the tuning history).
    """
    mixes = evaluation.pairs()
    unfiltered = fusion.usable_candidates(candidates_valid, taking_part(settings))
    n_users = int(split_train["user_idx"].max()) + 1
    released = release_filter(split_train, item_features, n_users, settings.release_filter)
    candidates = released.apply(unfiltered) if released else unfiltered
    tune_users, holdout_users = fusion_tuning.split_users(valid_answers, settings.tuning.seed)
    holdout = valid_answers[valid_answers["user_idx"].isin(holdout_users)]
    with stopwatch() as tuning_time:
        outcome = _tuned_fusion(candidates, valid_answers, settings, mixes)
    tuned = outcome.fusion if outcome else None
    history = outcome.history if outcome else pd.DataFrame(columns=["number", "value"])

    def judged(recommendations: pd.DataFrame) -> Halves:
        return fusion_tuning.evaluate_on_halves(
            recommendations, valid_answers, tune_users, holdout_users
        )

    lists, judged_lists = dict(candidates), dict(candidates)
    methods, fused_frames = {}, []
    for method in fusion.METHODS:
        fused, seconds = fusion.timed_fusion(method, candidates, settings.to_dict(), tuned)
        lists[f"ensemble_{method}"] = fused
        judged_lists[f"ensemble_{method}"] = _judged_list(method, fused, outcome)
        methods[method] = FusionMetrics(
            judged(judged_lists[f"ensemble_{method}"]),
            fit_seconds=round(tuning_time["seconds"] if method == "weighted_rank" else 0.0, 3),
            predict_seconds=round(seconds, 3),
        )
        fused_frames.append(fused.assign(method=method))
        logger.info(
            "ensemble %s: holdout Recall@10 %.4f", method, methods[method].halves.holdout.overall
        )
    by_mix = {
        name: MixRecall.from_json(recall_by_mix(frame, holdout, mixes))
        for name, frame in judged_lists.items()
    }
    weights = {
        "method": settings.method,
        "models": list(candidates),
        "weighted_rank": tuned.to_dict() if tuned else None,
        "priority": {
            "priority_order": settings.priority_order,
            "min_votes": settings.min_votes,
            "vote_depth": settings.vote_depth,
        },
        "release_filter": settings.release_filter.to_dict(),
        "choice": outcome.choice.to_json() if outcome else None,
    }
    metrics = EnsembleMetrics(
        final_choice=outcome.choice if outcome else None,
        tune_users=len(tune_users),
        holdout_users=len(holdout_users),
        trials=len(history),
        models={name: judged(frame) for name, frame in candidates.items()},
        ensembles=methods,
        by_mix=dict(sorted(by_mix.items(), key=lambda item: -item[1].mean)),
        release_filter=release_ablation(unfiltered, candidates, lists, holdout, settings, tuned),
        release_filter_slack=settings.release_filter.slack,
    )
    return weights, metrics, pd.concat(fused_frames, ignore_index=True), history


def _judged_list(
    method: str, fused: pd.DataFrame, outcome: fusion_tuning.TunedFusion | None
) -> pd.DataFrame:
    """The list ``method`` is judged by: the cross-fitted fusion where the tuned fusion was
    chosen (its weights saw every validated user), otherwise its own fused list."""
    if method == fusion_tuning.FUSION and outcome and outcome.choice.chosen == fusion_tuning.FUSION:
        return outcome.cross_fitted
    return fused


def release_ablation(
    unfiltered: dict[str, pd.DataFrame],
    filtered: dict[str, pd.DataFrame],
    lists: dict[str, pd.DataFrame],
    answers: pd.DataFrame,
    settings: EnsemblingSettings,
    tuned: fusion.RankFusion | None,
) -> dict[str, ReleaseAblation]:
    """Recall@10 of every list on ``answers`` with and without the release-year filter
    (the fusions with the same tuned weights on the unfiltered lists)."""
    if unfiltered is filtered:
        return {}
    without = dict(unfiltered)
    for method in fusion.METHODS:
        without[f"ensemble_{method}"], _ = fusion.timed_fusion(
            method, unfiltered, settings.to_dict(), tuned
        )
    return {
        name: ReleaseAblation(
            with_filter=Recall.from_json(recall_at_k(lists[name], answers)),
            without_filter=Recall.from_json(recall_at_k(without[name], answers)),
        )
        for name in lists
    }


def fuse_final(
    ensemble_weights: dict[str, Any],
    settings: EnsemblingSettings,
    interactions: pd.DataFrame,
    item_features: pd.DataFrame,
    train_matrix_full: sp.csr_matrix,
    **candidates_final: pd.DataFrame,
) -> pd.DataFrame:
    """The chosen method on the (release-year filtered) final candidates, completed to 10
    items by popularity."""
    candidates = fusion.usable_candidates(candidates_final, ensemble_weights["models"])
    released = release_filter(
        interactions, item_features, train_matrix_full.shape[0], settings.release_filter
    )
    if released:
        candidates = released.apply(candidates)
    tuned = ensemble_weights["weighted_rank"]
    rank_fusion = fusion.RankFusion(**tuned) if tuned else None
    fused, _ = fusion.timed_fusion(settings.method, candidates, settings.to_dict(), rank_fusion)
    allowed = released.allowed if released else None
    return submission.complete_with_popular(fused, train_matrix_full, allowed=allowed)


def make_submission(
    ensemble_recommendations_final: pd.DataFrame,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
    train_matrix_full: sp.csr_matrix,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The submission in raw ids, validated here so that a bad one is never saved.

    Returned twice: the latest file at its fixed place and this run's archived version.
    """
    table = submission.build_submission(ensemble_recommendations_final, user_map, item_map)
    submission.validate_submission(table, user_map, item_map, train_matrix_full)
    logger.info("submission: %d users × %d items, valid", len(user_map), fusion.SUBMISSION_K)
    return table, table

"""Nodes of the tabular_rec pipeline: thin Kedro glue around :mod:`movie_rec.second_stage.ranker`
and :mod:`movie_rec.second_stage.features`.

Validation fit: candidates and features from ``split_train`` for the users that have
held-out answers; the ranker's out-of-fold scores over them are
``lgbm_ranker.candidates_valid`` (users without answers get no rows there) and its fold
models are ``lgbm_ranker.model``. Final fit: the same features from all interactions for
every user, scored by the mean of one fold model a bag (trained on validation users), give
``lgbm_ranker.candidates_final``; they are built in the node that scores them, after
training, so the validation and the final frames (millions of rows each at the
competition's size) are never in memory together. The first stage is every enabled
model of the registry (a disabled model's empty candidates are left out). Extra training
queries: ``tabular_rec.extra_splits`` further holdouts of the validated users' training
histories (:mod:`movie_rec.second_stage.holdouts`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movie_rec.evaluation import (
    empty_candidates,
    recall_at_k,
    recall_by_mix,
)
from movie_rec.model_outputs import model_metrics, stopwatch
from movie_rec.models.protocol import FitRun
from movie_rec.parameters import CandidateSettings, EvaluationSettings, TabularSettings
from movie_rec.records import MixRecall, ModelMetrics, RankerRecord, Skipped
from movie_rec.registry import SECOND_STAGE
from movie_rec.runtime import RuntimeSettings, prepare_run
from movie_rec.second_stage import candidates as rc
from movie_rec.second_stage import features as rf
from movie_rec.second_stage import holdouts, ranker
from movie_rec.splits import SplitSettings

logger = logging.getLogger(__name__)

MODEL = SECOND_STAGE


def skipped_outputs() -> tuple[pd.DataFrame, Skipped, pd.DataFrame, list[ranker.FoldModel]]:
    """What the training node writes when ``tabular_rec.enabled`` is false (no fold model)."""
    importance = pd.DataFrame({"feature": pd.Series(dtype="str"), "gain": pd.Series(dtype="f8")})
    return empty_candidates(), Skipped(MODEL), importance, []


def _enabled_first_stage(first_stage: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {name: frame for name, frame in first_stage.items() if len(frame)}


def _features(
    users: np.ndarray | None,
    history: pd.DataFrame,
    matrix: sp.csr_matrix,
    item_features: pd.DataFrame,
    item_directors: pd.DataFrame,
    item_writers: pd.DataFrame,
    settings: TabularSettings,
    first_stage: dict[str, pd.DataFrame],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The candidate pairs' features and the popular candidates among them."""
    with stopwatch() as timer:
        popular = rc.popular_candidates(matrix, settings.n_popular, users)
        pairs = rc.candidate_union(first_stage, popular, settings.top_n, matrix, users)
        features = rf.build_features(
            pairs, first_stage, history, matrix, item_features, item_directors, item_writers,
            settings.features(),
        )  # fmt: skip
    logger.info(
        "lgbm_ranker features: %d pairs × %d columns for %d users in %.1fs",
        len(features), features.shape[1] - 2, features["user_idx"].nunique(), timer["seconds"],
    )  # fmt: skip
    return features, popular


def build_features_valid(
    split_train: pd.DataFrame,
    train_matrix_valid: sp.csr_matrix,
    item_features: pd.DataFrame,
    item_directors: pd.DataFrame,
    item_writers: pd.DataFrame,
    valid_answers: pd.DataFrame,
    settings: TabularSettings,
    **first_stage: pd.DataFrame,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Features of the validation users' candidates, from ``split_train`` only, and the
    candidate set's recall per source (the ceiling any second stage can reach).

    ``valid_answers`` chooses which users get rows and measures the ceiling; no feature
    reads it.
    """
    if not settings.enabled:
        return pd.DataFrame(columns=rf.PAIR), []
    first_stage = _enabled_first_stage(first_stage)
    users = np.unique(valid_answers["user_idx"].to_numpy())
    features, popular = _features(
        users, split_train, train_matrix_valid, item_features, item_directors, item_writers,
        settings, first_stage,
    )  # fmt: skip
    ceiling = rc.candidate_recall_by_source(first_stage, popular, valid_answers, settings.top_n)
    logger.info("lgbm_ranker candidate recall by source:\n%s", ceiling.round(4).to_string())
    return features, ceiling.to_dict("records")


HYPERPARAMETERS = "_hyperparameters"  # suffix of the extra-split node's hyperparameter inputs


def build_features_extra(
    split_train: pd.DataFrame,
    train_matrix_valid: sp.csr_matrix,
    item_features: pd.DataFrame,
    item_directors: pd.DataFrame,
    item_writers: pd.DataFrame,
    valid_answers: pd.DataFrame,
    features_valid: pd.DataFrame,
    settings: TabularSettings,
    split: SplitSettings,
    runtime: RuntimeSettings,
    candidates: CandidateSettings,
    **first_stage: Any,
) -> ranker.LabelledRows:
    """Labelled rows of ``tabular_rec.extra_splits`` further holdouts of the validated users
    (:mod:`movie_rec.second_stage.holdouts`), with ``features_valid``'s columns.

    ``first_stage`` holds each refittable model's validation candidates (``<model>``: empty
    when it is off, and then it is not refit) and hyperparameters (``<model>_hyperparameters``).
    """
    columns = list(features_valid.columns)
    none = ranker.LabelledRows(pd.DataFrame(columns=[*columns, rf.SPLIT]), np.empty(0, np.int8))
    count = settings.extra_splits if settings.enabled else 0
    if count == 0:
        return none
    refit = {
        name: first_stage[name + HYPERPARAMETERS]
        for name in holdouts.refittable_models()
        if len(first_stage.get(name, ())) > 0
    }
    run = FitRun(device=prepare_run(runtime), seed=runtime.seed)
    splits = holdouts.extra_splits(
        split_train, valid_answers["user_idx"].to_numpy(), train_matrix_valid.shape,
        split, count, settings.extra_split_users,
    )  # fmt: skip
    frames, labels = [], []
    for extra in splits:
        if len(extra.users) == 0:  # no validated user has enough history left
            continue
        with stopwatch() as timer:
            refitted = holdouts.refit_candidates(
                extra, refit, run, candidates.k, candidates.batch_size
            )
            features, _ = _features(
                extra.users, extra.history, extra.matrix, item_features, item_directors,
                item_writers, settings, refitted,
            )  # fmt: skip
        labels.append(rc.label_pairs(features, extra.answers))
        frames.append(features.reindex(columns=columns).assign(**{rf.SPLIT: extra.index}))
        logger.info(
            "lgbm_ranker extra split %d: %d users, %d pairs, candidate recall %.3f, "
            "%s refit, %.1fs", extra.index, len(extra.users), len(features),
            _candidate_recall(labels[-1], extra.answers), ", ".join(refit), timer["seconds"],
        )  # fmt: skip
    if not frames:
        return none
    rows = pd.concat(frames, ignore_index=True)
    rank_columns = [c for c in columns if c.endswith("_rank")]
    rows[rank_columns] = rows[rank_columns].fillna(rf.UNRANKED)
    return ranker.LabelledRows(rows, np.concatenate(labels))


def rank_final(
    fold_models: list[ranker.FoldModel],
    interactions: pd.DataFrame,
    train_matrix_full: sp.csr_matrix,
    item_features: pd.DataFrame,
    item_directors: pd.DataFrame,
    item_writers: pd.DataFrame,
    settings: TabularSettings,
    candidates: CandidateSettings,
    **first_stage: pd.DataFrame,
) -> pd.DataFrame:
    """Every user's final candidates: features from all interactions, scored by the mean of
    ``fold_models`` (:func:`movie_rec.second_stage.ranker.mean_prediction`), the top ``k`` kept."""
    if not settings.enabled or not fold_models:
        return empty_candidates()
    features, _ = _features(
        None, interactions, train_matrix_full, item_features, item_directors, item_writers,
        settings, _enabled_first_stage(first_stage),
    )  # fmt: skip
    with stopwatch() as timer:
        scores = ranker.mean_prediction(fold_models, features)
        ranked = ranker.rank_candidates(features, scores, candidates.k)
    logger.info("lgbm_ranker: %d final pairs scored by %d fold models in %.1fs",
                len(features), len(fold_models), timer["seconds"])  # fmt: skip
    return ranked


def train_ranker(
    features_valid: pd.DataFrame,
    features_extra: ranker.LabelledRows,
    candidate_ceiling: list[dict[str, Any]],
    valid_answers: pd.DataFrame,
    settings: TabularSettings,
    runtime: RuntimeSettings,
    candidates: CandidateSettings,
    evaluation: EvaluationSettings,
) -> tuple[pd.DataFrame, ModelMetrics | Skipped, pd.DataFrame, list[ranker.FoldModel]]:
    """Out-of-fold validation candidates, metrics, feature importance and the fold models.

    Every fold model is early-stopped on users it did not train on, and none is refitted;
    the first of each bag score the final candidates (:func:`rank_final`), as one model a
    bag scores a validation user.
    ``features_extra`` (other holdouts of the same users) only add training rows.
    """
    if not settings.enabled:
        return skipped_outputs()
    k = candidates.k
    config = settings.ranker(runtime.seed)
    labels = rc.label_pairs(features_valid, valid_answers)
    with stopwatch() as fit_time:
        oof = ranker.out_of_fold_scores(
            features_valid, labels, settings.n_folds, config, features_extra
        )
    with stopwatch() as predict_time:
        candidates_valid = ranker.rank_candidates(features_valid, oof.scores, k)
    importance = ranker.feature_importance([m.booster for bag in oof.models for m in bag])
    first_stage = {
        name: _first_stage_top(features_valid, name)
        for name in rf.first_stage_names(features_valid)
    }
    mixes = evaluation.pairs()
    details = RankerRecord(
        fold_rounds=oof.best_iterations,
        extra_queries=int(np.unique(ranker.query_ids(features_extra.features)).size),
        candidate_recall=_candidate_recall(labels, valid_answers),
        candidate_recall_by_source=candidate_ceiling,
        first_stage_recall={
            name: recall_at_k(top, valid_answers)["recall@10"] for name, top in first_stage.items()
        },
        by_mix=MixRecall.from_json(recall_by_mix(candidates_valid, valid_answers, mixes)),
        first_stage_by_mix={
            name: MixRecall.from_json(recall_by_mix(top, valid_answers, mixes))
            for name, top in first_stage.items()
        },
        top_features=importance["feature"].head(10).tolist(),
    )
    metrics = model_metrics(
        MODEL,
        candidates_valid,
        valid_answers,
        fit_seconds=fit_time["seconds"],
        predict_seconds=predict_time["seconds"],
        device="cpu",
        hyperparameters={k: v for k, v in settings.to_dict().items() if k != "enabled"},
        epochs=round(float(np.mean(oof.best_iterations))),
        ranker=details,
    )
    logger.info(
        "lgbm_ranker: out-of-fold Recall@10 %.4f (first stage %s)",
        metrics.recall.overall, details.first_stage_recall,
    )  # fmt: skip
    return candidates_valid, metrics, importance, oof.final_models()


def _candidate_recall(labels: np.ndarray, answers: pd.DataFrame) -> float:
    """Share of the held-out answers the candidate union contains (the ranker's ceiling)."""
    return float((labels > 0).sum() / max(len(answers[rf.PAIR].drop_duplicates()), 1))


def _first_stage_top(features: pd.DataFrame, name: str) -> pd.DataFrame:
    """A first-stage model's own ranking, read back from its rank feature."""
    ranked = features[f"{name}_rank"] < rf.UNRANKED
    proposed = features.loc[ranked, [*rf.PAIR, f"{name}_rank"]]
    return proposed.rename(columns={f"{name}_rank": "rank"})

"""The report's tables: pandas frames, each saved as a CSV that kedro-viz previews.

Each table the page reads has its schema in :mod:`movie_rec.records` and is checked here,
where it is made. A missing input (a model that did not run, an ensemble metric not
recorded) gives an empty table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from pandera.pandas import DataFrameSchema

from movie_rec import records
from movie_rec.evaluation import per_user_recall
from movie_rec.records import (
    RECALL_COLUMNS,
    EnsembleMetrics,
    FusionMetrics,
    MixRecall,
    ModelMetrics,
    Recall,
    Skipped,
)

HISTORY_COLUMNS = ["model", "update", "pass", "loss", "recall@10", "lr", "seconds", "best"]


def _number(value: Any) -> float:
    """``value`` as a float; NaN for anything missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _recalls(recall: Recall | None, prefix: str = "") -> dict[str, float]:
    if recall is None:
        return {f"{prefix}{column}": np.nan for column in RECALL_COLUMNS}
    return recall.columns(prefix)


def _mix_summary(scores: MixRecall | None) -> dict[str, float]:
    return {f"mix_{key}": getattr(scores, key) if scores else np.nan for key in MixRecall.SUMMARY}


def _table(schema: DataFrameSchema, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """``rows`` as the schema's table (an empty one when there are no rows)."""
    if not rows:
        return records.empty(schema)
    return records.checked(schema, pd.DataFrame(rows))


def _ran(
    model_metrics: Mapping[str, ModelMetrics | Skipped], models: Sequence[str]
) -> dict[str, ModelMetrics]:
    """The metrics of the ``models`` that ran (neither skipped nor missing), in order."""
    return {
        name: metrics
        for name in models
        if isinstance(metrics := model_metrics.get(name), ModelMetrics)
    }


def _model_row(metrics: ModelMetrics, ensemble: EnsembleMetrics | None) -> dict[str, Any]:
    halves = ensemble.models.get(metrics.model) if ensemble else None
    return {
        "model": metrics.model,
        "kind": "model",
        **_recalls(metrics.recall),
        **_recalls(halves.holdout if halves else None, "holdout_"),
        **_mix_summary(ensemble.by_mix.get(metrics.model) if ensemble else None),
        "users": metrics.recall.users,
        "fit_seconds": metrics.fit_seconds,
        "predict_seconds": metrics.predict_seconds,
        "device": metrics.device,
        "epochs": metrics.epochs,
        "best_update": metrics.best_update,
    }


def _ensemble_row(name: str, metrics: FusionMetrics, ensemble: EnsembleMetrics) -> dict[str, Any]:
    return {
        "model": name,
        "kind": "ensemble",
        **_recalls(metrics.halves.all),
        **_recalls(metrics.halves.holdout, "holdout_"),
        **_mix_summary(ensemble.by_mix.get(name)),
        "users": metrics.halves.all.users,
        "fit_seconds": metrics.fit_seconds,
        "predict_seconds": metrics.predict_seconds,
        "device": "cpu",
        "epochs": None,
        "best_update": None,
    }


def metrics_table(
    model_metrics: Mapping[str, ModelMetrics | Skipped],
    ensemble_metrics: EnsembleMetrics | None,
    models: Sequence[str],
) -> pd.DataFrame:
    """One row per enabled model and per ensemble method (:data:`records.METRICS`).

    Recall@10 (overall/last/random) on all validated users, the same on the holdout half
    (a seeded half of the validated users; every list there is out of fold), the mean and
    worst holdout Recall@10 over the last/random mixes (``ensemble_metrics.by_mix``), fit
    and predict seconds, device, epochs and the best update of iteratively trained models.
    Skipped (disabled) models have no row.
    """
    rows = [
        _model_row(metrics, ensemble_metrics) for metrics in _ran(model_metrics, models).values()
    ]
    if ensemble_metrics:
        rows += [
            _ensemble_row(f"ensemble_{method}", metrics, ensemble_metrics)
            for method, metrics in ensemble_metrics.ensembles.items()
        ]
    return _table(records.METRICS, rows)


def training_history(
    model_metrics: Mapping[str, ModelMetrics | Skipped], models: Sequence[str]
) -> pd.DataFrame:
    """Every validation evaluation of the iteratively trained ``models``.

    One row per model and evaluation (``metrics.training.history``: update, pass, loss,
    recall@10, lr, seconds); ``best`` marks the evaluation at the model's ``best_update``.
    Models without a history (skipped, or not trained by the shared loop) have no rows.
    """
    frames = []
    for name, metrics in _ran(model_metrics, models).items():
        if metrics.training is None or not metrics.training.history:
            continue
        frame = pd.DataFrame(metrics.training.history).reindex(columns=HISTORY_COLUMNS[1:-1])
        frame.insert(0, "model", name)
        frame["best"] = frame["update"].eq(metrics.training.best_update)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def recall_by_mix_table(ensemble_metrics: EnsembleMetrics | None) -> pd.DataFrame:
    """Holdout Recall@10 of every list (model or ensemble method) per last/random mix
    (:data:`records.RECALL_BY_MIX`).

    Column ``a/b``: the Recall@10 had the test held out ``a`` last and ``b`` random items
    (``ensemble_metrics.by_mix``), then their ``mean`` and ``worst``; ``spread`` is the
    best mix minus the worst and ``vs_best`` the list's mean minus the best list's mean.
    Best mean first.
    """
    by_mix = ensemble_metrics.by_mix if ensemble_metrics else {}
    if not by_mix:
        return records.empty(records.RECALL_BY_MIX)
    mixes = list(dict.fromkeys(mix for scores in by_mix.values() for mix in scores.mixes))
    frame = pd.DataFrame(
        [
            {
                "list": name,
                **{mix: _number(scores.mixes.get(mix)) for mix in mixes},
                "mean": scores.mean,
                "worst": scores.worst,
            }
            for name, scores in by_mix.items()
        ]
    )
    frame["spread"] = frame[mixes].max(axis=1) - frame[mixes].min(axis=1)
    frame["vs_best"] = frame["mean"] - frame["mean"].max()
    frame = frame.sort_values("mean", ascending=False, kind="stable", na_position="last")
    return records.checked(records.RECALL_BY_MIX, frame.reset_index(drop=True))


def release_filter_table(ensemble_metrics: EnsembleMetrics | None) -> pd.DataFrame:
    """Holdout Recall@10 (overall, last, random) of every list with and without the
    release-year filter (``ensemble_metrics.release_filter``); ``gain_*`` = with − without
    (:data:`records.RELEASE_FILTER`).
    """
    ablation = ensemble_metrics.release_filter if ensemble_metrics else {}
    rows = []
    for name, sides in ablation.items():
        with_filter, without_filter = sides.with_filter.columns(), sides.without_filter.columns()
        row: dict[str, Any] = {"list": name}
        for column in RECALL_COLUMNS:
            row[f"with_{column}"] = with_filter[column]
            row[f"without_{column}"] = without_filter[column]
            row[f"gain_{column}"] = with_filter[column] - without_filter[column]
        rows.append(row)
    return _table(records.RELEASE_FILTER, rows)


def candidate_ceiling_table(ranker_metrics: ModelMetrics | Skipped | None) -> pd.DataFrame:
    """The ranker's candidate recall per source, as
    :func:`movie_rec.second_stage.candidates.candidate_recall_by_source` recorded it in the
    ranker's metrics (:data:`records.CANDIDATE_CEILING`); empty when the ranker was off."""
    ranker = ranker_metrics.ranker if isinstance(ranker_metrics, ModelMetrics) else None
    return _table(
        records.CANDIDATE_CEILING, list(ranker.candidate_recall_by_source) if ranker else []
    )


def activity_buckets(interactions: pd.DataFrame, edges: Sequence[int]) -> pd.Series:
    """Each user's history-length bucket (``"16–49"``, …, ``"500+"``), indexed by user_idx."""
    lengths = interactions.groupby("user_idx").size()
    bounds = [0, *edges, np.inf]
    labels = [
        f"{low}+" if np.isinf(high) else f"{low}–{int(high) - 1}" for low, high in pairwise(bounds)
    ]
    return pd.cut(lengths, bounds, right=False, labels=labels).rename("bucket")


def recall_by_activity(
    recommendations: Mapping[str, pd.DataFrame],
    valid_answers: pd.DataFrame,
    buckets: pd.Series,
) -> pd.DataFrame:
    """Recall@10 of each named recommendation list within each activity bucket
    (:data:`records.RECALL_BY_ACTIVITY`)."""
    frames = []
    for name, frame in recommendations.items():
        per_user = per_user_recall(frame, valid_answers, k=10)
        per_user["bucket"] = pd.Categorical(
            buckets.reindex(per_user["user_idx"]).to_numpy(), categories=buckets.cat.categories
        )
        grouped = per_user.groupby("bucket", observed=True)["recall"].agg(["size", "mean"])
        frames.append(
            pd.DataFrame(
                {
                    "model": name,
                    "bucket": grouped.index.astype(str),
                    "users": grouped["size"].to_numpy(),
                    "recall@10": grouped["mean"].to_numpy(),
                }
            )
        )
    if not frames:
        return records.empty(records.RECALL_BY_ACTIVITY)
    return records.checked(records.RECALL_BY_ACTIVITY, pd.concat(frames, ignore_index=True))


def _genre_labels(item_features: pd.DataFrame) -> pd.Series:
    genre_columns = [column for column in item_features if column.startswith("genre_")]
    flags = item_features[genre_columns].to_numpy(dtype=bool)
    names = np.array([column.removeprefix("genre_") for column in genre_columns])
    return pd.Series(
        ["|".join(names[row]) for row in flags], index=item_features["item_idx"], name="genres"
    )


def example_users(
    recommendations: pd.DataFrame,
    interactions: pd.DataFrame,
    item_features: pd.DataFrame,
    user_map: pd.DataFrame,
    n_users: int,
    n_watched: int,
    seed: int,
    answers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """A seeded sample of users: their last ``n_watched`` titles and their recommendations
    (:data:`records.EXAMPLE_USERS`).

    Columns: ``user`` (raw id), ``role`` (``watched`` / ``recommended``), ``position``
    (1 = most recent / best), ``item``, ``title``, ``year``, ``genres``; then ``reason``
    when ``recommendations`` has one (why an item was recommended) and, given the held-out
    ``answers`` of a validation list, ``held_out``: whether the row is one of them.
    """
    users = np.unique(recommendations["user_idx"].to_numpy())
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(users, size=min(n_users, len(users)), replace=False))
    watched = (
        interactions[interactions["user_idx"].isin(chosen)]
        .sort_values(["user_idx", "time"], kind="stable")
        .groupby("user_idx")
        .tail(n_watched)
        .iloc[::-1]
    )
    watched = watched.assign(role="watched", position=watched.groupby("user_idx").cumcount() + 1)
    recommended = recommendations[recommendations["user_idx"].isin(chosen)].assign(
        role="recommended", position=lambda frame: frame["rank"]
    )
    extras = [column for column in ("reason",) if column in recommendations]
    shown = ["user_idx", "role", "position", "item_idx"]
    rows = pd.concat([watched[shown], recommended[[*shown, *extras]]], ignore_index=True)
    if answers is not None:
        pairs = ["user_idx", "item_idx"]
        rows["held_out"] = pd.MultiIndex.from_frame(rows[pairs]).isin(
            pd.MultiIndex.from_frame(answers[pairs])
        )
        extras.append("held_out")
    features = item_features.set_index("item_idx")
    rows = rows.assign(
        user=rows["user_idx"].map(user_map.set_index("user_idx")["user"]),
        item=rows["item_idx"].map(features["item"]),
        title=rows["item_idx"].map(features["title"]),
        year=rows["item_idx"].map(features["year"]),
        genres=rows["item_idx"].map(_genre_labels(item_features)),
    )
    rows = rows.sort_values(["user", "role", "position"], ascending=[True, False, True])
    columns = ["user", "role", "position", "item", "title", "year", "genres", *extras]
    return records.checked(records.EXAMPLE_USERS, rows[columns].reset_index(drop=True))

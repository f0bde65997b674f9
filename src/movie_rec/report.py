"""The report (README, "reporting"): tables, plots, example users and one self-contained HTML page.

Tables are pandas frames (each also saved as a CSV that kedro-viz previews). Figures are
built with :class:`matplotlib.figure.Figure` (no pyplot state, no display needed). The page
is rendered from ``templates/report.html.j2`` with autoescaping, the figures embedded as
base64 PNGs, so it opens in a browser without network. A missing input (a model that did
not run, an ensemble metric not recorded) gives an empty table or a message figure, and the
page says "not available".
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from matplotlib.figure import Figure

from movie_rec.evaluation import per_user_recall

RECALL_COLUMNS = ["recall@10", "recall@10_last", "recall@10_random"]
TABLE_COLUMNS = [
    "model",
    "kind",
    *RECALL_COLUMNS,
    *(f"holdout_{column}" for column in RECALL_COLUMNS),
    "mix_mean",
    "mix_worst",
    "users",
    "fit_seconds",
    "predict_seconds",
    "device",
    "epochs",
    "best_update",
]
HISTORY_COLUMNS = ["model", "update", "pass", "loss", "recall@10", "lr", "seconds", "best"]
MIX_SUMMARY = ("mean", "worst")
RELEASE_SIDES = ("with", "without")
RELEASE_COLUMNS = [
    "list",
    *(f"{prefix}_{column}" for column in RECALL_COLUMNS for prefix in (*RELEASE_SIDES, "gain")),
]
CEILING_COLUMNS = [
    "source",
    "recall",
    "recall_last",
    "recall_random",
    "adds",
    "adds_last",
    "adds_random",
]
# Shown as whole numbers in the HTML (pandas stores them as floats once a value is missing).
INTEGER_COLUMNS = {"users", "epochs", "best_update", "update", "pass", "position", "item", "year"}
# Differences, shown with their sign.
SIGNED_PREFIXES = ("gain_", "vs_best")
MISSING = "–"


def _number(value: Any) -> float:
    """``value`` as a float; NaN for anything missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _recalls(metrics: Mapping[str, Any] | None, prefix: str = "") -> dict[str, float]:
    metrics = metrics or {}
    return {f"{prefix}{column}": _number(metrics.get(column)) for column in RECALL_COLUMNS}


def _mix_summary(scores: Mapping[str, Any] | None) -> dict[str, float]:
    scores = scores or {}
    return {f"mix_{key}": _number(scores.get(key)) for key in MIX_SUMMARY}


def metrics_table(
    model_metrics: Mapping[str, Mapping[str, Any]],
    ensemble_metrics: Mapping[str, Any],
    models: Sequence[str],
) -> pd.DataFrame:
    """One row per enabled model and per ensemble method.

    Recall@10 (overall/last/random) on all validated users, the same on the holdout half
    the ensemble was not tuned on, the mean and worst holdout Recall@10 over the last/random
    mixes (``ensemble_metrics["by_mix"]``), fit and predict seconds, device, epochs and the
    best update of iteratively trained models. Skipped (disabled) models have no row.
    """
    on_holdout = ensemble_metrics.get("models") or {}
    by_mix = ensemble_metrics.get("by_mix") or {}
    rows = []
    for name in models:
        metrics = model_metrics.get(name) or {}
        if not metrics or metrics.get("skipped"):
            continue
        rows.append(
            {
                "model": name,
                "kind": "model",
                **_recalls(metrics),
                **_recalls((on_holdout.get(name) or {}).get("holdout"), "holdout_"),
                **_mix_summary(by_mix.get(name)),
                "users": metrics.get("users"),
                "fit_seconds": metrics.get("fit_seconds"),
                "predict_seconds": metrics.get("predict_seconds"),
                "device": metrics.get("device"),
                "epochs": metrics.get("epochs"),
                "best_update": metrics.get("best_update"),
            }
        )
    for method, metrics in (ensemble_metrics.get("ensembles") or {}).items():
        name = f"ensemble_{method}"
        rows.append(
            {
                "model": name,
                "kind": "ensemble",
                **_recalls(metrics.get("all")),
                **_recalls(metrics.get("holdout"), "holdout_"),
                **_mix_summary(by_mix.get(name)),
                "users": (metrics.get("all") or {}).get("users"),
                "fit_seconds": metrics.get("fit_seconds"),
                "predict_seconds": metrics.get("predict_seconds"),
                "device": "cpu",
                "epochs": None,
                "best_update": None,
            }
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def training_history(
    model_metrics: Mapping[str, Mapping[str, Any]], models: Sequence[str]
) -> pd.DataFrame:
    """Every validation evaluation of the iteratively trained ``models``.

    One row per model and evaluation (``metrics["history"]``: update, pass, loss, recall@10,
    lr, seconds); ``best`` marks the evaluation at the model's ``best_update``. Models
    without a history (skipped, or not trained by the shared loop) have no rows.
    """
    frames = []
    for name in models:
        metrics = model_metrics.get(name) or {}
        history = metrics.get("history")
        if not history:
            continue
        frame = pd.DataFrame(list(history)).reindex(columns=HISTORY_COLUMNS[1:-1])
        frame.insert(0, "model", name)
        frame["best"] = frame["update"].eq(metrics.get("best_update"))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def recall_by_mix_table(ensemble_metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Holdout Recall@10 of every list (model or ensemble method) per last/random mix.

    Column ``a/b``: the Recall@10 had the test held out ``a`` last and ``b`` random items
    (``ensemble_metrics["by_mix"]``), then their ``mean`` and ``worst``; ``spread`` is the
    best mix minus the worst and ``vs_best`` the list's mean minus the best list's mean.
    Best mean first.
    """
    by_mix = ensemble_metrics.get("by_mix") or {}
    mixes = list(
        dict.fromkeys(key for scores in by_mix.values() for key in scores if key not in MIX_SUMMARY)
    )
    columns = ["list", *mixes, *MIX_SUMMARY, "spread", "vs_best"]
    if not by_mix:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(
        [
            {"list": name, **{key: _number(scores.get(key)) for key in [*mixes, *MIX_SUMMARY]}}
            for name, scores in by_mix.items()
        ]
    )
    frame["spread"] = frame[mixes].max(axis=1) - frame[mixes].min(axis=1)
    frame["vs_best"] = frame["mean"] - frame["mean"].max()
    frame = frame.sort_values("mean", ascending=False, kind="stable", na_position="last")
    return frame.reset_index(drop=True)[columns]


def release_filter_table(ensemble_metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Holdout Recall@10 (overall, last, random) of every list with and without the
    release-year filter (``ensemble_metrics["release_filter"]``); ``gain_*`` = with − without.
    """
    rows = []
    for name, sides in (ensemble_metrics.get("release_filter") or {}).items():
        row: dict[str, Any] = {"list": name}
        for column in RECALL_COLUMNS:
            with_filter, without_filter = (
                _number((sides.get(side) or {}).get(column)) for side in RELEASE_SIDES
            )
            row[f"with_{column}"] = with_filter
            row[f"without_{column}"] = without_filter
            row[f"gain_{column}"] = with_filter - without_filter
        rows.append(row)
    return pd.DataFrame(rows, columns=RELEASE_COLUMNS)


def candidate_ceiling_table(ranker_metrics: Mapping[str, Any] | None) -> pd.DataFrame:
    """The ranker's candidate recall ceiling per source (``candidate_recall_by_source``).

    One row per source, the last one ``union``: the share of held-out answers among its
    candidates (overall, last, random) and what it adds to the other sources; columns the
    ranker records beyond these are kept after them.
    """
    rows = (ranker_metrics or {}).get("candidate_recall_by_source") or []
    frame = pd.DataFrame(rows)
    extras = [column for column in frame.columns if column not in CEILING_COLUMNS]
    return frame.reindex(columns=[*CEILING_COLUMNS, *extras])


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
    """Recall@10 of each named recommendation list within each activity bucket."""
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
    columns = ["model", "bucket", "users", "recall@10"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _message_figure(title: str, message: str) -> Figure:
    figure = Figure(figsize=(6, 2.5))
    axes = figure.subplots()
    axes.set_axis_off()
    axes.set_title(title)
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    return figure


def plot_recall_by_kind(table: pd.DataFrame) -> Figure:
    """Grouped bars: Recall@10 overall, on the last and on the random held-out items."""
    if table.empty:
        return _message_figure("Recall@10 by model", "no model ran")
    figure = Figure(figsize=(max(6, 1.1 * len(table)), 4), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(table))
    width = 0.27
    for offset, (column, label) in enumerate(
        zip(RECALL_COLUMNS, ("overall", "last items", "random items"), strict=True)
    ):
        axes.bar(positions + (offset - 1) * width, table[column].astype(float), width, label=label)
    axes.set_xticks(positions, table["model"], rotation=30, ha="right")
    axes.set_ylabel("validation Recall@10")
    axes.set_title("Recall@10 by model: held-out last vs random items")
    axes.legend()
    return figure


def plot_recall_vs_updates(history: pd.DataFrame) -> Figure:
    """Validation Recall@10 against optimizer updates: one line per iteratively trained
    model, a star at its best update (:func:`training_history`'s frame). Each line is the
    signal that model stops on (``stop_on``: all answers, or the ``last`` ones)."""
    if history.empty:
        return _message_figure("Recall@10 against updates", "no iterative model trained")
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    for name, rows in history.groupby("model", sort=False):
        curve = rows.sort_values("update")
        (line,) = axes.plot(curve["update"], curve["recall@10"].astype(float), label=name)
        best = curve[curve["best"].astype(bool)]
        star = {"marker": "*", "s": 120, "zorder": 3, "color": line.get_color()}
        axes.scatter(best["update"], best["recall@10"].astype(float), **star)
    axes.set_xlabel("optimizer updates")
    axes.set_ylabel("validation Recall@10 of the answers it stops on")
    axes.set_title("Recall@10 against updates (★ best update, kept by the final fit)")
    axes.legend(fontsize="small")
    return figure


def plot_recall_by_activity(activity: pd.DataFrame) -> Figure:
    """Recall@10 per user-activity bucket, one line per model or ensemble."""
    if activity.empty:
        return _message_figure("Recall@10 by user activity", "no recommendations")
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    for name, rows in activity.groupby("model", sort=False):
        axes.plot(rows["bucket"], rows["recall@10"].astype(float), marker="o", label=name)
    axes.set_xlabel("interactions in the user's training history")
    axes.set_ylabel("validation Recall@10")
    axes.set_title("Recall@10 by user activity")
    axes.legend(fontsize="small")
    return figure


def plot_ensemble_weights(weights: Mapping[str, Any]) -> Figure:
    """The tuned weighted_rank weights, with cutoff, tail weight and offset in the title."""
    fusion = weights.get("weighted_rank")
    if not fusion:
        return _message_figure("Ensemble weights", "no model took part: nothing was tuned")
    names = list(fusion["weights"])
    figure = Figure(figsize=(6, 0.4 * len(names) + 1.5), layout="constrained")
    axes = figure.subplots()
    axes.barh(names, [fusion["weights"][name] for name in names])
    axes.invert_yaxis()
    axes.set_xlabel("weight")
    axes.set_title(
        f"weighted_rank: cutoff {fusion['cutoff']}, ranks > {fusion['head']} × "
        f"{fusion['tail_weight']:.2f}, offset {fusion['rank_offset']:.1f}",
        fontsize="medium",
    )
    return figure


def plot_optuna_histories(histories: Mapping[str, pd.DataFrame]) -> Figure:
    """Objective value per trial and best so far, one panel per tuned model."""
    studies = {
        name: frame.dropna(subset=["value"])
        for name, frame in histories.items()
        if frame is not None and "value" in frame and frame["value"].notna().any()
    }
    if not studies:
        return _message_figure("Optuna history", "no Optuna study ran")
    figure = Figure(figsize=(4.5 * len(studies), 3.5), layout="constrained")
    for axes, (name, frame) in zip(
        np.atleast_1d(figure.subplots(1, len(studies))), studies.items(), strict=True
    ):
        trials = frame.sort_values("number")
        axes.scatter(trials["number"], trials["value"], s=12, alpha=0.6, label="trial")
        axes.plot(trials["number"], trials["value"].cummax(), color="black", label="best so far")
        axes.set_title(name)
        axes.set_xlabel("trial")
        axes.set_ylabel("objective")
        axes.legend(fontsize="small")
    return figure


def plot_feature_importance(importance: pd.DataFrame | None, top: int = 20) -> Figure:
    """The LightGBM ranker's top features by gain."""
    if importance is None or importance.empty:
        return _message_figure("LightGBM feature importance", "the ranker did not run")
    rows = importance.nlargest(top, "gain")
    figure = Figure(figsize=(6, 0.3 * len(rows) + 1.5), layout="constrained")
    axes = figure.subplots()
    axes.barh(rows["feature"].astype(str), rows["gain"].astype(float))
    axes.invert_yaxis()
    axes.set_xlabel("gain")
    axes.set_title("LightGBM ranker: feature importance")
    return figure


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


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
    """A seeded sample of users: their last ``n_watched`` titles and their recommendations.

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
    return rows[columns].reset_index(drop=True)


# --- the HTML page ------------------------------------------------------------------------


def _cell(column: str, value: Any) -> str:
    """One table cell as text: missing → "–", booleans → "✓", numbers rounded."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "✓" if value else ""
    if isinstance(value, int | float | np.integer | np.floating):
        if column in INTEGER_COLUMNS:
            return str(int(value))
        if isinstance(value, float | np.floating):
            return f"{value:+.4f}" if column.startswith(SIGNED_PREFIXES) else f"{value:.4f}"
    return str(value)


def _table(frame: pd.DataFrame | None) -> dict[str, list]:
    """A frame as header and rows of text cells, for the template's ``table`` macro."""
    if frame is None:
        return {"columns": [], "rows": []}
    columns = [str(column) for column in frame.columns]
    rows = [
        [_cell(column, value) for column, value in zip(columns, row, strict=True)]
        for row in frame.itertuples(index=False, name=None)
    ]
    return {"columns": columns, "rows": rows}


def _summary(table: pd.DataFrame, weights: Mapping[str, Any]) -> dict[str, Any]:
    """The submission method, the best single model and every ensemble on the holdout half."""
    models = table[table["kind"] == "model"].dropna(subset=["holdout_recall@10"])
    ensembles = table[table["kind"] == "ensemble"].dropna(subset=["holdout_recall@10"])
    best = models.loc[models["holdout_recall@10"].idxmax()] if not models.empty else None
    return {
        "method": weights.get("method") or MISSING,
        "best_model": None
        if best is None
        else {"name": best["model"], "recall": f"{best['holdout_recall@10']:.4f}"},
        "ensembles": [
            {"name": row["model"], "recall": f"{row['holdout_recall@10']:.4f}"}
            for _, row in ensembles.iterrows()
        ],
    }


def _example_blocks(examples: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Per user: one table per role (watched, recommended)."""
    if examples is None or examples.empty:
        return []
    shown = ["position", "title", "year", "genres", "reason", "held_out"]
    return [
        {
            "user": str(user),
            "parts": [
                {
                    "role": str(role),
                    "table": _table(part[[column for column in shown if column in part]]),
                }
                for role, part in rows.groupby("role", sort=False)
            ],
        }
        for user, rows in examples.groupby("user", sort=False)
    ]


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("movie_rec", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(
    table: pd.DataFrame,
    activity: pd.DataFrame,
    examples: pd.DataFrame,
    images: Mapping[str, bytes],
    weights: Mapping[str, Any],
    *,
    by_mix: pd.DataFrame | None = None,
    release_filter: pd.DataFrame | None = None,
    release_filter_slack: float | None = None,
    candidate_ceiling: pd.DataFrame | None = None,
    examples_valid: pd.DataFrame | None = None,
    title: str = "movie_rec report",
) -> str:
    """One self-contained HTML page: summary, metrics, per-mix and release-filter tables,
    the candidate ceiling, plots (inline PNG) and example users. Any table given as
    ``None`` or empty shows as "not available"."""
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=title,
        summary=_summary(table, weights),
        metrics=_table(table),
        by_mix=_table(by_mix),
        release_filter=_table(release_filter),
        release_filter_slack=release_filter_slack,
        candidate_ceiling=_table(candidate_ceiling),
        activity=_table(activity),
        images=[
            {"name": name, "data": base64.b64encode(png).decode("ascii")}
            for name, png in images.items()
        ],
        examples_valid=_example_blocks(examples_valid),
        examples=_example_blocks(examples),
    )

"""The report (DESIGN.md §7): metrics table, plots, example users and one HTML file.

Plain pandas/matplotlib: figures are built with :class:`matplotlib.figure.Figure` (no
pyplot state, no display needed) and embedded in the HTML as base64 PNGs, so the report
opens in a browser without network.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from movie_rec.evaluation import per_user_recall

RECALL_COLUMNS = ["recall@10", "recall@10_last", "recall@10_random"]
TABLE_COLUMNS = [
    "model",
    "kind",
    *RECALL_COLUMNS,
    *(f"holdout_{column}" for column in RECALL_COLUMNS),
    "users",
    "fit_seconds",
    "predict_seconds",
    "device",
    "epochs",
]


def _recalls(metrics: Mapping[str, Any] | None, prefix: str = "") -> dict[str, float]:
    metrics = metrics or {}
    return {f"{prefix}{column}": metrics.get(column, np.nan) for column in RECALL_COLUMNS}


def metrics_table(
    model_metrics: Mapping[str, Mapping[str, Any]],
    ensemble_metrics: Mapping[str, Any],
    models: Sequence[str],
) -> pd.DataFrame:
    """One row per enabled model and per ensemble method.

    Recall@10 (overall/last/random) on all validated users, the same on the holdout half
    the ensemble was not tuned on, fit and predict seconds, device and epochs. Skipped
    (disabled) models have no row.
    """
    on_holdout = ensemble_metrics.get("models", {})
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
                **_recalls(on_holdout.get(name, {}).get("holdout"), "holdout_"),
                "users": metrics.get("users"),
                "fit_seconds": metrics.get("fit_seconds"),
                "predict_seconds": metrics.get("predict_seconds"),
                "device": metrics.get("device"),
                "epochs": metrics.get("epochs"),
            }
        )
    for method, metrics in ensemble_metrics.get("ensembles", {}).items():
        rows.append(
            {
                "model": f"ensemble_{method}",
                "kind": "ensemble",
                **_recalls(metrics["all"]),
                **_recalls(metrics["holdout"], "holdout_"),
                "users": metrics["all"].get("users"),
                "fit_seconds": metrics["fit_seconds"],
                "predict_seconds": metrics["predict_seconds"],
                "device": "cpu",
                "epochs": None,
            }
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


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
) -> pd.DataFrame:
    """A seeded sample of users: their last ``n_watched`` titles and their recommendations.

    Columns: ``user`` (raw id), ``role`` (``watched`` / ``recommended``), ``position``
    (1 = most recent / best), ``item``, ``title``, ``year``, ``genres``.
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
    rows = pd.concat(
        [frame[["user_idx", "role", "position", "item_idx"]] for frame in (watched, recommended)],
        ignore_index=True,
    )
    features = item_features.set_index("item_idx")
    rows = rows.assign(
        user=rows["user_idx"].map(user_map.set_index("user_idx")["user"]),
        item=rows["item_idx"].map(features["item"]),
        title=rows["item_idx"].map(features["title"]),
        year=rows["item_idx"].map(features["year"]),
        genres=rows["item_idx"].map(_genre_labels(item_features)),
    )
    rows = rows.sort_values(["user", "role", "position"], ascending=[True, False, True])
    return rows[["user", "role", "position", "item", "title", "year", "genres"]].reset_index(
        drop=True
    )


_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin-bottom: 1em; }
.users { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
"""


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, na_rep="", float_format=lambda value: f"{value:.4f}")


def _image_html(name: str, png: bytes) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f'<h3>{html.escape(name)}</h3>\n<img alt="{html.escape(name)}" src="data:image/png;base64,{encoded}">'


def _summary_html(table: pd.DataFrame, weights: Mapping[str, Any]) -> str:
    lines = [f"<p>Submission method: <b>{html.escape(str(weights.get('method')))}</b>.</p>"]
    models = table[table["kind"] == "model"].dropna(subset=["holdout_recall@10"])
    ensembles = table[table["kind"] == "ensemble"]
    if not models.empty and not ensembles.empty:
        best = models.loc[models["holdout_recall@10"].idxmax()]
        items = "".join(
            f"<li>{html.escape(row['model'])}: {row['holdout_recall@10']:.4f}</li>"
            for _, row in ensembles.iterrows()
        )
        lines.append(
            "<p>Recall@10 on the validation users the ensemble was <i>not</i> tuned on: best "
            f"single model {html.escape(best['model'])} {best['holdout_recall@10']:.4f};</p>"
            f"<ul>{items}</ul>"
        )
    return "\n".join(lines)


def _examples_html(examples: pd.DataFrame) -> str:
    blocks = []
    for user, rows in examples.groupby("user", sort=False):
        tables = "".join(
            f"<div><b>{role}</b>{_table_html(part[['position', 'title', 'year', 'genres']])}</div>"
            for role, part in rows.groupby("role", sort=False)
        )
        blocks.append(f"<h3>user {html.escape(str(user))}</h3><div class='users'>{tables}</div>")
    return "\n".join(blocks) or "<p>No recommendations.</p>"


def render_html(
    table: pd.DataFrame,
    activity: pd.DataFrame,
    examples: pd.DataFrame,
    images: Mapping[str, bytes],
    weights: Mapping[str, Any],
) -> str:
    """One self-contained HTML page: summary, metrics, plots (inline PNG), example users."""
    sections = [
        "<h1>movie_rec report</h1>",
        _summary_html(table, weights),
        "<h2>Validation metrics</h2>",
        "<p>Recall@10 on the validation split (held-out last and random items); "
        "<code>holdout_</code> columns: the half of the users not used to tune the "
        "ensemble.</p>",
        _table_html(table),
        "<h2>Plots</h2>",
        *(_image_html(name, png) for name, png in images.items()),
        "<h2>Recall@10 by user activity</h2>",
        _table_html(activity),
        "<h2>Example users</h2>",
        "<p>Most recent titles watched → the submitted recommendations.</p>",
        _examples_html(examples),
    ]
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>movie_rec report</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )

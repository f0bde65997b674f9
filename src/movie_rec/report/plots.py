"""The report's figures, built with :class:`matplotlib.figure.Figure` (no pyplot state, no
display needed) and sized for a page 1,100 px wide at 100 dpi.

Every list (model or ensemble method) keeps one colour in every figure
(:func:`list_colours`); legends sit outside the data; a figure with nothing to draw says so.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from movie_rec.records import RECALL_COLUMNS
from movie_rec.registry import SECOND_STAGE

PAGE_WIDTH = 11.0  # inches: 1,100 px at the report's 100 dpi
# Colours that stay apart on white (Trubetskoy's "20 distinct colours" less the pale ones)
PALETTE = (
    "#4363d8", "#f58231", "#3cb44b", "#e6194b", "#911eb4", "#9a6324", "#f032e6", "#a9a9a9",
    "#808000", "#42d4f4", "#000000", "#000075", "#800000", "#469990", "#bfef45", "#ffe119",
    "#dcbeff",
)  # fmt: skip
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
WRAP = 80  # characters a line of text under a figure
EMPHASISED = (SECOND_STAGE, "ensemble_")  # the second stage and the fusions: drawn thicker


def list_colours(names: Iterable[str]) -> dict[str, str]:
    """One distinct colour per list, in order (past the palette, colours repeat)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


def _line_style(name: str, position: int) -> dict[str, Any]:
    """A marker per list; ensembles dashed; the second stage and the ensembles thicker and
    on top."""
    emphasised = name.startswith(EMPHASISED)
    return {
        "marker": MARKERS[position % len(MARKERS)],
        "linestyle": "--" if name.startswith("ensemble_") else "-",
        "linewidth": 2.6 if emphasised else 1.4,
        "zorder": 3 if emphasised else 2,
    }


def _legend_outside(figure: Figure, axes: Any, title: str | None = None) -> None:
    handles, labels = axes.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right upper", fontsize="small", title=title)


def _per_list_axes(
    frame: pd.DataFrame, colours: Mapping[str, str] | None, height: float
) -> tuple[Figure, Any, Mapping[str, str]]:
    """A page-wide figure, its axes and the colours of the lists (``frame["model"]``)."""
    figure = Figure(figsize=(PAGE_WIDTH, height), layout="constrained")
    return figure, figure.subplots(), colours or list_colours(frame["model"])


def _message_figure(title: str, message: str) -> Figure:
    figure = Figure(figsize=(6, 2.5))
    axes = figure.subplots()
    axes.set_axis_off()
    axes.set_title(title)
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    return figure


def plot_recall_by_kind(table: pd.DataFrame) -> Figure:
    """Grouped horizontal bars, one group per list: Recall@10 overall, on the last and on
    the random held-out items."""
    if table.empty:
        return _message_figure("Recall@10 by model", "no model ran")
    figure = Figure(figsize=(PAGE_WIDTH * 0.8, 0.3 * len(table) + 1.4), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(table))
    height = 0.27
    for offset, (column, label, colour) in enumerate(
        zip(RECALL_COLUMNS, ("overall", "last items", "random items"), PALETTE, strict=False)
    ):
        values = table[column].astype(float)
        axes.barh(positions + (offset - 1) * height, values, height, label=label, color=colour)
    axes.set_yticks(positions, table["model"])
    axes.invert_yaxis()
    axes.set(xlabel="validation Recall@10", title="Recall@10 by model: last vs random items")
    _legend_outside(figure, axes)
    return figure


def plot_recall_vs_updates(
    history: pd.DataFrame, colours: Mapping[str, str] | None = None
) -> Figure:
    """Validation Recall@10 against optimizer updates: one line per iteratively trained
    model, a star at its best update (:func:`movie_rec.report.tables.training_history`'s
    frame). Each line is the signal that model stops on (``stop_on``: all answers, or the
    ``last`` ones)."""
    if history.empty:
        return _message_figure("Recall@10 against updates", "no iterative model trained")
    figure, axes, colours = _per_list_axes(history, colours, height=4.5)
    for name, rows in history.groupby("model", sort=False):
        curve = rows.sort_values("update")
        colour = colours.get(name, PALETTE[0])
        axes.plot(curve["update"], curve["recall@10"].astype(float), label=name, color=colour)
        best = curve[curve["best"].astype(bool)]
        star = {"marker": "*", "s": 120, "zorder": 3, "color": colour}
        axes.scatter(best["update"], best["recall@10"].astype(float), **star)
    axes.set(
        xlabel="optimizer updates",
        ylabel="validation Recall@10\nof the answers it stops on",
        title="Recall@10 against updates (★ best update, kept by the final fit)",
    )
    _legend_outside(figure, axes)
    return figure


def plot_recall_by_activity(
    activity: pd.DataFrame, colours: Mapping[str, str] | None = None
) -> Figure:
    """Recall@10 per user-activity bucket, one line per model or ensemble."""
    if activity.empty:
        return _message_figure("Recall@10 by user activity", "no recommendations")
    figure, axes, colours = _per_list_axes(activity, colours, height=5)
    for position, (name, rows) in enumerate(activity.groupby("model", sort=False)):
        axes.plot(
            rows["bucket"], rows["recall@10"].astype(float), label=name,
            color=colours.get(name, PALETTE[0]), **_line_style(name, position),
        )  # fmt: skip
    axes.set_xlabel("interactions in the user's training history")
    axes.set_ylabel("validation Recall@10")
    axes.set_title("Recall@10 by user activity")
    axes.grid(axis="y", alpha=0.3)
    _legend_outside(figure, axes, title="list")
    return figure


def plot_ensemble_weights(weights: Mapping[str, Any]) -> Figure:
    """The tuned weighted_rank weights above zero (the others listed below the bars), with
    cutoff, tail weight and offset in the title."""
    fusion = weights.get("weighted_rank")
    if not fusion:
        return _message_figure("Ensemble weights", "no model took part: nothing was tuned")
    used = {name: weight for name, weight in fusion["weights"].items() if weight > 0}
    unused = [name for name, weight in fusion["weights"].items() if weight <= 0]
    if not used:
        return _message_figure("Ensemble weights", "every tuned weight is zero")
    figure = Figure(figsize=(PAGE_WIDTH * 0.7, 0.45 * len(used) + 1.8), layout="constrained")
    axes = figure.subplots()
    axes.barh(list(used), list(used.values()), color=PALETTE[0])
    axes.invert_yaxis()
    zero = textwrap.fill(f"weight 0: {', '.join(unused)}", WRAP) if unused else ""
    axes.set_xlabel(f"weight\n{zero}".strip())
    axes.set_title(
        f"weighted_rank: cutoff {fusion['cutoff']}, ranks > {fusion['head']} × "
        f"{fusion['tail_weight']:.2f}, offset {fusion['rank_offset']:.1f}",
        fontsize="medium",
    )
    return figure


def plot_optuna_histories(histories: Mapping[str, pd.DataFrame], columns: int = 3) -> Figure:
    """Objective value per trial and best so far: one panel per tuned model, ``columns``
    panels a row."""
    studies = {
        name: frame.dropna(subset=["value"])
        for name, frame in histories.items()
        if frame is not None and "value" in frame and frame["value"].notna().any()
    }
    if not studies:
        return _message_figure("Optuna history", "no Optuna study ran")
    columns = min(columns, len(studies))
    rows = math.ceil(len(studies) / columns)
    figure = Figure(figsize=(PAGE_WIDTH * columns / 3, 2.8 * rows + 0.6), layout="constrained")
    panels = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for axes, (name, frame) in zip(panels, studies.items(), strict=False):
        trials = frame.sort_values("number")
        axes.scatter(trials["number"], trials["value"], s=12, alpha=0.6, label="trial")
        axes.plot(trials["number"], trials["value"].cummax(), color="black", label="best so far")
        axes.set_title(name)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("trial")
        axes.set_ylabel("objective")
    for axes in panels[len(studies) :]:
        axes.set_axis_off()
    _legend_outside(figure, panels[0])
    figure.suptitle("Optuna studies: objective per trial")
    return figure


def plot_feature_importance(importance: pd.DataFrame | None, top: int = 20) -> Figure:
    """The LightGBM ranker's top features by gain."""
    if importance is None or importance.empty:
        return _message_figure("LightGBM feature importance", "the ranker did not run")
    rows = importance.nlargest(top, "gain")
    figure = Figure(figsize=(PAGE_WIDTH * 0.7, 0.3 * len(rows) + 1.5), layout="constrained")
    axes = figure.subplots()
    axes.barh(rows["feature"].astype(str), rows["gain"].astype(float), color=PALETTE[0])
    axes.invert_yaxis()
    axes.set_xlabel("gain")
    axes.set_title("LightGBM ranker: feature importance")
    return figure


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()

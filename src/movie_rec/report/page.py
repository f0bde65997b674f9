"""The report's HTML page: one self-contained file that reads at 1,280 px.

Rendered from ``templates/report.html.j2`` with autoescaping, the figures embedded as
base64 PNGs, so it opens in a browser without network. Every table the page reads is
checked against its schema (:mod:`movie_rec.records`) and shown through a :data:`Layout`:
the columns it reads, under short headers grouped by what they measure, so no table is
wider than the page (each also scrolls inside its own box, first column fixed, on a narrower
screen). Numbers are right-aligned, text left-aligned; long titles and reasons are cut to
one line, the full text in the cell's tooltip. A missing table says "not available".
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from pandera.pandas import DataFrameSchema

from movie_rec import records
from movie_rec.records import FinalChoice

# An HTML table: header groups, each (label, ((column, header), ...)); "" = no group label.
Layout = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]

KINDS = (("", "overall"), ("_last", "last"), ("_random", "random"))


def _per_kind(prefix: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}{suffix}", label) for suffix, label in KINDS)


METRICS_LAYOUT: Layout = (
    ("", (("model", "list"), ("kind", "kind"))),
    ("validation Recall@10", _per_kind("recall@10")),
    ("holdout half", _per_kind("holdout_recall@10")),
    ("holdout per mix", (("mix_mean", "mean"), ("mix_worst", "worst"))),
)
COST_LAYOUT: Layout = (
    ("", (("model", "list"), ("users", "users"), ("device", "device"))),
    ("seconds", (("fit_seconds", "fit"), ("predict_seconds", "predict"))),
    ("training", (("epochs", "epochs"), ("best_update", "best update"))),
)
RELEASE_FILTER_LAYOUT: Layout = (
    ("", (("list", "list"),)),
    *(
        (
            f"Recall@10 {label}",
            tuple((f"{side}_recall@10{kind}", side) for side in records.RELEASE_SIDES),
        )
        for kind, label in KINDS
    ),
)
CEILING_LAYOUT: Layout = (
    ("", (("source", "source"),)),
    ("share of the answers held", _per_kind("recall")),
    ("held by no other source", _per_kind("adds")),
    ("", (("per_user", "candidates a user"),)),
)
EXAMPLE_COLUMNS = {
    "watched": (("position", "#"), ("title", "title"), ("year", "year"), ("genres", "genres")),
    "recommended": (
        ("position", "#"), ("title", "title"), ("year", "year"), ("reason", "because of"),
        ("held_out", "held out"),
    ),
}  # fmt: skip
# Shown as whole numbers (pandas stores them as floats once a value is missing).
INTEGER_COLUMNS = {"users", "epochs", "best_update", "position", "year"}
ONE_DECIMAL_COLUMNS = {"fit_seconds", "predict_seconds", "per_user"}
SIGNED_PREFIXES = ("gain_", "vs_best")  # differences, shown with their sign
CLIPPED_COLUMNS = {"title", "genres", "reason"}  # one line, the full text as a tooltip
MISSING = "–"
YEAR_SUFFIX = r"\s*\(\d{4}\)$"  # the title's " (1995)": the year has its own column


def _cell(column: str, value: Any) -> str:
    """One table cell as text: missing → "–", booleans → "✓", numbers rounded."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "✓" if value else ""
    if isinstance(value, int | float | np.integer | np.floating):
        if column in INTEGER_COLUMNS:
            return str(int(value))
        if column in ONE_DECIMAL_COLUMNS:
            return f"{value:.1f}"
        if isinstance(value, float | np.floating):
            return f"{value:+.4f}" if column.startswith(SIGNED_PREFIXES) else f"{value:.4f}"
    return str(value)


def _align(values: pd.Series) -> str:
    """The CSS class of a column: ``num`` (right), ``flag`` (centre) or ``text`` (left)."""
    if pd.api.types.is_bool_dtype(values):
        return "flag"
    return "num" if pd.api.types.is_numeric_dtype(values) else "text"


def _table(frame: pd.DataFrame, layout: Layout) -> dict[str, Any]:
    """A frame as the template's table: header groups, headers and rows of cells."""
    if frame.empty:
        return {"groups": [], "headers": [], "rows": []}
    shown = [(column, header) for _, columns in layout for column, header in columns]
    aligns = {column: _align(frame[column]) for column, _ in shown}
    groups = [{"label": label, "span": len(columns)} for label, columns in layout]
    rows = [
        [
            {
                "text": _cell(column, value),
                "align": aligns[column],
                "full": str(value) if column in CLIPPED_COLUMNS and not pd.isna(value) else "",
            }
            for (column, _), value in zip(shown, row, strict=True)
        ]
        for row in frame[[column for column, _ in shown]].itertuples(index=False, name=None)
    ]
    return {
        "groups": groups if any(group["label"] for group in groups) else [],
        "headers": [{"label": header, "align": aligns[column]} for column, header in shown],
        "rows": rows,
    }


def _mix_layout(by_mix: pd.DataFrame) -> Layout:
    mixes = [
        column for column in by_mix.columns if column not in records.columns(records.RECALL_BY_MIX)
    ]
    return (
        ("", (("list", "list"),)),
        ("holdout Recall@10 per last/random mix", tuple((mix, mix) for mix in mixes)),
        ("over the mixes", (("mean", "mean"), ("worst", "worst"), ("spread", "spread"))),
        ("", (("vs_best", "vs best"),)),
    )


def _activity_by_bucket(activity: pd.DataFrame) -> tuple[pd.DataFrame, Layout]:
    """Recall@10 of each list (rows) per activity bucket (columns, with their user counts)."""
    if activity.empty:
        return activity, ()
    buckets = list(dict.fromkeys(activity["bucket"]))
    users = activity.groupby("bucket", sort=False)["users"].max()
    wide = activity.pivot(index="model", columns="bucket", values="recall@10")
    wide = wide.reindex(index=list(dict.fromkeys(activity["model"])), columns=buckets)
    wide = wide.reset_index().rename(columns={"model": "list"})
    headers = tuple((bucket, f"{bucket} ({int(users[bucket])} users)") for bucket in buckets)
    return wide, (("", (("list", "list"),)), ("interactions in the history", headers))


def _summary(table: pd.DataFrame, weights: Mapping[str, Any]) -> dict[str, Any]:
    """The submission method, the best single model and every ensemble on the holdout half."""
    models = table[table["kind"] == "model"].dropna(subset=["holdout_recall@10"])
    ensembles = table[table["kind"] == "ensemble"].dropna(subset=["holdout_recall@10"])
    best = models.loc[models["holdout_recall@10"].idxmax()] if not models.empty else None
    choice = FinalChoice.from_json(weights["choice"]) if weights.get("choice") else None
    return {
        "method": weights.get("method") or MISSING,
        "choice": None
        if choice is None
        else {
            "chosen": choice.chosen,
            "score": f"{choice.scores[choice.chosen]:.4f}",
            "runner_up": choice.runner_up,
            "gain": f"{choice.gain:+.4f} ± {choice.standard_error:.4f}",
        },
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
    examples = records.checked(records.EXAMPLE_USERS, examples)
    examples = examples.assign(title=examples["title"].str.replace(YEAR_SUFFIX, "", regex=True))
    blocks = []
    for user, rows in examples.groupby("user", sort=False):
        parts = []
        for role, part in rows.groupby("role", sort=False):
            columns = tuple((c, h) for c, h in EXAMPLE_COLUMNS[str(role)] if c in part)
            parts.append({"role": str(role), "table": _table(part, (("", columns),))})
        blocks.append({"user": str(user), "parts": parts})
    return blocks


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("movie_rec", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _checked(schema: DataFrameSchema, frame: pd.DataFrame | None) -> pd.DataFrame:
    """A table the page reads, checked against its schema; a missing one is empty."""
    if frame is None or frame.empty:
        return records.empty(schema)
    return records.checked(schema, frame)


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
    table = _checked(records.METRICS, table)
    by_mix = _checked(records.RECALL_BY_MIX, by_mix)
    activity = _checked(records.RECALL_BY_ACTIVITY, activity)
    activity_wide, activity_layout = _activity_by_bucket(activity)
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=title,
        summary=_summary(table, weights),
        metrics=_table(table, METRICS_LAYOUT),
        costs=_table(table, COST_LAYOUT),
        by_mix=_table(by_mix, _mix_layout(by_mix)),
        release_filter=_table(
            _checked(records.RELEASE_FILTER, release_filter), RELEASE_FILTER_LAYOUT
        ),
        release_filter_slack=release_filter_slack,
        candidate_ceiling=_table(
            _checked(records.CANDIDATE_CEILING, candidate_ceiling), CEILING_LAYOUT
        ),
        activity=_table(activity_wide, activity_layout),
        images=[
            {"name": name, "data": base64.b64encode(png).decode("ascii")}
            for name, png in images.items()
        ],
        examples_valid=_example_blocks(examples_valid),
        examples=_example_blocks(examples),
    )

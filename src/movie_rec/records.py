"""The tables the report reads: one pandera schema each, shared by producer and report.

A table is checked where it is made and where the report reads it, so a producer that
renames or drops a column stops at once, naming the table and the column, instead of
leaving a column of the report empty.

* :data:`CANDIDATE_CEILING`: the ranker's candidate recall per source, made by
  :func:`movie_rec.second_stage.candidates.candidate_recall_by_source` and kept in
  ``lgbm_ranker.metrics``;
* :data:`METRICS`, :data:`RECALL_BY_MIX`, :data:`RELEASE_FILTER`,
  :data:`RECALL_BY_ACTIVITY`, :data:`EXAMPLE_USERS`: made by :mod:`movie_rec.report.tables`
  from the models' and the ensemble's metrics, saved as CSV under ``data/08_reporting/`` and
  read back by the page (:mod:`movie_rec.report.page`).
"""

from __future__ import annotations

import pandas as pd
import pandera.errors
import pandera.pandas as pa

RECALL_COLUMNS = ("recall@10", "recall@10_last", "recall@10_random")
RELEASE_SIDES = ("with", "without", "gain")
MIX_COLUMN = r"^\d+/\d+$"  # "a/b": a last and b random items held out


def _share(**options) -> pa.Column:
    """A share of the held-out answers: a number in [0, 1], missing where undefined."""
    return pa.Column(float, pa.Check.in_range(0.0, 1.0), nullable=True, **options)


def _number(**options) -> pa.Column:
    return pa.Column(float, nullable=True, **options)


def _text(*checks: pa.Check, nullable: bool = False, **options) -> pa.Column:
    return pa.Column(str, list(checks), nullable=nullable, **options)


def _schema(name: str, columns: dict[str, pa.Column], **options) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(columns, name=name, strict=True, coerce=True, **options)


CANDIDATE_CEILING = _schema(
    "candidate_ceiling",
    {
        "source": _text(unique=True),
        **{name: _share() for name in ("recall", "recall_last", "recall_random")},
        # the share of the answers this source holds and no other does (missing for the union)
        **{name: _share() for name in ("adds", "adds_last", "adds_random")},
        "per_user": _number(checks=pa.Check.ge(0)),  # candidates per answered user
    },
    ordered=True,
)

METRICS = _schema(
    "metrics_table",
    {
        "model": _text(unique=True),
        "kind": _text(pa.Check.isin(["model", "ensemble"])),
        **{name: _share() for name in RECALL_COLUMNS},
        **{f"holdout_{name}": _share() for name in RECALL_COLUMNS},
        "mix_mean": _share(),
        "mix_worst": _share(),
        "users": _number(checks=pa.Check.ge(0)),
        "fit_seconds": _number(checks=pa.Check.ge(0)),
        "predict_seconds": _number(checks=pa.Check.ge(0)),
        "device": _text(nullable=True),
        "epochs": _number(),
        "best_update": _number(),
    },
    ordered=True,
)

RECALL_BY_MIX = _schema(
    "recall_by_mix",
    {
        "list": _text(unique=True),
        MIX_COLUMN: _share(regex=True, required=False),
        "mean": _share(),
        "worst": _share(),
        "spread": _share(),  # best mix minus worst mix
        "vs_best": _number(checks=pa.Check.le(0)),  # the list's mean minus the best mean
    },
)

RELEASE_FILTER = _schema(
    "release_filter_ablation",
    {
        "list": _text(unique=True),
        **{
            f"{side}_{name}": _number() if side == "gain" else _share()
            for name in RECALL_COLUMNS
            for side in RELEASE_SIDES
        },
    },
    ordered=True,
)

RECALL_BY_ACTIVITY = _schema(
    "recall_by_activity",
    {
        "model": _text(),
        "bucket": _text(),  # history length, e.g. "16–49"
        "users": _number(checks=pa.Check.ge(0)),
        "recall@10": _share(),
    },
    ordered=True,
)

EXAMPLE_USERS = _schema(
    "example_users",
    {
        "user": pa.Column(int),
        "role": _text(pa.Check.isin(["watched", "recommended"])),
        "position": pa.Column(int, pa.Check.ge(1)),
        "item": pa.Column(int),
        "title": _text(nullable=True),
        "year": _number(),
        "genres": _text(nullable=True),
        "reason": _text(nullable=True, required=False),  # why it was recommended
        "held_out": pa.Column(bool, required=False),  # validation lists: an answer
    },
)


def columns(schema: pa.DataFrameSchema) -> list[str]:
    """The schema's named columns, in order (a regex column such as a mix is left out)."""
    return [name for name, column in schema.columns.items() if not column.regex]


def empty(schema: pa.DataFrameSchema) -> pd.DataFrame:
    """A table of the schema with no rows (its required named columns)."""
    required = [name for name in columns(schema) if schema.columns[name].required]
    return schema.validate(pd.DataFrame(columns=required))


SCHEMA_PROBLEMS = {
    "column_in_dataframe": "missing column(s)",
    "column_in_schema": "unexpected column(s)",
}


class RecordError(ValueError):
    """A table that does not fit its schema: one line per problem."""


def checked(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` coerced to the schema's types, or a :class:`RecordError` naming the table,
    each bad column, the check it failed and its first bad value."""
    try:
        return schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        raise RecordError(_problems(schema.name, errors.failure_cases)) from None


def _problems(table: str, failures: pd.DataFrame) -> str:
    lines = []
    for (context, column, check), rows in failures.groupby(
        ["schema_context", "column", "check"], sort=False, dropna=False
    ):
        values = rows["failure_case"].tolist()
        if context == "DataFrameSchema" and check in SCHEMA_PROBLEMS:
            lines.append(f"{SCHEMA_PROBLEMS[check]} {', '.join(map(repr, values))}")
        else:
            lines.append(f"column {column!r}: {check} (first bad value {values[0]!r})")
    return f"{table}: " + "; ".join(lines)

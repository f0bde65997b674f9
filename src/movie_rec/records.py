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

And the records the models and the ensemble write, one frozen dataclass each, turned into
JSON only at the catalog's edge (:class:`movie_rec.datasets.RecordJSONDataset` calls
``to_json`` and ``from_json``): :class:`ModelMetrics` (``M.metrics``, the ranker's with its
:class:`RankerRecord`), :class:`FitReport` (``M.valid_report``, ``M.final_report``),
:class:`EnsembleMetrics` (``ensemble_metrics``) and :class:`Skipped`, what a disabled model
writes in place of its metrics, fit reports and model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Protocol, Self, TypeVar

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


Json = dict[str, Any]
SKIPPED = "skipped"


class JsonRecord(Protocol):
    """A record that the catalog saves as JSON (:class:`movie_rec.datasets.RecordJSONDataset`)."""

    def to_json(self) -> Json: ...

    @classmethod
    def from_json(cls, data: Json) -> Self: ...


R = TypeVar("R")
J = TypeVar("J", bound=JsonRecord)


def _fields_json(record: Any, keys: Mapping[str, str] | None = None) -> Json:
    """A flat record as JSON: each field under its name, or under ``keys[name]``."""
    keys = keys or {}
    return {keys.get(f.name, f.name): getattr(record, f.name) for f in fields(record)}


def _fields_from_json(record: type[R], data: Json, keys: Mapping[str, str] | None = None) -> R:
    keys = keys or {}
    return record(**{f.name: data[keys.get(f.name, f.name)] for f in fields(record)})


@dataclass(frozen=True)
class Skipped:
    """What a disabled model writes in place of its metrics, fit reports and model (and any
    model writes in place of the validation fit's model its final fit does not continue)."""

    model: str

    def to_json(self) -> Json:
        return {"model": self.model, SKIPPED: True}

    @classmethod
    def from_json(cls, data: Json) -> Skipped:
        return cls(data["model"])

    @staticmethod
    def marks(data: Json) -> bool:
        """Whether ``data`` is the JSON of a :class:`Skipped`."""
        return SKIPPED in data and data[SKIPPED] is True


def from_json(record: type[J], data: Json) -> J | Skipped:
    """``data`` as a ``record``, or as :class:`Skipped` where a disabled model wrote it."""
    return Skipped.from_json(data) if Skipped.marks(data) else record.from_json(data)


@dataclass(frozen=True)
class Recall:
    """Recall@10 overall and on the last and the random held-out items (NaN for a kind no
    user has), over ``users`` users: :func:`movie_rec.evaluation.recall_at_k`'s figures."""

    overall: float
    last: float
    random: float
    users: int

    KEYS: ClassVar[dict[str, str]] = dict(
        zip(("overall", "last", "random"), RECALL_COLUMNS, strict=True)
    )

    def columns(self, prefix: str = "") -> dict[str, float]:
        """The three recalls under their column names (``recall@10``...), ``prefix`` first."""
        return {f"{prefix}{key}": getattr(self, name) for name, key in self.KEYS.items()}

    def to_json(self) -> Json:
        return _fields_json(self, self.KEYS)

    @classmethod
    def from_json(cls, data: Json) -> Recall:
        return _fields_from_json(cls, data, cls.KEYS)


@dataclass(frozen=True)
class MixRecall:
    """Recall@10 under each last/random mix (``"2/8"``: 2 last and 8 random items held
    out), their mean and the worst: :func:`movie_rec.evaluation.recall_by_mix`'s figures."""

    mixes: dict[str, float]
    mean: float
    worst: float

    SUMMARY: ClassVar[tuple[str, ...]] = ("mean", "worst")

    def to_json(self) -> Json:
        return {**self.mixes, "mean": self.mean, "worst": self.worst}

    @classmethod
    def from_json(cls, data: Json) -> MixRecall:
        mixes = {key: value for key, value in data.items() if key not in cls.SUMMARY}
        return cls(mixes, data["mean"], data["worst"])


@dataclass(frozen=True)
class Training:
    """An iterative fit's training (:func:`movie_rec.models.training.train`): the update it
    kept, the updates and evaluations it ran, its seconds and its recall-by-update history."""

    best_update: int
    updates: int
    evaluations: int
    training_seconds: float
    history: list[dict[str, float | None]]

    def to_json(self) -> Json:
        return _fields_json(self)

    @classmethod
    def from_json(cls, data: Json) -> Training | None:
        """The training in ``data``; None for a model the shared loop did not train."""
        return _fields_from_json(cls, data) if "best_update" in data else None


@dataclass(frozen=True)
class FitReport:
    """One fit of a first-stage model (``M.valid_report``, ``M.final_report``): its
    seconds, device and hyperparameters, the passes and training of an iterative model, and
    the run plan's estimate (validation fit only)."""

    model: str
    fit_seconds: float
    predict_seconds: float
    device: str
    hyperparameters: dict[str, Any]
    passes: int | None = None
    training: Training | None = None
    estimated_run_minutes: float | None = None

    @property
    def best_update(self) -> int | None:
        return self.training.best_update if self.training else None

    def to_json(self) -> Json:
        data = {
            "model": self.model,
            "fit_seconds": self.fit_seconds,
            "predict_seconds": self.predict_seconds,
            "device": self.device,
            "hyperparameters": self.hyperparameters,
            "passes": self.passes,
            **(self.training.to_json() if self.training else {}),
            "estimated_run_minutes": self.estimated_run_minutes,
        }
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_json(cls, data: Json) -> FitReport:
        return cls(
            data["model"],
            data["fit_seconds"],
            data["predict_seconds"],
            data["device"],
            data["hyperparameters"],
            passes=data.get("passes"),
            training=Training.from_json(data),
            estimated_run_minutes=data.get("estimated_run_minutes"),
        )


@dataclass(frozen=True)
class FirstStageRecord:
    """What a first-stage model's metrics add: the run plan's estimate, the final fit's
    seconds and its Optuna study (trials finished, pruned, seconds, best value, and whether
    the stop rule cut it short)."""

    estimated_run_minutes: float | None
    final_fit_seconds: float
    final_predict_seconds: float
    tuning_trials: int
    tuning_pruned: int
    tuning_seconds: float
    tuning_best_value: float | None
    tuning_cut_short: bool

    def to_json(self) -> Json:
        return _fields_json(self)

    @classmethod
    def from_json(cls, data: Json) -> FirstStageRecord | None:
        return _fields_from_json(cls, data) if "final_fit_seconds" in data else None


@dataclass(frozen=True)
class RankerRecord:
    """What the ranker's metrics add: each fold model's boosting rounds, the extra holdouts'
    training queries, the candidates' recall (overall and per source, rows of
    :data:`CANDIDATE_CEILING`), each first-stage list's Recall@10 and recall per mix on the
    same users, its own recall per mix and its top features by gain."""

    fold_rounds: list[int]
    extra_queries: int
    candidate_recall: float
    candidate_recall_by_source: list[dict[str, Any]]
    first_stage_recall: dict[str, float]
    by_mix: MixRecall
    first_stage_by_mix: dict[str, MixRecall]
    top_features: list[str]

    KEYS: ClassVar[dict[str, str]] = {"first_stage_recall": "first_stage_recall@10"}

    def to_json(self) -> Json:
        return _fields_json(self, self.KEYS) | {
            "by_mix": self.by_mix.to_json(),
            "first_stage_by_mix": _json_values(self.first_stage_by_mix),
        }

    @classmethod
    def from_json(cls, data: Json) -> RankerRecord | None:
        if "fold_rounds" not in data:
            return None
        return replace(
            _fields_from_json(cls, data, cls.KEYS),
            by_mix=MixRecall.from_json(data["by_mix"]),
            first_stage_by_mix=_values_from_json(MixRecall, data["first_stage_by_mix"]),
        )


@dataclass(frozen=True)
class ModelMetrics:
    """A model's ``M.metrics`` (docs/architecture.md §5): its validation recall, the
    validation fit's seconds, device, epochs and hyperparameters; the training of an
    iterative model; what a first-stage model or the ranker adds."""

    model: str
    recall: Recall
    fit_seconds: float
    predict_seconds: float
    device: str
    epochs: int | None
    hyperparameters: dict[str, Any]
    training: Training | None = None
    first_stage: FirstStageRecord | None = None
    ranker: RankerRecord | None = None

    @property
    def best_update(self) -> int | None:
        return self.training.best_update if self.training else None

    def to_json(self) -> Json:
        return {
            "model": self.model,
            **self.recall.to_json(),
            "fit_seconds": self.fit_seconds,
            "predict_seconds": self.predict_seconds,
            "device": self.device,
            "epochs": self.epochs,
            "hyperparameters": self.hyperparameters,
            **_parts_json(self.training, self.first_stage, self.ranker),
        }

    @classmethod
    def from_json(cls, data: Json) -> ModelMetrics:
        return cls(
            data["model"],
            Recall.from_json(data),
            data["fit_seconds"],
            data["predict_seconds"],
            data["device"],
            data["epochs"],
            data["hyperparameters"],
            training=Training.from_json(data),
            first_stage=FirstStageRecord.from_json(data),
            ranker=RankerRecord.from_json(data),
        )


@dataclass(frozen=True)
class Halves:
    """A list's Recall@10 on every validated user, on the tuning half and on the holdout
    half (:func:`movie_rec.fusion_tuning.evaluate_on_halves`)."""

    all: Recall
    tune: Recall
    holdout: Recall

    def to_json(self) -> Json:
        return {f.name: getattr(self, f.name).to_json() for f in fields(self)}

    @classmethod
    def from_json(cls, data: Json) -> Halves:
        return cls(**{f.name: Recall.from_json(data[f.name]) for f in fields(cls)})


@dataclass(frozen=True)
class FusionMetrics:
    """A fusion method's recall on the halves, its tuning and its fusing seconds."""

    halves: Halves
    fit_seconds: float
    predict_seconds: float

    def to_json(self) -> Json:
        timings = {"fit_seconds": self.fit_seconds, "predict_seconds": self.predict_seconds}
        return self.halves.to_json() | timings

    @classmethod
    def from_json(cls, data: Json) -> FusionMetrics:
        return cls(Halves.from_json(data), data["fit_seconds"], data["predict_seconds"])


@dataclass(frozen=True)
class ReleaseAblation:
    """A list's holdout Recall@10 with and without the release-year filter."""

    with_filter: Recall
    without_filter: Recall

    KEYS: ClassVar[dict[str, str]] = {"with_filter": "with", "without_filter": "without"}

    def to_json(self) -> Json:
        return {key: getattr(self, name).to_json() for name, key in self.KEYS.items()}

    @classmethod
    def from_json(cls, data: Json) -> ReleaseAblation:
        return cls(**{name: Recall.from_json(data[key]) for name, key in cls.KEYS.items()})


@dataclass(frozen=True)
class FinalChoice:
    """Which list became the submission, judged on every validated user out of fold.

    Attributes:
        chosen: the list (a model's name, or the tuned fusion's).
        scores: each contender's mean objective
            (:func:`movie_rec.fusion_tuning.objective_per_user`): the best first-stage list,
            each second-stage list (scored out of fold) and the fusion cross-fitted (tuned
            without the users it is scored on), simplest first.
        runner_up: the best-scoring contender other than ``chosen``.
        gain: the mean per-user objective of ``chosen`` minus ``runner_up``'s.
        standard_error: the standard error of that paired difference.
    """

    chosen: str
    scores: dict[str, float]
    runner_up: str | None
    gain: float
    standard_error: float

    def to_json(self) -> Json:
        return _fields_json(self)

    @classmethod
    def from_json(cls, data: Json) -> FinalChoice:
        return _fields_from_json(cls, data)


@dataclass(frozen=True)
class EnsembleMetrics:
    """``ensemble_metrics``: the final choice, the halves' sizes, the fusion's tuning
    trials, and every list's recall on the halves, per mix (holdout; best mean first) and
    with and without the release-year filter (empty when the filter is off)."""

    final_choice: FinalChoice | None
    tune_users: int
    holdout_users: int
    trials: int
    models: dict[str, Halves]
    ensembles: dict[str, FusionMetrics]
    by_mix: dict[str, MixRecall]
    release_filter: dict[str, ReleaseAblation]
    release_filter_slack: float

    def to_json(self) -> Json:
        return {
            "final_choice": self.final_choice.to_json() if self.final_choice else None,
            "tune_users": self.tune_users,
            "holdout_users": self.holdout_users,
            "trials": self.trials,
            "models": _json_values(self.models),
            "ensembles": _json_values(self.ensembles),
            "by_mix": _json_values(self.by_mix),
            "release_filter": _json_values(self.release_filter),
            "release_filter_slack": self.release_filter_slack,
        }

    @classmethod
    def from_json(cls, data: Json) -> EnsembleMetrics:
        choice = data["final_choice"]
        return cls(
            FinalChoice.from_json(choice) if choice else None,
            data["tune_users"],
            data["holdout_users"],
            data["trials"],
            _values_from_json(Halves, data["models"]),
            _values_from_json(FusionMetrics, data["ensembles"]),
            _values_from_json(MixRecall, data["by_mix"]),
            _values_from_json(ReleaseAblation, data["release_filter"]),
            data["release_filter_slack"],
        )


def _json_values(records: Mapping[str, JsonRecord]) -> Json:
    return {name: record.to_json() for name, record in records.items()}


def _values_from_json(record: type[J], data: Json) -> dict[str, J]:
    return {name: record.from_json(value) for name, value in data.items()}


def _parts_json(*parts: JsonRecord | None) -> Json:
    """The JSON of the parts present, side by side in one object."""
    return {key: value for part in parts if part for key, value in part.to_json().items()}

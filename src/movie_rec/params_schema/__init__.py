"""One schema for every parameter file, checked before any node runs.

:func:`validate_parameters` reads the merged parameters (``conf/base``, ``conf/local`` and
``--params``) and raises :class:`ParameterError` listing every problem it finds, each as
``<file>: <dotted key> = <value>: <what is allowed>`` (:mod:`.problems`). The static
sections are pydantic models; those with typed settings (the ensemble's, every model's)
are derived from their dataclasses (:mod:`.fields`, :mod:`movie_rec.parameters`); the
model sections of ``general_rec`` and ``sequential_rec`` are checked against the registry
(:mod:`.models`), so a new model needs no edit here.
:class:`movie_rec.hooks.RuntimeHooks` calls it in ``after_context_created``.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from movie_rec.parameters import Count, EnsemblingSettings, NonNegative, Rate, Seed
from movie_rec.params_schema.fields import Section, dataclass_schema
from movie_rec.params_schema.models import pipeline_problems
from movie_rec.params_schema.problems import (
    ParameterError,
    Problem,
    inconsistent,
    parameter_file,
    validated,
)
from movie_rec.runtime import DEVICE_CHOICES
from movie_rec.tracking import TrackingSettings
from movie_rec.tuning.storage import RDB_DIALECTS, rdb_dialect

__all__ = [
    "ParameterError",
    "Problem",
    "parameter_file",
    "parameter_problems",
    "validate_parameters",
]

MODEL_PIPELINES = ("general_rec", "sequential_rec")


# --- parameters.yml -----------------------------------------------------------------------


def device_name(value: str) -> str:
    if value not in DEVICE_CHOICES and not (
        value.startswith("cuda:") and value.removeprefix("cuda:").isdigit()
    ):
        raise ValueError(f"expected one of {', '.join(DEVICE_CHOICES)} or cuda:N")
    return value


def scheduler_address(value: str) -> str:
    scheme, separator, location = value.rpartition("://")
    host, colon, port = location.rpartition(":")
    if (separator and not scheme) or not host or not colon or not port.isdigit():
        raise ValueError("expected a scheduler address such as tcp://HOST:8786")
    return value


def study_storage_location(value: str) -> str:
    dialect = rdb_dialect(value)
    if dialect not in (None, *RDB_DIALECTS) or not value.strip():
        raise ValueError(
            f"expected an RDB URL ({', '.join(RDB_DIALECTS)}) or the path of a journal file"
        )
    return value


class Runtime(Section):
    device: Annotated[str, AfterValidator(device_name)] = "auto"
    seed: Seed = 42
    torch_threads: Count | None = None
    auto_max_minutes: dict[Literal["cpu", "cuda"], Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict
    )
    cuda_deterministic: bool = False
    dask_address: Annotated[str, AfterValidator(scheduler_address)] | None = None
    dask_workers: Count | None = None


class Candidates(Section):
    k: Count
    batch_size: Count


class Tuning(Section):
    storage_dir: str
    storage: Annotated[str, AfterValidator(study_storage_location)] | None = None
    max_eval_users: Count | None = None
    batch_size: Count


class Evaluation(Section):
    mixes: Annotated[
        list[Annotated[list[NonNegative], Field(min_length=2, max_length=2)]], Field(min_length=1)
    ]

    @field_validator("mixes")
    @classmethod
    def some_answers(cls, mixes: list[list[int]]) -> list[list[int]]:
        if any(sum(mix) == 0 for mix in mixes):
            raise ValueError("expected [n_last, n_random] pairs with at least one answer each")
        return mixes


Tracking = dataclass_schema(TrackingSettings)


# --- parameters_data_processing.yml -------------------------------------------------------


class Preprocessing(Section):
    fill_year_from_title: bool = True
    representative_people: bool = True
    genres_one_hot: bool = True


class Split(Section):
    n_last: NonNegative
    n_random: NonNegative
    min_history: Count
    seed: Seed
    max_users: Count | None = None

    @model_validator(mode="after")
    def keeps_history(self) -> Split:
        held_out = self.n_last + self.n_random
        if held_out == 0:
            raise inconsistent("n_last + n_random = 0: at least one answer must be held out")
        if held_out >= self.min_history:
            raise inconsistent(
                f"n_last + n_random = {held_out} must be smaller than "
                f"min_history = {self.min_history}"
            )
        return self


class DataProcessing(Section):
    preprocessing: Preprocessing
    split: Split


# --- parameters_tabular_rec.yml, parameters_ensembling.yml, parameters_reporting.yml ------


class KindGain(Section):
    last: Annotated[float, Field(ge=0)] = 1.0
    random: Annotated[float, Field(ge=0)] = 1.0


class TabularRec(Section):
    """The LightGBM ranker (:mod:`movie_rec.pipelines.tabular_rec.nodes`)."""

    enabled: bool
    top_n: Count
    n_popular: NonNegative
    markov_k: Annotated[list[Count], Field(min_length=1)]
    cooc_window: Count
    cooc_decay: Annotated[float, Field(gt=0, le=1)]
    recent_days: Rate
    user_window_days: Rate
    batch_size: Count = 1024
    n_folds: Annotated[int, Field(ge=2)]
    early_stopping_share: Annotated[float, Field(gt=0, lt=1)]
    early_stopping_rounds: Count
    max_rounds: Count
    max_train_users: Count | None = None
    extra_splits: NonNegative = 0
    extra_split_users: Count | None = None
    num_threads: NonNegative
    kind_gain: KindGain = KindGain()
    objective: Literal["lambdarank", "binary"] = "lambdarank"
    bags: Count = 1
    negative_share: Annotated[float, Field(gt=0, le=1)] = 1.0
    lgbm: dict[str, int | float | str | bool] = Field(default_factory=dict)


Ensembling = dataclass_schema(EnsemblingSettings)


class ExampleUsers(Section):
    count: Count
    watched: Count
    seed: Seed


class Reporting(Section):
    activity_buckets: Annotated[list[Count], Field(min_length=1)]
    example_users: ExampleUsers

    @field_validator("activity_buckets")
    @classmethod
    def increasing(cls, edges: list[int]) -> list[int]:
        if any(low >= high for low, high in pairwise(edges)):
            raise ValueError("expected strictly increasing history lengths")
        return edges


# --- all parameters -----------------------------------------------------------------------


class Parameters(Section):
    """Every top-level key of the parameter files; model sections are checked by
    :func:`pipeline_problems`."""

    runtime: Runtime
    candidates: Candidates
    tuning: Tuning
    evaluation: Evaluation
    tracking: Tracking | None = None
    raw_dir: str | None = None
    data_processing: DataProcessing
    general_rec: dict[str, Any]
    sequential_rec: dict[str, Any]
    tabular_rec: TabularRec
    ensembling: Ensembling
    reporting: Reporting


def parameter_problems(params: Mapping[str, Any]) -> list[Problem]:
    """Every problem of ``params`` (empty when they are valid)."""
    problems = validated(Parameters, params, ())
    for pipeline in MODEL_PIPELINES:
        if isinstance(params.get(pipeline), Mapping):
            problems += pipeline_problems(pipeline, params[pipeline])
    return problems


def validate_parameters(params: Mapping[str, Any]) -> None:
    """Raise :class:`ParameterError` naming every invalid parameter of ``params``."""
    problems = parameter_problems(params)
    if problems:
        raise ParameterError(problems)

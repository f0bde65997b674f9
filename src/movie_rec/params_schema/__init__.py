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
from typing import Any

from movie_rec.parameters import (
    CandidateSettings,
    EnsemblingSettings,
    EvaluationSettings,
    PreprocessingSettings,
    ReportingSettings,
    TabularSettings,
    TuningSettings,
)
from movie_rec.params_schema.fields import Section, dataclass_schema, derived_schema
from movie_rec.params_schema.models import pipeline_problems
from movie_rec.params_schema.problems import (
    ParameterError,
    Problem,
    parameter_file,
    validated,
)
from movie_rec.runtime import RuntimeSettings
from movie_rec.splits import SplitSettings
from movie_rec.tracking import TrackingSettings

__all__ = [
    "ParameterError",
    "Problem",
    "parameter_file",
    "parameter_problems",
    "validate_parameters",
]

MODEL_PIPELINES = ("general_rec", "sequential_rec")


# --- each section: derived from its settings dataclass -----------------------------------

Runtime = dataclass_schema(RuntimeSettings)
Candidates = dataclass_schema(CandidateSettings)
Tuning = dataclass_schema(TuningSettings)
Evaluation = dataclass_schema(EvaluationSettings)
Tracking = dataclass_schema(TrackingSettings)
Preprocessing = dataclass_schema(PreprocessingSettings)
Split = derived_schema(SplitSettings, checked=True)  # its own checks give its messages
TabularRec = dataclass_schema(TabularSettings)
Ensembling = dataclass_schema(EnsemblingSettings)
Reporting = dataclass_schema(ReportingSettings)


class DataProcessing(Section):
    preprocessing: Preprocessing
    split: Split


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

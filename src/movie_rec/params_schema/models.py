"""The model sections of ``general_rec`` and ``sequential_rec``, checked against the registry.

A section's name must be a registered model of that pipeline. Merged over ``common``
(:class:`movie_rec.parameters.SettingsSource`), it must fit
:class:`~movie_rec.parameters.ModelSettings`; its hyperparameters must be fields of the
model's config dataclass, its ``train`` those of ``TrainConfig``, and every value its
Optuna search space can draw must build a valid config. Each problem is reported under the
section that holds the key, the model's own or ``common``. A new model needs no edit here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from movie_rec.models.sequential.s3rec import SECTION, S3RecConfig
from movie_rec.models.training import TrainConfig
from movie_rec.parameters import ModelSettings, SettingsSource, Study
from movie_rec.params_schema.fields import (
    Section,
    built,
    config_complaint,
    dataclass_schema,
    derived_schema,
)
from movie_rec.params_schema.problems import (
    Problem,
    inconsistent,
    invalid,
    pydantic_problems,
    validated,
)
from movie_rec.registry import ITERATIVE, ModelSpec, models_of
from movie_rec.values import one_of

SEARCH_TYPES = ("float", "int", "categorical")


class SearchEntry(Section):
    """One hyperparameter's Optuna range (:func:`movie_rec.tuning.studies.suggest`)."""

    type: Annotated[str, one_of(*SEARCH_TYPES)]
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def coherent(self) -> SearchEntry:
        if self.type == "categorical":
            if not self.choices:
                raise inconsistent(f"choices = {self.choices!r}: a categorical needs choices")
            if self.low is not None or self.high is not None:
                raise inconsistent("low/high: a categorical takes choices only")
            return self
        if self.low is None or self.high is None:
            raise inconsistent(f"low/high: a {self.type} range needs both")
        if self.choices is not None:
            raise inconsistent("choices: a range takes low and high only")
        if self.low >= self.high:
            raise inconsistent(f"low = {self.low} must be smaller than high = {self.high}")
        if self.log and self.low <= 0:
            raise inconsistent(f"low = {self.low} must be positive with log: true")
        return self

    def values(self) -> dict[str, Any]:
        """The values whose validity stands for the whole space: bounds or every choice."""
        if self.type == "categorical":
            return {f"choices[{i}]": choice for i, choice in enumerate(self.choices or [])}
        return {"low": self.low, "high": self.high}


StudySection = derived_schema(Study, search_space=(dict[str, SearchEntry], {}))
ModelSection = derived_schema(
    ModelSettings, checked=False, hyperparameters=(dict[str, Any], {}), train=(dict[str, Any], {})
)  # a model's section merged over `common`; its hyperparameters and train are checked apart
Train = dataclass_schema(TrainConfig)


class S3RecSection(Section):
    """S3Rec pre-training's section (``sequential_rec.s3rec``), merged over ``common``."""

    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)


def moved(source: SettingsSource, problems: list[Problem]) -> list[Problem]:
    """``problems`` found in the merged settings, under the section that holds each."""
    return [Problem(source.path(*problem.path), problem.detail) for problem in problems]


def hyperparameter_problems(
    source: SettingsSource, schema: type[Section], build: type
) -> list[Problem]:
    """Own keys outside ``schema``, bad values, and the config's own complaints."""
    allowed = ", ".join(schema.model_fields)
    problems = [
        invalid((source.pipeline, source.name, "hyperparameters", key), value,
                f"not a hyperparameter of {source.name}; expected one of {allowed}")
        for key, value in source.own.get("hyperparameters", {}).items()
        if key not in schema.model_fields
    ]  # fmt: skip
    hyperparameters = source.merged.get("hyperparameters") or {}
    values = {key: value for key, value in hyperparameters.items() if key in schema.model_fields}
    found = moved(source, validated(schema, values, ("hyperparameters",)))
    if not found and (complaint := built(build, values)):
        found.append(Problem(source.path("hyperparameters"), f": {complaint}"))
    return problems + found


def search_space_problems(
    source: SettingsSource, schema: type[Section], study: Any, fixed: dict[str, Any], build: type
) -> list[Problem]:
    """Every search-space key is a hyperparameter and every value drawn builds a config."""
    problems = []
    for key, entry in study.search_space.items():
        path = source.path("tuning", "search_space", key)
        if key not in schema.model_fields:
            allowed = ", ".join(schema.model_fields)
            detail = f": not a hyperparameter of {source.name}; expected one of {allowed}"
            problems.append(Problem(path, detail))
            continue
        if entry.type == "float" and schema.model_fields[key].annotation is int:
            problems.append(invalid((*path, "type"), entry.type, f"{key} is an int; expected int"))
            continue
        for label, value in entry.values().items():
            complaint = config_complaint(schema, build, {**fixed, key: value})
            if complaint:
                problems.append(invalid((*path, label), value, f"invalid {key}: {complaint}"))
    return problems


def model_problems(entry: ModelSpec, common: Mapping[str, Any], own: Any) -> list[Problem]:
    """One registered model's section, merged over ``common``, against the registry."""
    if not isinstance(own, Mapping):
        return [invalid((entry.pipeline, entry.name), own, "expected a mapping")]
    source = SettingsSource(entry.pipeline, entry.name, common, own)
    try:
        section = ModelSection.model_validate(source.merged)
    except ValidationError as error:
        return moved(source, pydantic_problems(error, ()))
    problems = []
    if "train" in own and not entry.can(ITERATIVE):
        problems.append(
            invalid(source.path("train"), own["train"], f"{entry.name} does not train iteratively")
        )
    train_problems = moved(source, validated(Train, section.train, ("train",)))
    if not train_problems and (complaint := built(TrainConfig, section.train)):
        train_problems.append(Problem(source.path("train"), f": {complaint}"))
    schema = dataclass_schema(entry.config)
    fixed = {k: v for k, v in section.hyperparameters.items() if k in schema.model_fields}
    problems += train_problems
    value_problems = hyperparameter_problems(source, schema, entry.config)
    if value_problems:  # every drawn value would repeat them
        return problems + value_problems
    return problems + search_space_problems(source, schema, section.tuning, fixed, entry.config)


def s3rec_problems(common: Mapping[str, Any], own: Any) -> list[Problem]:
    """The S3Rec pre-training section (``sequential_rec.s3rec``)."""
    problems = validated(S3RecSection, own, ("sequential_rec", SECTION))
    if problems:
        return problems
    source = SettingsSource("sequential_rec", SECTION, common, own)
    return hyperparameter_problems(source, dataclass_schema(S3RecConfig), S3RecConfig)


EXTRA_SECTIONS = {"sequential_rec": {SECTION: (S3RecConfig, s3rec_problems)}}


def pipeline_problems(pipeline: str, section: Mapping[str, Any]) -> list[Problem]:
    """Every model section of ``pipeline`` (and its ``common``) against the registry."""
    entries = {entry.name: entry for entry in models_of(pipeline)}
    extras = EXTRA_SECTIONS.get(pipeline, {})
    common = section.get("common", {})
    if not isinstance(common, Mapping):
        return [invalid((pipeline, "common"), common, "expected a mapping")]
    problems = [
        Problem((pipeline, name), f": missing; every registered {pipeline} model needs a section")
        for name in entries
        if name not in section
    ]
    configs = [e.config for e in entries.values()] + [config for config, _ in extras.values()]
    known = sorted({key for config in configs for key in dataclass_schema(config).model_fields})
    shared = common.get("hyperparameters") or {}
    problems += [
        invalid((pipeline, "common", "hyperparameters", key), value,
                f"no {pipeline} model reads it; expected one of {', '.join(known)}")
        for key, value in (shared.items() if isinstance(shared, Mapping) else ())
        if key not in known
    ]  # fmt: skip
    for name, own in section.items():
        if name == "common":
            continue
        if name in extras:
            problems += extras[name][1](common, own)
        elif name in entries:
            problems += model_problems(entries[name], common, own)
        else:
            allowed = ", ".join(["common", *entries, *extras])
            detail = f": not a registered {pipeline} model; expected one of {allowed}"
            problems.append(Problem((pipeline, name), detail))
    return list(dict.fromkeys(problems))

"""Schemas derived from dataclasses: a strict pydantic :class:`Section` per config or settings
dataclass, with its fields, types, ranges and defaults.

A settings dataclass (:class:`movie_rec.parameters.Settings`) states its ranges and choices
in its field types and is checked: its own check (``__post_init__``) runs once its fields
pass, as a problem of its section. A model's config dataclass states plain types (the fields of
the neural sequence configs take their ranges from :data:`SEQUENTIAL_RANGES`); its own
complaint is reported by :func:`built`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

from movie_rec.models.config import ParamsConfig
from movie_rec.models.sequential.data import LOSSES, SequentialConfig
from movie_rec.models.sequential.s3rec import ATTRIBUTE_KINDS, OBJECTIVE_WEIGHTS
from movie_rec.parameters import Settings
from movie_rec.params_schema.problems import dotted, inconsistent, validated
from movie_rec.values import Count, NonNegativeFloat, Probability, Rate, Share, one_of


class Section(BaseModel):
    """A parameter mapping: strict types, and an unknown key is an error naming the known ones."""

    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key, value in data.items():
                if key not in cls.model_fields:
                    raise PydanticCustomError(
                        "unknown_key",
                        "unknown key {key}",
                        {"key": key, "value": value, "allowed": ", ".join(cls.model_fields)},
                    )
        return data


ObjectiveWeights = create_model(
    "ObjectiveWeights",
    __base__=Section,
    **{name: (NonNegativeFloat, weight) for name, weight in OBJECTIVE_WEIGHTS.items()},
)  # S3Rec's `weights:`

SEQUENTIAL_RANGES: dict[str, Any] = {
    "max_len": Count,
    "hidden": Count,
    "dropout": Share,
    "batch_size": Count,
    "lr": Rate,
    "weight_decay": NonNegativeFloat,
    "heads": Count,
    "layers": Count,
    "loss": Annotated[str, one_of(*LOSSES)],
    "horizon": Count,
    "horizon_decay": Annotated[float, Field(gt=0, le=1)],
    "negatives": Count,
    "mask_prob": Annotated[float, Field(gt=0, lt=1)],
    "last_mask_prob": Probability,
    "steps": Count,
    "pretrain_updates": Count,
    "attributes": Annotated[list[Annotated[str, one_of(*ATTRIBUTE_KINDS)]], Field(min_length=1)],
    "weights": ObjectiveWeights,
}  # what each field of the neural sequence configs may hold

_SCHEMAS: dict[type, type[Section]] = {}


def derived_schema(config: type, checked: bool | None = None, **overrides: Any) -> type[Section]:
    """A strict :class:`Section` with the fields, types and defaults of a dataclass.

    A field holding another config dataclass gets that dataclass's schema (the one made
    here for it, if any); ``overrides`` replaces a field's ``(type, default)``. When
    ``checked`` (by default: a settings dataclass) the dataclass is built from valid
    values and its ``ValueError`` becomes a problem of the section.
    """
    if checked is None:
        checked = issubclass(config, Settings)
    hints = typing.get_type_hints(config, include_extras=True)
    ranges = SEQUENTIAL_RANGES if issubclass(config, SequentialConfig) else {}
    fields = {
        field.name: overrides.get(field.name)
        or (nested_schema(ranges.get(field.name, hints[field.name])), default(field))
        for field in dataclasses.fields(config)
        if field.init
    }
    validators = (
        {"dataclass_check": model_validator(mode="after")(check(config))} if checked else {}
    )
    schema = create_model(
        f"{config.__name__}Parameters", __base__=Section, __validators__=validators, **fields
    )
    _SCHEMAS[config] = schema
    return schema


def dataclass_schema(config: type) -> type[Section]:
    """The schema of a config dataclass (derived once)."""
    return _SCHEMAS.get(config) or derived_schema(config)


def nested_schema(hint: Any) -> Any:
    """``hint`` with a config dataclass (alone or in a union) replaced by its schema."""
    if dataclasses.is_dataclass(hint) and issubclass(hint, ParamsConfig):
        return dataclass_schema(hint)
    if isinstance(hint, types.UnionType):
        options = [nested_schema(option) for option in typing.get_args(hint)]
        return typing.Union[tuple(options)]  # noqa: UP007 - built from a runtime tuple
    return hint


def default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def check(config: type[ParamsConfig]) -> Any:
    """A model validator building ``config`` from a section's valid values."""

    def built_config(section: Section) -> Section:
        try:
            config.from_params(section.model_dump())
        except ValueError as error:
            raise inconsistent(str(error)) from error
        return section

    return built_config


def config_complaint(schema: type[Section], build: type, values: dict[str, Any]) -> str | None:
    """The first complaint of ``schema`` (then of the config ``build``) about ``values``."""
    errors = validated(schema, values, ())
    if errors:
        return f"{dotted(errors[0].path)}{errors[0].detail}"
    return built(build, values)


def built(config: type, values: dict[str, Any]) -> str | None:
    """The config dataclass's own complaint about ``values`` (``__post_init__``), if any."""
    try:
        config(**values)
    except (ValueError, TypeError) as error:
        return str(error)
    return None

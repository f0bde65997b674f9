"""What every config and settings dataclass shares: built from a parameter dict, saved as one."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Self


class ParamsConfig:
    """Mixin of a frozen config dataclass: ``from_params`` picks the dataclass's own keys
    from a parameter section (others are ignored, so a section may hold more; absent ones
    keep their defaults) and ``to_dict`` gives them back. A nested dataclass field given as
    a mapping becomes its dataclass, also when built as ``Config(**section)`` (as Kedro
    builds a node's typed parameter); a subclass with nested settings and a ``__post_init__``
    of its own calls this one first."""

    def __post_init__(self) -> None:
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            nested = nested_config(type(self), key) if isinstance(value, Mapping) else None
            if nested:
                object.__setattr__(self, key, nested.from_params(value))

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Self:
        return cls(**{key: params[key] for key in cls.__dataclass_fields__ if key in params})

    @classmethod
    def of(cls, value: Self | Mapping[str, Any]) -> Self:
        """``value`` if it is already these settings, else built from it as a section: a
        catalog holds a section typed only when a node of the run declares its type."""
        return value if isinstance(value, cls) else cls.from_params(value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def nested_config(cls: type, key: str) -> type[ParamsConfig] | None:
    """The config dataclass field ``key`` of ``cls`` holds (also when optional), if any."""
    hint = typing.get_type_hints(cls)[key]
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    configs = [
        option
        for option in options
        if dataclasses.is_dataclass(option) and issubclass(option, ParamsConfig)
    ]
    return configs[0] if configs else None

"""What every model's config dataclass shares: built from a parameter dict, saved as one."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Self


class ParamsConfig:
    """Mixin of a frozen config dataclass: ``from_params`` picks the dataclass's own keys
    from a parameter section (others are ignored, so a section may hold more) and
    ``to_dict`` gives them back."""

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Self:
        known = {key: params[key] for key in cls.__dataclass_fields__ if key in params}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

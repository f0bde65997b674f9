"""The value types of every settings dataclass: each carries its range or choices
(``Annotated`` pydantic constraints), which the parameter schema (:mod:`movie_rec.params_schema`)
enforces with messages naming the key."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field


def one_of(*allowed: Any) -> AfterValidator:
    """A validator accepting exactly ``allowed`` (``true`` is not ``1``)."""

    def check(value: Any) -> Any:
        if not any(value == choice and type(value) is type(choice) for choice in allowed):
            raise ValueError(f"expected one of {', '.join(map(str, allowed))}")
        return value

    return AfterValidator(check)


Count = Annotated[int, Field(ge=1)]
NonNegative = Annotated[int, Field(ge=0)]
Seed = Annotated[int, Field(ge=0)]
Rate = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(ge=0, lt=1)]
OpenShare = Annotated[float, Field(gt=0, lt=1)]
PositiveShare = Annotated[float, Field(gt=0, le=1)]
Probability = Annotated[float, Field(ge=0, le=1)]
NonNegativeFloat = Annotated[float, Field(ge=0)]

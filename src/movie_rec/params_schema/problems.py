"""A parameter problem: ``<file>: <dotted key> = <value>: <what is allowed>``, and pydantic's
errors turned into them."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from movie_rec.parameters import KeyPath

SHARED_FILE = "parameters.yml"
SHARED_SECTIONS = ("runtime", "candidates", "tuning", "evaluation", "tracking")
RUNTIME_ONLY = ("raw_dir",)  # catalog paths given with ``kedro run --params``
PIPELINES = "data_processing general_rec sequential_rec tabular_rec ensembling reporting"
PIPELINE_SECTIONS = PIPELINES.split()  # each in parameters_<section>.yml


def parameter_file(section: str) -> str:
    """The parameter file a top-level key lives in."""
    if section in SHARED_SECTIONS:
        return SHARED_FILE
    if section in RUNTIME_ONLY:
        return "--params"
    if section in PIPELINE_SECTIONS:
        return f"parameters_{section}.yml"
    return "parameters*.yml"


def dotted(path: KeyPath) -> str:
    """``("a", "b", 0)`` → ``a.b[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


@dataclasses.dataclass(frozen=True)
class Problem:
    """One invalid parameter: where it is and what is wrong (``detail`` follows the key)."""

    path: KeyPath
    detail: str

    def __str__(self) -> str:
        return f"{parameter_file(str(self.path[0]))}: {dotted(self.path)}{self.detail}"


def invalid(path: KeyPath, value: Any, allowed: str) -> Problem:
    return Problem(path, f" = {value!r}: {allowed}")


class ParameterError(ValueError):
    """The parameters break the schema; the run stops before any node."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(
            f"{len(problems)} invalid parameter(s) in conf/base, conf/local or --params:\n{lines}"
        )


def inconsistent(detail: str) -> PydanticCustomError:
    """A combination of keys that does not fit; ``detail`` reads on from the section's key."""
    return PydanticCustomError("inconsistent", "{detail}", {"detail": detail})


def pydantic_problems(error: ValidationError, prefix: KeyPath) -> list[Problem]:
    """pydantic's errors as :class:`Problem`s under ``prefix``."""
    problems = []
    for entry in error.errors():
        path = prefix + tuple(entry["loc"])
        context = entry.get("ctx", {})
        if entry["type"] == "unknown_key":
            detail = f"unknown key; expected one of {context['allowed']}"
            problems.append(invalid((*path, context["key"]), context["value"], detail))
        elif entry["type"] == "inconsistent":
            problems.append(Problem(path, f".{context['detail']}"))
        elif entry["type"] == "missing":
            problems.append(Problem(path, ": required key is missing"))
        elif entry["type"] == "value_error":
            problems.append(invalid(path, entry["input"], str(context["error"])))
        else:
            problems.append(invalid(path, entry["input"], entry["msg"]))
    return problems


def validated(schema: type[BaseModel], values: Any, prefix: KeyPath) -> list[Problem]:
    try:
        schema.model_validate(values)
    except ValidationError as error:
        return pydantic_problems(error, prefix)
    return []

"""One schema for every parameter file, checked before any node runs.

:func:`validate_parameters` reads the merged parameters (``conf/base``, ``conf/local`` and
``--params``) and raises :class:`ParameterError` listing every problem it finds, each as
``<file>: <dotted key> = <value>: <what is allowed>``. The static sections are pydantic
models; the model sections of ``general_rec`` and ``sequential_rec`` are checked against
the registry: a section's name must be a registered model of that pipeline, its
hyperparameters the fields of the model's config dataclass (the neural sequence models'
fields get the ranges of :data:`SEQUENTIAL_RANGES`) and every value its Optuna search
space can draw must build a valid config. A new model therefore needs no edit here.
:class:`movie_rec.hooks.RuntimeHooks` calls it in ``after_context_created``.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from itertools import pairwise
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from movie_rec.fusion import METHODS
from movie_rec.models.sequential.data import SequentialConfig
from movie_rec.models.sequential.s3rec import ATTRIBUTE_KINDS, OBJECTIVE_WEIGHTS, S3RecConfig
from movie_rec.models.sequential.sasrec import LOSSES
from movie_rec.models.training import TrainConfig
from movie_rec.models.tuning import RDB_DIALECTS, rdb_dialect
from movie_rec.pipelines.model_nodes import STOP_SIGNALS, merged_settings
from movie_rec.registry import MODELS, ModelSpec, models_of
from movie_rec.runtime import DEVICE_CHOICES
from movie_rec.tracking import TrackingSettings

SHARED_FILE = "parameters.yml"
SHARED_SECTIONS = ("runtime", "candidates", "tuning", "evaluation", "tracking")
RUNTIME_ONLY = ("raw_dir",)  # catalog paths given with ``kedro run --params``
MODEL_PIPELINES = ("general_rec", "sequential_rec")
SEARCH_TYPES = ("float", "int", "categorical")

KeyPath = tuple[str | int, ...]


# --- problems -----------------------------------------------------------------------------


def parameter_file(section: str) -> str:
    """The parameter file a top-level key lives in."""
    if section in SHARED_SECTIONS:
        return SHARED_FILE
    if section in RUNTIME_ONLY:
        return "--params"
    if section in Parameters.model_fields:
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


def one_of(*allowed: Any) -> AfterValidator:
    """A validator accepting exactly ``allowed`` (``true`` is not ``1``)."""

    def check(value: Any) -> Any:
        if not any(value == choice and type(value) is type(choice) for choice in allowed):
            raise ValueError(f"expected one of {', '.join(map(str, allowed))}")
        return value

    return AfterValidator(check)


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


# --- building blocks ----------------------------------------------------------------------


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


Count = Annotated[int, Field(ge=1)]
NonNegative = Annotated[int, Field(ge=0)]
Seed = Annotated[int, Field(ge=0)]
Rate = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(ge=0, lt=1)]
Probability = Annotated[float, Field(ge=0, le=1)]


def registered(names: list[str] | None) -> list[str] | None:
    unknown = [name for name in names or [] if name not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; registered models: {', '.join(MODELS)}")
    return names


RegisteredNames = Annotated[list[str], AfterValidator(registered)]


NonNegativeFloat = Annotated[float, Field(ge=0)]
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


@functools.cache
def dataclass_schema(config: type) -> type[Section]:
    """A strict :class:`Section` with the fields, types and defaults of a config dataclass
    (the fields of a neural sequence config take their range from :data:`SEQUENTIAL_RANGES`)."""
    hints = typing.get_type_hints(config)
    ranges = SEQUENTIAL_RANGES if issubclass(config, SequentialConfig) else {}
    fields = {
        field.name: (ranges.get(field.name, hints[field.name]), default(field))
        for field in dataclasses.fields(config)
        if field.init
    }
    return create_model(f"{config.__name__}Parameters", __base__=Section, **fields)


def default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


Train = dataclass_schema(TrainConfig)  # a `train:` section


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
    auto_cpu_max_cells: Annotated[int, Field(ge=0)] = 0
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


# --- model sections (general_rec, sequential_rec) -----------------------------------------


class SearchEntry(Section):
    """One hyperparameter's Optuna range (:func:`movie_rec.models.tuning.suggest`)."""

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


class Pruner(Section):
    """``optuna.pruners.MedianPruner``'s arguments."""

    n_startup_trials: NonNegative = 5
    n_warmup_steps: NonNegative = 0
    interval_steps: Count = 1
    n_min_trials: Count = 1


class Study(Section):
    enabled: bool = False
    n_trials: Count | None = None
    timeout: Rate | None = None  # seconds, a safety cap
    pruner: Pruner | None = None
    search_space: dict[str, SearchEntry] = {}

    @model_validator(mode="after")
    def runnable(self) -> Study:
        if self.enabled and (self.n_trials is None or not self.search_space):
            raise inconsistent("enabled = True needs n_trials and a search_space")
        return self


def enabled_switch(value: Any) -> Any:
    if value is True or value is False or value == "auto":
        return value
    raise ValueError("expected one of true, false, auto")


class ModelSection(Section):
    """A model's section merged over its pipeline's ``common`` one
    (:mod:`movie_rec.pipelines.model_nodes`)."""

    enabled: Annotated[Any, AfterValidator(enabled_switch)] = False
    hyperparameters: dict[str, Any] = {}
    train: dict[str, Any] = {}
    stop_on: Annotated[str, one_of(*STOP_SIGNALS)] = "overall"
    tuning: Study = Study()


class S3RecSection(Section):
    hyperparameters: dict[str, Any] = {}
    train: dict[str, Any] = {}


S3RecHyperparameters = dataclass_schema(S3RecConfig)  # pre-training's hyperparameters


def hyperparameter_schema(entry: ModelSpec) -> type[Section]:
    """What a model's hyperparameters may hold: the fields of its config dataclass."""
    return dataclass_schema(config_class(entry))


def config_class(entry: ModelSpec) -> type:
    return type(entry.config({}))


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """Where a model's merged settings come from: its own section over ``common``."""

    pipeline: str
    name: str
    own: Mapping[str, Any]
    common: Mapping[str, Any]

    def path(self, *keys: str | int) -> KeyPath:
        """The section that holds ``keys`` (the first two levels decide, as the merge does)."""
        for section, label in ((self.own, self.name), (self.common, "common")):
            if holds(section, keys[:2]):
                return (self.pipeline, label, *keys)
        return (self.pipeline, self.name, *keys)

    def moved(self, problems: list[Problem]) -> list[Problem]:
        """``problems`` found in the merged settings, under the section that holds each."""
        return [Problem(self.path(*problem.path), problem.detail) for problem in problems]


def holds(section: Any, keys: tuple[str | int, ...]) -> bool:
    for key in keys:
        if not isinstance(section, Mapping) or key not in section:
            return False
        section = section[key]
    return True


def hyperparameter_problems(
    source: ModelSource, schema: type[Section], hyperparameters: Mapping[str, Any], build: type
) -> list[Problem]:
    """Own keys outside ``schema``, bad values, and the config's own complaints."""
    allowed = ", ".join(schema.model_fields)
    problems = [
        invalid((source.pipeline, source.name, "hyperparameters", key), value,
                f"not a hyperparameter of {source.name}; expected one of {allowed}")
        for key, value in source.own.get("hyperparameters", {}).items()
        if key not in schema.model_fields
    ]  # fmt: skip
    values = {key: value for key, value in hyperparameters.items() if key in schema.model_fields}
    found = source.moved(validated(schema, values, ("hyperparameters",)))
    if not found and (complaint := built(build, values)):
        found.append(Problem(source.path("hyperparameters"), f": {complaint}"))
    return problems + found


def search_space_problems(
    source: ModelSource, schema: type[Section], study: Study, fixed: dict[str, Any], build: type
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
    source = ModelSource(entry.pipeline, entry.name, own, common)
    merged = merged_settings(dict(common), dict(own))
    try:
        settings = ModelSection.model_validate(merged)
    except ValidationError as error:
        return source.moved(pydantic_problems(error, ()))
    problems = []
    if "train" in own and not entry.iterative:
        problems.append(
            invalid(source.path("train"), own["train"], f"{entry.name} does not train iteratively")
        )
    train_problems = source.moved(validated(Train, settings.train, ("train",)))
    if not train_problems and (complaint := built(TrainConfig, settings.train)):
        train_problems.append(Problem(source.path("train"), f": {complaint}"))
    schema = hyperparameter_schema(entry)
    build = config_class(entry)
    fixed = {k: v for k, v in settings.hyperparameters.items() if k in schema.model_fields}
    problems += train_problems
    value_problems = hyperparameter_problems(source, schema, settings.hyperparameters, build)
    if value_problems:  # every drawn value would repeat them
        return problems + value_problems
    return problems + search_space_problems(source, schema, settings.tuning, fixed, build)


def s3rec_problems(common: Mapping[str, Any], own: Any) -> list[Problem]:
    """The S3Rec pre-training section (``sequential_rec.s3rec``)."""
    prefix = ("sequential_rec", "s3rec")
    problems = validated(S3RecSection, own, prefix)
    if problems:
        return problems
    source = ModelSource("sequential_rec", "s3rec", own, common)
    merged = merged_settings(dict(common), dict(own))
    hyperparameters = merged.get("hyperparameters", {})
    return hyperparameter_problems(source, S3RecHyperparameters, hyperparameters, S3RecConfig)


EXTRA_SECTIONS = {"sequential_rec": {"s3rec": (S3RecHyperparameters, s3rec_problems)}}


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
    schemas = [hyperparameter_schema(e) for e in entries.values()] + [s for s, _ in extras.values()]
    known = sorted({key for schema in schemas for key in schema.model_fields})
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
    num_threads: NonNegative
    kind_gain: KindGain = KindGain()
    lgbm: dict[str, int | float | str | bool] = {}


class WeightedRank(Section):
    head: Count
    max_cutoff: Count

    @model_validator(mode="after")
    def head_within_cutoff(self) -> WeightedRank:
        if self.head > self.max_cutoff:
            raise inconsistent(f"head = {self.head} must not exceed max_cutoff = {self.max_cutoff}")
        return self


class FusionTuning(Section):
    n_trials: Count
    seed: Seed
    guard_folds: Annotated[int, Field(ge=2)]
    min_gain_se: float


class ReleaseFilter(Section):
    enabled: bool
    slack: Annotated[int | float, Field(ge=0)]


class Ensembling(Section):
    method: Annotated[str, one_of(*METHODS)]
    models: RegisteredNames | None = None
    priority_order: RegisteredNames = []
    min_votes: Count
    vote_depth: Count
    weighted_rank: WeightedRank
    tuning: FusionTuning
    release_filter: ReleaseFilter


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

"""Settings resolved once: typed dataclasses for every parameter section and each model.

A model's settings are its section of ``parameters_<pipeline>.yml`` over the pipeline's
``common`` section: :class:`SettingsSource` merges the two (the one place that does) and
:meth:`SettingsSource.settings` builds the :class:`ModelSettings` every reader uses: the
model nodes, the S3Rec pre-training, ``kedro recommend`` and the parameter schema
(:mod:`movie_rec.params_schema`, which derives its checks from these dataclasses).
:class:`EnsemblingSettings` is ``parameters_ensembling.yml``.

Each default is stated once: here, or in the model's config dataclass and
:class:`~movie_rec.models.training.TrainConfig`; the parameter files hold only what differs.
The field types carry their ranges and choices (``Annotated``), which the schema enforces.

A node reads a section as its dataclass by its type hint (``settings: TabularSettings`` for
``params:tabular_rec``): Kedro builds it once per run, after
:class:`movie_rec.hooks.RuntimeHooks` has checked every parameter. The model nodes, which
read a model's section over ``common``, resolve it with :func:`model_settings`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from typing import Annotated, Any, TypeVar

import optuna
import scipy.sparse as sp
from pydantic import AfterValidator, Field

from movie_rec.fusion import METHODS
from movie_rec.models.config import ParamsConfig
from movie_rec.models.cost import DataShape, FitCost, run_cost
from movie_rec.models.training import TrainConfig
from movie_rec.registry import ITERATIVE, MODELS, first_stage_models, spec
from movie_rec.runtime import (
    AutoBudget,
    AutoChoice,
    RuntimeSettings,
    auto_choice,
    resolve_device,
)
from movie_rec.second_stage.config import OBJECTIVES, FeatureConfig, RankerConfig
from movie_rec.tuning.storage import RDB_DIALECTS, rdb_dialect
from movie_rec.values import (
    Count,
    NonNegative,
    NonNegativeFloat,
    OpenShare,
    PositiveShare,
    Rate,
    Seed,
    one_of,
)

STOP_SIGNALS = ("overall", "last")

KeyPath = tuple[str | int, ...]


# --- value types: what a field may hold ----------------------------------------------------


def registered(names: list[str] | None) -> list[str] | None:
    unknown = [name for name in names or [] if name not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; registered models: {', '.join(MODELS)}")
    return names


def median_pruner(arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments ``optuna.pruners.MedianPruner`` takes (it checks their values itself)."""
    try:
        optuna.pruners.MedianPruner(**arguments)
    except TypeError as error:
        allowed = ", ".join(inspect.signature(optuna.pruners.MedianPruner).parameters)
        raise ValueError(f"expected arguments of optuna's MedianPruner: {allowed}") from error
    return arguments


def switch(value: Any) -> Any:
    if value is True or value is False or value == "auto":
        return value
    raise ValueError("expected one of true, false, auto")


Switch = Annotated[Any, AfterValidator(switch)]  # true | false | auto
StopSignal = Annotated[str, one_of(*STOP_SIGNALS)]
RegisteredNames = Annotated[list[str], AfterValidator(registered)]
PrunerArguments = Annotated[dict[str, int], AfterValidator(median_pruner)]


class Settings(ParamsConfig):
    """A settings dataclass: its field types carry their ranges and choices, and the messages
    of its own check (``__post_init__``) read on from its section's key."""


# --- the data's sections --------------------------------------------------------------------


@dataclass(frozen=True)
class PreprocessingSettings(Settings):
    """``data_processing.preprocessing``: the seed study's steps, each switchable to measure
    its effect: a movie's year from its title where years.tsv lacks it, one director and
    writer per movie (the most watched), genre_<Name> 0/1 columns."""

    fill_year_from_title: bool = True
    representative_people: bool = True
    genres_one_hot: bool = True


# --- the shared sections of parameters.yml ------------------------------------------------


@dataclass(frozen=True)
class CandidateSettings(Settings):
    """``candidates``: the ``k`` unseen items every model keeps per user, scored
    ``batch_size`` users at a time (docs/architecture.md, "The candidate contract")."""

    k: Count = 100
    batch_size: Count = 1024


Mix = Annotated[list[NonNegative], Field(min_length=2, max_length=2)]


@dataclass(frozen=True)
class EvaluationSettings(Settings):
    """``evaluation``: the (n_last, n_random) mixes every list is reported on; the ensemble
    is tuned on their mean (:func:`movie_rec.evaluation.recall_by_mix`)."""

    mixes: Annotated[list[Mix], Field(min_length=1)] = field(
        default_factory=lambda: [[2, 8], [4, 6], [6, 4]]
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if any(sum(mix) == 0 for mix in self.mixes):
            raise ValueError("expected [n_last, n_random] pairs with at least one answer each")

    def pairs(self) -> list[tuple[int, int]]:
        return [(int(last), int(random)) for last, random in self.mixes]


def study_storage_location(value: str) -> str:
    dialect = rdb_dialect(value)
    if dialect not in (None, *RDB_DIALECTS) or not value.strip():
        raise ValueError(
            f"expected an RDB URL ({', '.join(RDB_DIALECTS)}) or the path of a journal file"
        )
    return value


@dataclass(frozen=True)
class TuningSettings(Settings):
    """``tuning``: where every model's Optuna studies live (``storage_dir``'s SQLite file, or
    ``storage``: an RDB URL or a journal file that several processes share), the seeded
    sample of at most ``max_eval_users`` validation users trials are scored on (``None``:
    all) and the users scored at once (``batch_size``)."""

    storage_dir: str = "data/06_models"
    storage: Annotated[str, AfterValidator(study_storage_location)] | None = None
    max_eval_users: Count | None = 10_000
    batch_size: Count = 1024


def increasing(edges: list[int]) -> list[int]:
    if any(low >= high for low, high in pairwise(edges)):
        raise ValueError("expected strictly increasing history lengths")
    return edges


@dataclass(frozen=True)
class ExampleUsers(Settings):
    """The seeded sample of users the report shows (``count`` users, each with their
    ``watched`` most recent titles), for the submission and for validation alike."""

    count: Count = 5
    watched: Count = 5
    seed: Seed = 42


@dataclass(frozen=True)
class ReportingSettings(Settings):
    """``reporting``: users are bucketed by the length of their training history at the
    ``activity_buckets`` edges ([16, 50), [50, 100), ...); ``example_users`` to show."""

    activity_buckets: Annotated[list[Count], Field(min_length=1), AfterValidator(increasing)] = (
        field(default_factory=lambda: [16, 50, 100, 200, 500])
    )
    example_users: ExampleUsers = ExampleUsers()


# --- a model's settings --------------------------------------------------------------------


@dataclass(frozen=True)
class Study(Settings):
    """A model's Optuna study (:mod:`movie_rec.tuning.studies`): ``n_trials`` is the total of
    finished trials it holds, ``timeout`` a safety cap in seconds, ``pruner`` the arguments
    of the median pruner that stops iterative trials early (its steps are evaluations;
    Optuna's defaults for what is not given), ``patience`` and ``min_gain`` the stop rule
    (:func:`movie_rec.tuning.studies.converged`) and ``search_space`` one range per
    hyperparameter (``{type: float|int, low, high, log}`` or ``{type: categorical, choices}``).
    ``enabled: auto`` tunes while the tuned run's estimate fits ``runtime.auto_max_minutes``
    and otherwise keeps the fixed hyperparameters (:meth:`ModelSettings.trials`)."""

    enabled: Switch = False
    n_trials: Count | None = None
    timeout: Rate | None = None
    pruner: PrunerArguments = field(default_factory=dict)
    patience: Count | None = 5  # stop once this many trials in a row barely raised the best
    min_gain: NonNegativeFloat = 0.002  # "barely": a relative gain of at most this
    search_space: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.enabled and (self.n_trials is None or not self.search_space):
            raise ValueError(f"enabled = {self.enabled} needs n_trials and a search_space")


@dataclass(frozen=True)
class ModelSettings(Settings):
    """One model's settings: ``enabled`` (``true`` | ``false`` | ``auto``: on while its
    estimated run fits the device's ``runtime.auto_max_minutes``, or the model's own
    ``auto_max_minutes`` where its candidates are worth more time, :meth:`auto`), its
    config's ``hyperparameters``, the training loop's ``train`` (iterative models),
    ``stop_on`` (the validation answers early stopping and tuning read: ``overall`` or only
    the ``last`` ones) and its ``tuning`` study."""

    hyperparameters: ParamsConfig
    enabled: Switch = False
    auto_max_minutes: AutoBudget | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    stop_on: StopSignal = "overall"
    tuning: Study = Study()

    @property
    def continues(self) -> bool:
        """Whether the final fit continues the validation fit's model (``train.final_updates``)."""
        return self.train.final_updates is not None

    def run_cost(self, shape: DataShape, trials: int) -> FitCost:
        """The estimated work of ``trials`` tuning trials and its two fits on data of ``shape``."""
        return run_cost(self.hyperparameters, self.train, shape, trials)

    def trials(self, shape: DataShape, device: str, budget_minutes: float) -> int:
        """The tuning trials a run makes: ``n_trials`` when tuning is ``true``, or ``auto`` and
        the tuned run's estimate on ``device`` fits ``budget_minutes``; otherwise none."""
        n_trials = self.tuning.n_trials or 0
        if self.tuning.enabled == "auto":
            tuned_minutes = self.run_cost(shape, n_trials).seconds(device) / 60.0
            return n_trials if tuned_minutes <= budget_minutes else 0
        return n_trials if self.tuning.enabled else 0

    def auto(self, runtime: RuntimeSettings, matrix: sp.spmatrix) -> AutoChoice:
        """What ``enabled: auto`` decides on the runtime's device for this matrix."""
        device = resolve_device(runtime.device).type
        return self.auto_on(DataShape.of(matrix), device, runtime.budget_minutes(device))

    def auto_on(self, shape: DataShape, device: str, budget_minutes: float) -> AutoChoice:
        """What ``enabled: auto`` decides on ``device`` (``cpu``/``cuda``) for data of ``shape``
        within ``budget_minutes`` (the runtime's; the model's own ``auto_max_minutes`` where
        set), counting the tuning trials the run makes (:meth:`trials`)."""
        source = "runtime.auto_max_minutes"
        if self.auto_max_minutes is not None:
            budget_minutes = float(getattr(self.auto_max_minutes, device))
            source = "its own auto_max_minutes"
        trials = self.trials(shape, device, budget_minutes)
        seconds = self.run_cost(shape, trials).seconds(device)
        return auto_choice(seconds, budget_minutes, device, trials, source)

    def runs_on(self, runtime: RuntimeSettings, matrix: sp.spmatrix) -> bool:
        """Whether the model runs: ``true``, ``false``, or ``auto``'s estimate within budget."""
        if self.enabled == "auto":
            return self.auto(runtime, matrix).on
        return bool(self.enabled)

    def tunes(self, runtime: RuntimeSettings, matrix: sp.spmatrix) -> bool:
        """Whether the model runs and its study runs first (:meth:`trials`)."""
        return self.runs_on(runtime, matrix) and self.auto(runtime, matrix).trials > 0


@dataclass(frozen=True)
class SettingsSource:
    """Where a model's settings come from: its own section over the pipeline's ``common``."""

    pipeline: str
    name: str
    common: Mapping[str, Any]
    own: Mapping[str, Any]

    @cached_property
    def merged(self) -> dict[str, Any]:
        """``own`` over ``common``; nested mappings merge key by key, one level deep."""
        merged = dict(self.common)
        for key, value in self.own.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return merged

    def path(self, *keys: str | int) -> KeyPath:
        """Where ``keys`` of the merged settings are written (the first two levels decide,
        as the merge does): under the model's own section or under ``common``."""
        for section, label in ((self.own, self.name), (self.common, "common")):
            if holds(section, keys[:2]):
                return (self.pipeline, label, *keys)
        return (self.pipeline, self.name, *keys)

    def settings(self, config: type[ParamsConfig]) -> ModelSettings:
        """The typed settings, the hyperparameters as ``config``."""
        merged = self.merged
        hyperparameters = config.from_params(merged.get("hyperparameters") or {})
        return ModelSettings.from_params({**merged, "hyperparameters": hyperparameters})


def holds(section: Any, keys: tuple[str | int, ...]) -> bool:
    for key in keys:
        if not isinstance(section, Mapping) or key not in section:
            return False
        section = section[key]
    return True


def model_settings(name: str, pipeline_params: Mapping[str, Any]) -> ModelSettings:
    """Registered model ``name``'s settings from its pipeline's parameters."""
    entry = spec(name)
    settings = model_source(entry.pipeline, name, pipeline_params).settings(entry.config)
    if settings.continues and not entry.can(ITERATIVE):
        raise ValueError(
            f"{entry.pipeline}.{name}.train.final_updates: {name} is not trained in updates, "
            "so its final fit has nothing to continue; leave final_updates unset"
        )
    return settings


def model_source(pipeline: str, name: str, pipeline_params: Mapping[str, Any]) -> SettingsSource:
    """Section ``name`` of a pipeline's parameters over its ``common`` one."""
    return SettingsSource(
        pipeline, name, pipeline_params.get("common") or {}, pipeline_params.get(name) or {}
    )


@dataclass(frozen=True)
class PlannedModel:
    """One line of the run plan: a first-stage model, its switch, its tuning trials, its
    estimated run, the budget ``auto`` held it to and whether it runs."""

    model: str
    enabled: bool | str
    trials: int
    minutes: float
    runs: bool
    budget_minutes: float | None = None


def written_parameters(context: Any) -> dict[str, Any]:
    """Every parameter of a Kedro context as the files and ``--params`` give it, before Kedro
    types the sections nodes declare (what the hooks check and log)."""
    return context.config_loader["parameters"]


def runtime_settings(params: Mapping[str, Any]) -> RuntimeSettings:
    """The ``runtime`` section of all parameters, resolved."""
    return RuntimeSettings.from_params(params.get("runtime") or {})


def run_plan(params: Mapping[str, Any], shape: DataShape, device: str) -> list[PlannedModel]:
    """Every first-stage model's estimated run on ``device`` for data of ``shape``, and
    whether it runs (``auto`` within ``runtime.auto_max_minutes``), from all parameters."""
    budget = runtime_settings(params).budget_minutes(device)
    plan = []
    for name in first_stage_models():
        settings = model_settings(name, params[spec(name).pipeline])
        choice = settings.auto_on(shape, device, budget)
        auto = settings.enabled == "auto"
        runs = choice.on if auto else bool(settings.enabled)
        budget_minutes = choice.budget_minutes if auto else None
        plan.append(
            PlannedModel(
                name, settings.enabled, choice.trials, choice.minutes, runs, budget_minutes
            )
        )
    return plan


def plan_lines(plan: list[PlannedModel]) -> list[str]:
    """The plan as an aligned text table, one line a model (``budget``: the minutes an
    ``auto`` model's estimate had to fit)."""
    lines = [f"{'model':<15} {'enabled':<8} {'trials':>6} {'est. min':>9} {'budget':>7}  runs"]
    for row in plan:
        enabled, runs = str(row.enabled).lower(), "on" if row.runs else "off"
        budget = "" if row.budget_minutes is None else f"{row.budget_minutes:g}"
        lines.append(
            f"{row.model:<15} {enabled:<8} {row.trials:>6} {row.minutes:>9.1f} {budget:>7}  {runs}"
        )
    return lines


# --- the second stage's settings ----------------------------------------------------------


@dataclass(frozen=True)
class KindGain(Settings):
    """What a held-out answer of each kind is worth: its NDCG gain (lambdarank) or its row's
    weight (binary). Random 1.5 keeps the random items at no cost overall on ml100k and the
    sample (docs/results.md)."""

    last: NonNegativeFloat = 1.0
    random: NonNegativeFloat = 1.5


@dataclass(frozen=True)
class TabularSettings(Settings):
    """``parameters_tabular_rec.yml``: the second stage's candidates, features and LightGBM
    ranker (:mod:`movie_rec.second_stage`); :meth:`features` and :meth:`ranker` build the
    configs its code takes."""

    enabled: bool = True
    # candidates: each first-stage model's top N (at most candidates.k) and N popular movies
    top_n: Count = 100
    n_popular: NonNegative = 20
    # features: transition scores voted by the user's last k movies for each k; co-occurrence
    # with the last `cooc_window` movies, the j-th weighted cooc_decay^(j-1); popularity in the
    # data's last `recent_days` and in `user_window_days` before / after the user's last day
    markov_k: Annotated[list[Count], Field(min_length=1)] = field(default_factory=lambda: [1, 3, 5])
    cooc_window: Count = 10
    cooc_decay: PositiveShare = 0.8
    recent_days: Rate = 28.0
    user_window_days: Rate = 90.0
    batch_size: Count = 1024  # users whose features are built at once
    # training: user-grouped folds, `bags` seeded repeats (a score: the mean of one fold model
    # a bag); each fold model on at most `max_train_users` users, a share of them held back
    # for early stopping
    n_folds: Annotated[int, Field(ge=2)] = 3
    bags: Count = 2
    early_stopping_share: OpenShare = 0.25
    early_stopping_rounds: Count = 30
    max_rounds: Count = 500
    max_train_users: Count | None = 6000
    # further holdouts of the validated users (closed-form first stages refit on each), each
    # for at most `extra_split_users` users: their rows train the ranker too
    extra_splits: NonNegative = 1
    extra_split_users: Count | None = 6000
    # binary (log loss: is it an answer?) or lambdarank (NDCG@10 per user); binary trains on
    # every answer and `negative_share` of the other candidates, weighed back
    objective: Annotated[str, one_of(*OBJECTIVES)] = "binary"
    negative_share: PositiveShare = 0.25
    kind_gain: KindGain = KindGain()
    num_threads: NonNegative = 1  # LightGBM threads (0: all; OpenMP spin-waits on busy cores)
    lgbm: dict[str, int | float | str | bool] = field(default_factory=dict)  # LightGBM's own

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ranker(seed=0)  # the ranker's own checks (objective, bags, negative share)

    def features(self) -> FeatureConfig:
        return built_from(FeatureConfig, self, markov_k=tuple(self.markov_k))

    def ranker(self, seed: int) -> RankerConfig:
        """The ranker's config, seeded with the run's seed."""
        gains = {"last": self.kind_gain.last, "random": self.kind_gain.random}
        return built_from(RankerConfig, self, lgbm=dict(self.lgbm), seed=seed, kind_gain=gains)


C = TypeVar("C")


def built_from(config: type[C], settings: Any, **given: Any) -> C:
    """``config`` from ``given`` and, for its other fields, ``settings``'s fields of the same
    names."""
    names = {field.name for field in dataclasses.fields(config)} - given.keys()
    return config(**{name: getattr(settings, name) for name in names}, **given)


# --- the ensemble's settings ---------------------------------------------------------------


@dataclass(frozen=True)
class WeightedRankSettings(Settings):
    """``weighted_rank``'s search: the tuned cutoff lies in ``head``..``max_cutoff``; ranks
    past ``head`` count at a tuned tail weight."""

    head: Count = 10
    max_cutoff: Count = 30

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.head > self.max_cutoff:
            raise ValueError(f"head = {self.head} must not exceed max_cutoff = {self.max_cutoff}")


@dataclass(frozen=True)
class FusionTuningSettings(Settings):
    """Optuna TPE on every validated user (at most ``max_users`` of them a search),
    cross-fitted over ``guard_folds`` folds; the submission is the simplest of the best first stage, the ranker and the fusion that the
    best of them does not beat by ``min_gain_se`` paired standard errors
    (:mod:`movie_rec.fusion_tuning`)."""

    n_trials: Count = 100
    seed: Seed = 42
    guard_folds: Annotated[int, Field(ge=2)] = 5
    min_gain_se: float = 1.0
    max_users: Count | None = 5000  # each search tunes on a seeded sample of this many users


@dataclass(frozen=True)
class ReleaseFilterSettings(Settings):
    """No movie released after the user's last activity year + ``slack`` is recommended."""

    enabled: bool = True
    slack: Annotated[int | float, Field(ge=0)] = 1


@dataclass(frozen=True)
class EnsemblingSettings(Settings):
    """Which ``method`` makes the submission, the ``models`` fused (``None``: every registered
    one), the priority rule (items ``min_votes`` models rank in their top ``vote_depth``
    first, then each model's list in ``priority_order``, unnamed models after in registry
    order) and the weighted rank fusion's search, tuning and release-year filter."""

    method: Annotated[str, one_of(*METHODS)] = "weighted_rank"
    models: RegisteredNames | None = None
    priority_order: RegisteredNames = field(default_factory=list)
    min_votes: Count = 2
    vote_depth: Count = 10
    weighted_rank: WeightedRankSettings = WeightedRankSettings()
    tuning: FusionTuningSettings = FusionTuningSettings()
    release_filter: ReleaseFilterSettings = ReleaseFilterSettings()

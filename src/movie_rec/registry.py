"""The one registry of models: one line per model.

Each :class:`ModelSpec` names the model, the pipeline that fits it, its kind, its config
dataclass, its model (``Model(config)`` with ``fit(data, run)`` and ``score(users)``, see
:mod:`movie_rec.models.protocol`) and what else it can do (:class:`Capability`). Every
pipeline, the ensemble, the ranker, the report and the CLI read :data:`MODELS`; adding a
model means writing its module, its parameter section and one line here (see
``docs/architecture.md``, "How to add a model").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Flag, auto
from typing import Any

from movie_rec.models.admm_slim import ADMMSLIM, ADMMSLIMConfig
from movie_rec.models.baselines import MostPopular, PopularConfig
from movie_rec.models.config import ParamsConfig
from movie_rec.models.ease import EASE, EASEConfig
from movie_rec.models.markov import Markov, MarkovConfig
from movie_rec.models.multivae import MultiVAE, MultiVAEConfig
from movie_rec.models.protocol import Model
from movie_rec.models.recvae import RecVAE, RecVAEConfig
from movie_rec.models.sequential.bert4rec import BERT4Rec, BERT4RecConfig
from movie_rec.models.sequential.fit import Neural
from movie_rec.models.sequential.gru4rec import GRU4Rec, GRU4RecConfig
from movie_rec.models.sequential.s3rec import PRETRAINED
from movie_rec.models.sequential.sasrec import SASRec, SASRecConfig
from movie_rec.models.sequential.srgnn import SRGNN, SRGNNConfig
from movie_rec.models.sknn import SKNN, SKNNConfig
from movie_rec.models.user_ease import UserItemEASE, UserItemEASEConfig

PIPELINES = ("general_rec", "sequential_rec", "tabular_rec")
KINDS = ("general", "sequential", "tabular")


class Capability(Flag):
    """What a model can do besides fitting and scoring."""

    TUNABLE = auto()  # an Optuna study may tune its hyperparameters (its `tuning` section)
    ITERATIVE = auto()  # trains with the shared loop: `train` settings, updates, early stopping
    EXPLAINABLE = auto()  # gives the reasons for its items (movie_rec.explain)
    FOLDS_IN = auto()  # scores a history it was not fitted on (kedro recommend --history)
    SIDE_INFO = auto()  # reads the side tables (genres, directors, writers, years)
    GPU = auto()  # fits with torch on runtime.device: its fitting nodes carry the `gpu` tag


NONE = Capability(0)
TUNABLE, ITERATIVE, EXPLAINABLE, FOLDS_IN, SIDE_INFO, GPU = Capability


@dataclass(frozen=True)
class ModelSpec:
    """One model: where it runs, what it is, how it is built and what it can do.

    Attributes:
        name: the model's name (its namespace, parameter section and file prefix).
        pipeline: the Kedro pipeline that fits it.
        kind: ``general`` (order-free), ``sequential`` (reads the order) or ``tabular``.
        config: its config dataclass (``None`` for the ranker, which has a pipeline of its own).
        model: builds the model from a config (``Model(config)``).
        capabilities: what else it can do.
    """

    name: str
    pipeline: str
    kind: str
    config: type[ParamsConfig] | None
    model: Callable[[Any], Model] | None
    capabilities: Capability = NONE

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def build(self, hyperparameters: dict[str, Any]) -> Model:
        """The model with these hyperparameters (its config's fields; others are ignored)."""
        return self.model(self.config.from_params(hyperparameters))

    @property
    def extra_inputs(self) -> tuple[str, ...]:
        """Datasets a fit reads beyond its data, each ``<name>_valid`` / ``<name>_final``."""
        return getattr(self.model, "extra_inputs", ())


# fmt: off
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("popular",        "general_rec",    "general",    PopularConfig,      MostPopular),
    ModelSpec("ease",           "general_rec",    "general",    EASEConfig,         EASE,         TUNABLE | EXPLAINABLE | FOLDS_IN | GPU),
    ModelSpec("user_ease",      "general_rec",    "general",    UserItemEASEConfig, UserItemEASE, TUNABLE | GPU),
    ModelSpec("admm_slim",      "general_rec",    "general",    ADMMSLIMConfig,     ADMMSLIM,     TUNABLE | EXPLAINABLE | FOLDS_IN | GPU),
    ModelSpec("multivae",       "general_rec",    "general",    MultiVAEConfig,     MultiVAE,     TUNABLE | ITERATIVE | GPU),
    ModelSpec("recvae",         "general_rec",    "general",    RecVAEConfig,       RecVAE,       TUNABLE | ITERATIVE | GPU),
    ModelSpec("markov",         "sequential_rec", "sequential", MarkovConfig,       Markov,       TUNABLE | EXPLAINABLE | FOLDS_IN),
    ModelSpec("sknn",           "sequential_rec", "sequential", SKNNConfig,         SKNN,         TUNABLE | EXPLAINABLE),
    ModelSpec("gru4rec",        "sequential_rec", "sequential", GRU4RecConfig,      Neural(GRU4Rec),  TUNABLE | ITERATIVE | GPU),
    ModelSpec("sasrec",         "sequential_rec", "sequential", SASRecConfig,       Neural(SASRec),   TUNABLE | ITERATIVE | GPU),
    ModelSpec("bert4rec",       "sequential_rec", "sequential", BERT4RecConfig,     Neural(BERT4Rec), TUNABLE | ITERATIVE | GPU),
    ModelSpec("srgnn",          "sequential_rec", "sequential", SRGNNConfig,        Neural(SRGNN),    TUNABLE | ITERATIVE | GPU),
    ModelSpec("s3rec_sasrec",   "sequential_rec", "sequential", SASRecConfig,       Neural(SASRec, PRETRAINED),   TUNABLE | ITERATIVE | SIDE_INFO | GPU),
    ModelSpec("s3rec_bert4rec", "sequential_rec", "sequential", BERT4RecConfig,     Neural(BERT4Rec, PRETRAINED), TUNABLE | ITERATIVE | SIDE_INFO | GPU),
    ModelSpec("lgbm_ranker",    "tabular_rec",    "tabular",    None,               None,         SIDE_INFO),
)}
# fmt: on

SECOND_STAGE = next(spec.name for spec in MODELS.values() if spec.kind == "tabular")  # the ranker
EXPLAINER = "ease"  # whose reasons the report and `kedro recommend` show beside the submission


def models_of(pipeline: str) -> list[ModelSpec]:
    """The registered models a pipeline fits, in registry order."""
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}; expected one of {PIPELINES}")
    return [spec for spec in MODELS.values() if spec.pipeline == pipeline]


def models_that(capability: Capability) -> list[str]:
    """The registered models with ``capability``, in registry order."""
    return [name for name, spec in MODELS.items() if spec.can(capability)]


def first_stage_models() -> list[str]:
    """Every model whose candidates the second stage (the ranker) can rerank."""
    return [name for name, spec in MODELS.items() if spec.kind != "tabular"]


def spec(name: str) -> ModelSpec:
    """The registry entry of ``name``, or a clear error listing the known models."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(MODELS)}")
    return MODELS[name]

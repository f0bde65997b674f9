"""The one registry of models: name → pipeline, kind, config class and how to fit it.

Every pipeline, the ensemble, the ranker and the report read :data:`MODELS`; adding a model
means writing its module, its parameter section and one entry here (an adapter that fits it
on :class:`TrainingData` and a :class:`ModelSpec`). See ``docs/architecture.md``.

An adapter ``fit(config, data, run) -> Fitted`` trains a model on one fit's data
(``split_train`` for the validation fit, all interactions for the final fit). With
``run.evaluate`` it may stop early on validation Recall@10; ``run.stop_at`` replays a
validation fit's best update count on the final fit. The fitted object's ``score(users)``
feeds :func:`movie_rec.evaluation.top_k_unseen`, and the object itself is what
``data/06_models/<model>_model.pkl`` keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from movie_rec.evaluation import ScoreFn
from movie_rec.models.admm_slim import ADMMSLIM, ADMMSLIMConfig
from movie_rec.models.baselines import MostPopular, PopularConfig
from movie_rec.models.ease import EASE, EASEConfig, gram_matrix
from movie_rec.models.markov import Markov, MarkovConfig
from movie_rec.models.multivae import MultiVAE, MultiVAEConfig
from movie_rec.models.recvae import RecVAE, RecVAEConfig
from movie_rec.models.sequences import UserSequences, user_sequences
from movie_rec.models.sequential import fit as seq
from movie_rec.models.sequential.data import SequentialConfig
from movie_rec.models.sknn import SKNN, SKNNConfig
from movie_rec.models.training import TrainConfig, TrainResult
from movie_rec.models.user_ease import UserItemEASE, UserItemEASEConfig

PIPELINES = ("general_rec", "sequential_rec", "tabular_rec")
KINDS = ("general", "sequential", "tabular")


@dataclass
class TrainingData:
    """One fit's data: the time-ordered interactions and their users × items matrix.

    Derived views (sequences, the Gram matrix) are built on first use and shared by every
    trial of a tuning study.
    """

    interactions: pd.DataFrame
    matrix: sp.csr_matrix
    _grams: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @cached_property
    def sequences(self) -> UserSequences:
        return user_sequences(self.interactions, self.n_users)

    def gram(self, device: torch.device) -> torch.Tensor:
        """``XᵀX`` on ``device``, computed once."""
        if str(device) not in self._grams:
            self._grams[str(device)] = gram_matrix(self.matrix, device)
        return self._grams[str(device)]


@dataclass(frozen=True)
class FitRun:
    """How one fit runs: device, seed, training budget, early stopping and extra inputs.

    Attributes:
        evaluate: validation Recall@10 of a score function (early stopping); ``None`` on
            the final fit.
        stop_at: train exactly this many updates (the validation fit's best), if given.
        extras: further inputs a model declares in :attr:`ModelSpec.extra_inputs`.
    """

    device: torch.device
    seed: int
    train: TrainConfig
    evaluate: Callable[[ScoreFn], float] | None = None
    stop_at: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fitted:
    """A fitted model (anything with ``score(users)``) and, if it trains iteratively, how."""

    model: Any
    result: TrainResult | None = None

    def score(self, users: np.ndarray) -> torch.Tensor | np.ndarray:
        return self.model.score(users)


FitFn = Callable[[Any, TrainingData, FitRun], Fitted]


@dataclass(frozen=True)
class ModelSpec:
    """One model: where it runs, what it is and how to fit it.

    Attributes:
        name: the model's name (its namespace, parameter section and file prefix).
        pipeline: the Kedro pipeline that fits it.
        kind: ``general`` (order-free), ``sequential`` (reads the order) or ``tabular``.
        config: builds the model's config from its hyperparameters (``from_params``).
        fit: the adapter (``None`` for the ranker, which has a pipeline of its own).
        iterative: trains with the shared loop (has ``train`` settings and updates).
        extra_inputs: datasets beyond the fit's data, each ``<name>_valid``/``<name>_final``.
        gpu: fits with torch on ``runtime.device``, so a GPU speeds it up (its fitting nodes
            carry the ``gpu`` tag, which the Dask runner maps to a GPU resource).
    """

    name: str
    pipeline: str
    kind: str
    config: Callable[[dict[str, Any]], Any] | None
    fit: FitFn | None
    iterative: bool = False
    extra_inputs: tuple[str, ...] = ()
    gpu: bool = False


def _fit_popular(config: PopularConfig, data: TrainingData, run: FitRun) -> Fitted:
    return Fitted(MostPopular(data.matrix))


def _fit_ease(config: EASEConfig, data: TrainingData, run: FitRun) -> Fitted:
    return Fitted(EASE(config, run.device).fit(data.matrix, gram=data.gram(run.device)))


def _fit_user_ease(config: UserItemEASEConfig, data: TrainingData, run: FitRun) -> Fitted:
    model = UserItemEASE(config, run.device)
    return Fitted(model.fit(data.matrix, gram=data.gram(run.device)))


def _fit_admm_slim(config: ADMMSLIMConfig, data: TrainingData, run: FitRun) -> Fitted:
    return Fitted(ADMMSLIM(config, run.device).fit(data.matrix, gram=data.gram(run.device)))


def _fit_multivae(config: MultiVAEConfig, data: TrainingData, run: FitRun) -> Fitted:
    model = MultiVAE(config, run.device, run.seed)
    result = model.fit(data.matrix, run.train, run.evaluate, stop_at=run.stop_at)
    return Fitted(model, result)


def _fit_recvae(config: RecVAEConfig, data: TrainingData, run: FitRun) -> Fitted:
    model = RecVAE(config, run.device, run.seed)
    result = model.fit(data.matrix, run.train, run.evaluate, stop_at=run.stop_at)
    return Fitted(model, result)


def _fit_markov(config: MarkovConfig, data: TrainingData, run: FitRun) -> Fitted:
    return Fitted(Markov(config).fit(data.sequences, data.n_items))


def _fit_sknn(config: SKNNConfig, data: TrainingData, run: FitRun) -> Fitted:
    return Fitted(SKNN(config).fit(data.sequences, data.n_items))


def _sequential(name: str) -> FitFn:
    """The adapter of a neural sequential model: the shared sequence toolkit does the work."""

    def fit(config: SequentialConfig, data: TrainingData, run: FitRun) -> Fitted:
        pretrained = run.extras.get("s3rec_pretrained")
        model = seq.build_model(name, data.n_items, config, run.seed, pretrained)
        scorer = seq.SequenceScorer(model, data.sequences, run.device)
        result = seq.fit(
            model,
            data.sequences,
            run.train,
            run.device,
            run.seed,
            name,
            evaluate=None if run.evaluate is None else lambda: run.evaluate(scorer.score),
            stop_at=run.stop_at,
        )
        return Fitted(scorer, result)

    return fit


def _neural(name: str, *extra_inputs: str) -> ModelSpec:
    config = seq.architecture(name).config.from_params
    return ModelSpec(
        name, "sequential_rec", "sequential", config, _sequential(name), True, extra_inputs, True
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("popular", "general_rec", "general", PopularConfig.from_params, _fit_popular),
        ModelSpec("ease", "general_rec", "general", EASEConfig.from_params, _fit_ease, gpu=True),
        ModelSpec(
            "user_ease",
            "general_rec",
            "general",
            UserItemEASEConfig.from_params,
            _fit_user_ease,
            gpu=True,
        ),
        ModelSpec(
            "admm_slim",
            "general_rec",
            "general",
            ADMMSLIMConfig.from_params,
            _fit_admm_slim,
            gpu=True,
        ),
        ModelSpec(
            "multivae",
            "general_rec",
            "general",
            MultiVAEConfig.from_params,
            _fit_multivae,
            True,
            gpu=True,
        ),
        ModelSpec(
            "recvae",
            "general_rec",
            "general",
            RecVAEConfig.from_params,
            _fit_recvae,
            True,
            gpu=True,
        ),
        ModelSpec("markov", "sequential_rec", "sequential", MarkovConfig.from_params, _fit_markov),
        ModelSpec("sknn", "sequential_rec", "sequential", SKNNConfig.from_params, _fit_sknn),
        _neural("gru4rec"),
        _neural("sasrec"),
        _neural("bert4rec"),
        _neural("srgnn"),
        _neural("s3rec_sasrec", "s3rec_pretrained"),
        _neural("s3rec_bert4rec", "s3rec_pretrained"),
        ModelSpec("lgbm_ranker", "tabular_rec", "tabular", None, None),
    )
}


def models_of(pipeline: str) -> list[ModelSpec]:
    """The registered models a pipeline fits, in registry order."""
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}; expected one of {PIPELINES}")
    return [spec for spec in MODELS.values() if spec.pipeline == pipeline]


def first_stage_models() -> list[str]:
    """Every model whose candidates the second stage (the ranker) can rerank."""
    return [name for name, spec in MODELS.items() if spec.kind != "tabular"]


def spec(name: str) -> ModelSpec:
    """The registry entry of ``name``, or a clear error listing the known models."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(MODELS)}")
    return MODELS[name]

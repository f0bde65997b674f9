"""What every model is: ``Model(config)``, ``fit(data, run) -> result`` and ``score(users)``.

A model is built from its config dataclass alone. :meth:`Model.fit` trains it on one fit's
:class:`TrainingData` (``split_train`` for the validation fit, all interactions for the
final fit) the way :class:`FitRun` says (device, seed, the training loop's budget, early
stopping); an iterative model returns its
:class:`~movie_rec.models.training.TrainResult`, a closed-form one ``None``.
:meth:`Model.score` gives ``(len(users), n_items)`` scores of the fitted users, what
:func:`movie_rec.evaluation.top_k_unseen` ranks; the fitted object is what
``data/06_models/<model>_model.pkl`` keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from movie_rec.evaluation import ScoreFn
from movie_rec.models.matrices import gram_matrix
from movie_rec.models.sequences import UserSequences, user_sequences
from movie_rec.models.training import TrainConfig, TrainResult


@dataclass
class TrainingData:
    """One fit's data: the users × items matrix and the time-ordered interactions.

    Derived views (sequences, the Gram matrix) are built on first use and shared by every
    trial of a tuning study. A model that reads only the matrix needs no interactions.
    """

    matrix: sp.csr_matrix
    interactions: pd.DataFrame | None = None
    _grams: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @classmethod
    def of_sequences(cls, sequences: UserSequences, n_items: int) -> TrainingData:
        """The data of histories already grouped into sequences (their binary matrix)."""
        owner = np.repeat(np.arange(sequences.n_users), sequences.lengths())
        ones = np.ones(len(owner), dtype=np.float32)
        matrix = sp.csr_matrix((ones, (owner, sequences.items)), shape=(sequences.n_users, n_items))
        matrix.data[:] = 1.0
        data = cls(matrix)
        data.__dict__["sequences"] = sequences
        return data

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @cached_property
    def sequences(self) -> UserSequences:
        if self.interactions is None:
            raise ValueError("this fit's data holds no interactions: a sequence model needs them")
        return user_sequences(self.interactions, self.n_users)

    def gram(self, device: torch.device) -> torch.Tensor:
        """``XᵀX`` on ``device``, computed once."""
        if str(device) not in self._grams:
            self._grams[str(device)] = gram_matrix(self.matrix, device)
        return self._grams[str(device)]


@dataclass(frozen=True)
class FitRun:
    """How one fit runs.

    Attributes:
        device: where the model trains and scores.
        seed: seeds the model's initialisation and its batches.
        train: the training loop's budget and schedule (iterative models).
        evaluate: validation Recall@10 of a score function (early stopping); ``None`` on
            the final fit.
        stop_at: train up to this update (the validation fit's best, or past it when
            continuing), if given.
        start: the fitted model whose kept weights this fit continues (the final fit with
            ``train.final_updates``), and the update they were kept at.
        extras: further inputs a model declares (:attr:`movie_rec.registry.ModelSpec.extra_inputs`).
        name: the model's name in log lines and progress bars.
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: Callable[[ScoreFn], float] | None = None
    stop_at: int | None = None
    start: Start | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    name: str = "model"

    @property
    def start_update(self) -> int:
        return 0 if self.start is None else self.start.update


@dataclass(frozen=True)
class Start:
    """Where a fit that continues another begins: that fit's ``model`` (holding the weights
    it kept) and the ``update`` they were kept at."""

    model: Any
    update: int


class Model(Protocol):
    """The protocol every registered model follows (built as ``Model(config)``)."""

    def fit(self, data: TrainingData, run: FitRun) -> TrainResult | None: ...

    def score(self, users: np.ndarray) -> torch.Tensor | np.ndarray: ...


@dataclass(frozen=True)
class Reason:
    """One contribution to an item's score.

    Attributes:
        kind: ``item`` (a movie the user watched, ``index`` is its item_idx) or ``user``
            (a neighbour who watched the item, ``index`` is their user_idx).
        index: the dense index of that item or user.
        contribution: its share of the score.
    """

    kind: str
    index: int
    contribution: float


@runtime_checkable
class Explains(Protocol):
    """A model whose score of an item decomposes into reasons (capability ``EXPLAINABLE``)."""

    def explain(
        self, item: int, history_items: np.ndarray, user: int | None = None
    ) -> list[Reason]:
        """The positive contributions to ``item``'s score for a history (oldest first) or a
        fitted ``user``, largest first."""
        ...


@runtime_checkable
class FoldsIn(Protocol):
    """A model that scores a history it was not fitted on (capability ``FOLDS_IN``)."""

    def history_scores(self, history_items: np.ndarray) -> np.ndarray:
        """The scores of every item for a history of dense item indices, oldest first."""
        ...


M = TypeVar("M", bound=Model)


def fitted(model: M, data: TrainingData, run: FitRun | None = None) -> M:
    """``model`` fitted on ``data`` (by default on the CPU, seed 0), for callers that only
    score it."""
    model.fit(data, run or FitRun())
    return model

"""What Multi-VAE and RecVAE share: training on users' binary histories and scoring them.

Both fit a network on the rows of a users × items matrix with the shared loop
(:func:`movie_rec.models.training.train`): passes of shuffled batches of the users that
have a history, early stopping on ``run.evaluate(self.score)`` (validation Recall@10). Both
score a user by decoding the mean of their latent (eval mode, no gradients) and persist
the same state.

A batch of histories stays sparse (:class:`HistoryBatch`): the encoder's first layer sums
the rows of its weight for the movies a user has (:class:`HistoryInput`), the input dropout
draws only for those movies and the multinomial likelihood gathers their log-probabilities.
A history of 166 movies out of 3,416 (MovieLens 1M) makes that a twentieth of the dense
layer's products; the decoder's softmax over every movie stays dense.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from movie_rec.models.config import ParamsConfig
from movie_rec.models.protocol import FitRun, Start, TrainingData
from movie_rec.models.training import TrainResult, train
from movie_rec.runtime import autocast, seed_everything


@dataclass(frozen=True)
class AutoencoderConfig(ParamsConfig):
    """What both autoencoders' configs hold: the encoder's ``n_items → hidden → latent``
    widths, the input dropout, Adam's learning rate and the users per update (Multi-VAE's
    paper defaults)."""

    hidden: int = 600
    latent: int = 200
    dropout: float = 0.5
    lr: float = 1e-3
    batch_size: int = 500


@dataclass(frozen=True)
class HistoryBatch:
    """Users' rows of a users × items matrix as their nonzeros, on one device.

    The k-th nonzero is movie ``items[k]`` of the batch's user ``rows[k]`` with value
    ``values[k]``; user j's nonzeros start at ``offsets[j]`` (CSR order).
    """

    items: torch.Tensor
    rows: torch.Tensor
    offsets: torch.Tensor
    values: torch.Tensor
    size: int

    @classmethod
    def from_rows(
        cls, matrix: sp.csr_matrix, users: np.ndarray, device: torch.device
    ) -> HistoryBatch:
        picked = sp.csr_matrix(matrix[users], dtype=np.float32)
        lengths = np.diff(picked.indptr)
        rows = np.repeat(np.arange(len(users)), lengths)
        return cls(
            items=torch.from_numpy(picked.indices.astype(np.int64)).to(device),
            rows=torch.from_numpy(rows).to(device),
            offsets=torch.from_numpy(picked.indptr[:-1].astype(np.int64)).to(device),
            values=torch.from_numpy(picked.data).to(device),
            size=len(users),
        )

    def row_sums(self, per_nonzero: torch.Tensor) -> torch.Tensor:
        """Each user's sum of ``per_nonzero`` (one value per nonzero)."""
        sums = torch.zeros(self.size, dtype=per_nonzero.dtype, device=per_nonzero.device)
        return sums.index_add_(0, self.rows, per_nonzero)

    def normalized_values(self) -> torch.Tensor:
        """The values divided by their row's L2 norm (``F.normalize`` of the dense rows)."""
        norms = self.row_sums(self.values.square()).sqrt().clamp_min(1e-12)
        return self.values / norms[self.rows]


class HistoryInput(nn.Module):
    """``nn.Linear(n_items, width)`` applied to a :class:`HistoryBatch`: the weight rows of
    each user's movies summed, scaled by the given per-nonzero values (``nn.Linear``'s
    initialisation; the weight is stored items × width)."""

    def __init__(self, n_items: int, width: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(n_items)
        self.weight = nn.Parameter(torch.empty(n_items, width).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(width).uniform_(-bound, bound))

    def forward(self, batch: HistoryBatch, values: torch.Tensor) -> torch.Tensor:
        summed = F.embedding_bag(
            batch.items, self.weight, batch.offsets, mode="sum", per_sample_weights=values
        )
        return summed + self.bias


def multinomial_nll(logits: torch.Tensor, batch: HistoryBatch) -> torch.Tensor:
    """Each user's ``-Σ_i x_ui · log softmax(logits_u)_i`` (Liang et al. 2018, eq. 2)."""
    log_probs = F.log_softmax(logits.float(), dim=1)
    return -batch.row_sums(log_probs[batch.rows, batch.items] * batch.values)


class UserAutoencoder:
    """A recommender that encodes and decodes users' rows of the interaction matrix.

    A subclass sets ``name`` and defines ``_build(n_items)`` (sets ``self.net``, a module
    with ``decode_mean(batch)``: item logits from the latent mean, and returns its optimiser)
    and ``_loss(users)``; it extends ``_resume(start)`` where it keeps state beside the
    weights.
    """

    name: str

    def __init__(self, config: AutoencoderConfig) -> None:
        self.config = config
        self.device = torch.device("cpu")
        self.seed = 0
        self.net: nn.Module | None = None
        self.matrix: sp.csr_matrix | None = None

    def fit(self, data: TrainingData, run: FitRun) -> TrainResult:
        """Train with early stopping on ``run.evaluate(self.score)`` (validation Recall@10).

        Without ``run.evaluate`` it trains up to ``run.stop_at`` (or ``max_updates``): the
        final fit on all interactions, a fresh model for the update count the validation fit
        kept or, with ``run.start``, that fit's weights continued from their update.
        """
        self.device, self.seed = run.device, run.seed
        seed_everything(self.seed)
        self.matrix = sp.csr_matrix(data.matrix, dtype=np.float32)
        optimizer = self._build(self.matrix.shape[1])
        if run.start is not None:
            self._resume(run.start)
        evaluate = run.evaluate
        return train(
            self.net,
            optimizer,
            self._batches,
            self._loss,
            None if evaluate is None else lambda: evaluate(self.score),
            run.train,
            self.device,
            self.name,
            stop_at=run.stop_at,
            start_update=run.start_update,
        )

    def _resume(self, start: Start) -> None:
        """Take the weights of ``start.model``, a fitted autoencoder of the same movies."""
        fitted = start.model
        if fitted.matrix is None or fitted.matrix.shape[1] != self.matrix.shape[1]:
            raise ValueError(f"{self.name}: the fit to continue is not fitted on these movies")
        self.net.load_state_dict(fitted.net.state_dict())

    def _batches(self, pass_index: int) -> Iterator[np.ndarray]:
        """One pass of user batches: users with any history, shuffled by (seed, pass)."""
        active = np.flatnonzero(np.diff(self.matrix.indptr) > 0)
        order = np.random.default_rng([self.seed, pass_index]).permutation(active)
        for start in range(0, len(order), self.config.batch_size):
            yield order[start : start + self.config.batch_size]

    def _rows(self, users: np.ndarray) -> HistoryBatch:
        """The users' histories on the device."""
        return HistoryBatch.from_rows(self.matrix, users, self.device)

    def _build(self, n_items: int) -> Any:
        raise NotImplementedError

    def _loss(self, users: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def _fitted(self, method: str) -> nn.Module:
        if self.net is None or self.matrix is None:
            raise RuntimeError(f"{type(self).__name__}.{method} called before fit")
        return self.net

    def score(self, users: np.ndarray) -> torch.Tensor:
        """Item logits of ``users`` from their latent means (eval mode, no gradients)."""
        net = self._fitted("score")
        was_training = net.training
        net.eval()
        with torch.no_grad(), autocast(self.device):
            logits = net.decode_mean(self._rows(users)).float()
        net.train(was_training)
        return logits

    def state(self) -> dict[str, Any]:
        """What to persist: hyperparameters, item count and CPU weights."""
        net = self._fitted("state")
        return {
            "hyperparameters": self.config.to_dict(),
            "n_items": self.matrix.shape[1],
            "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        }

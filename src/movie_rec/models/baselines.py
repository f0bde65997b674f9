"""Reference scorers every model is compared with.

* :class:`MostPopular` — the same list for everyone (0.067 on the real leaderboard).
* :class:`ItemCooccurrence` — items that co-occur with the user's history (item-kNN
  without normalisation); good at the gaps in the middle of a history.

What other users watched right after the user's last movie (good at the end of the
sequence) is ``Markov(MarkovConfig(k=1, lags=1))`` of :mod:`movie_rec.models.markov`.

Each exposes ``score(users) -> (len(users), n_items)`` for :func:`evaluation.top_k_unseen`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from movie_rec.models.config import ParamsConfig

if TYPE_CHECKING:
    from movie_rec.models.protocol import FitRun, TrainingData


def item_popularity(matrix: sp.csr_matrix) -> np.ndarray:
    """Interactions per item."""
    return np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel()


@dataclass(frozen=True)
class PopularConfig(ParamsConfig):
    """Most-popular has no hyperparameters: the same list for everyone."""


class MostPopular:
    def __init__(self, config: PopularConfig) -> None:
        self.config = config
        self.popularity: np.ndarray | None = None

    def fit(self, data: TrainingData, run: FitRun) -> None:
        self.popularity = item_popularity(data.matrix).astype(np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        if self.popularity is None:
            raise RuntimeError("MostPopular.score called before fit")
        return np.broadcast_to(self.popularity, (len(users), len(self.popularity)))


class ItemCooccurrence:
    def __init__(self, matrix: sp.csr_matrix) -> None:
        self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        cooccurrence = (self.matrix.T @ self.matrix).tocsr()
        cooccurrence.setdiag(0)
        cooccurrence.eliminate_zeros()
        self.cooccurrence = cooccurrence

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.matrix[users] @ self.cooccurrence).todense())

"""Reference scorers every model is compared with.

* :class:`MostPopular` — the same list for everyone (0.067 on the real leaderboard).
* :class:`ItemCooccurrence` — items that co-occur with the user's history (item-kNN
  without normalisation); good at the gaps in the middle of a history.
* :class:`LastItemTransition` — what other users watched right after the user's last
  movie; good at the end of the sequence.

Each exposes ``score(users) -> (len(users), n_items)`` for :func:`evaluation.top_k_unseen`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from movie_rec.models.config import ParamsConfig
from movie_rec.models.sequences import UserSequences


def item_popularity(matrix: sp.csr_matrix) -> np.ndarray:
    """Interactions per item."""
    return np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel()


@dataclass(frozen=True)
class PopularConfig(ParamsConfig):
    """Most-popular has no hyperparameters: the same list for everyone."""


class MostPopular:
    def __init__(self, matrix: sp.csr_matrix) -> None:
        self.popularity = item_popularity(matrix).astype(np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
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


class LastItemTransition:
    """Counts of ``a → b`` (b watched right after a); a small popularity term breaks ties."""

    def __init__(self, sequences: UserSequences, n_items: int) -> None:
        items, offsets = sequences.items, sequences.offsets
        follows = np.ones(len(items), dtype=bool)
        follows[offsets[:-1][offsets[:-1] < len(items)]] = False  # first item of a user
        prev_items, next_items = items[:-1][follows[1:]], items[1:][follows[1:]]
        self.transitions = sp.csr_matrix(
            (np.ones(len(prev_items), dtype=np.float32), (prev_items, next_items)),
            shape=(n_items, n_items),
        )
        popularity = np.bincount(items, minlength=n_items).astype(np.float32)
        self.tie_break = popularity / (popularity.max() + 1.0) * 1e-3
        self.last = sequences.last_items()

    def score(self, users: np.ndarray) -> np.ndarray:
        last = self.last[users]
        scores = np.asarray(self.transitions[np.maximum(last, 0)].todense())
        scores[last < 0] = 0.0
        return scores + self.tie_break

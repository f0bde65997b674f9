"""Decayed item-to-item transitions: a higher-order Markov chain scored from the last items.

A first-order Markov chain (as in Rendle et al., "Factorizing personalized Markov chains
for next-basket recommendation", WWW 2010, without the factorisation) widened the way the
"sequential rules" baseline of Ludewig & Jannach ("Evaluation of session-based
recommendation algorithms", UMUAI 2018) widens it, since the next movies depend on more
than the last one:

* **Lags.** Item ``a`` at position ``t`` and item ``b`` at ``t + d`` (``d = 1..lags``) add
  ``lag_decay ** (d - 1)`` to ``C[a, b]``; ``T`` is ``C`` row-normalised, so ``T[a]`` is a
  distribution over what follows ``a`` soon (an item that starts no transition has a zero row).
* **Several votes.** A user's score is ``Σ_j recency_decay ** (j - 1) · T[item_j]`` over
  their ``k`` most recent items (``j = 1`` is the last one).

``tie_break`` adds that weight times the item's popularity (scaled to [0, 1]) to the scores
of users who have a history, so the items the transitions leave at zero (or tied) come in
popularity order; a user without history keeps a zero row. ``Markov(MarkovConfig(k=1, lags=1))`` is the
last-item transition model: what others watched right after the user's last movie.

Scoring builds only the ``(len(users), n_items)`` block: a sparse matrix of the users'
recent items (weighted by recency) times the sparse ``T``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from movie_rec.models.config import ParamsConfig
from movie_rec.models.protocol import Reason
from movie_rec.models.sequences import UserSequences

if TYPE_CHECKING:
    from movie_rec.models.protocol import FitRun, TrainingData


@dataclass(frozen=True)
class MarkovConfig(ParamsConfig):
    """Hyperparameters; the defaults count three lags and let the last three items vote."""

    k: int = 3  # the user's last k items vote
    lags: int = 3  # an item's transitions to each of the next `lags` items are counted
    lag_decay: float = 0.5  # a lag-d transition counts lag_decay ** (d - 1)
    recency_decay: float = 0.7  # the j-th most recent item votes with recency_decay ** (j - 1)
    tie_break: float = 1e-6  # weight of the [0, 1]-scaled popularity added to non-empty users

    def __post_init__(self) -> None:
        if self.k < 1 or self.lags < 1:
            raise ValueError(f"k and lags must be at least 1, got k={self.k}, lags={self.lags}")
        if self.lag_decay < 0 or self.recency_decay < 0 or self.tie_break < 0:
            raise ValueError("lag_decay, recency_decay and tie_break must be non-negative")


def recent_positions(
    sequences: UserSequences, users: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the last ``count`` items of each user sit in ``sequences.items``.

    Returns ``rows`` (index into ``users``), ``ages`` (0 = the most recent item) and the
    flat ``positions``, grouped by row and most recent first; a user with a shorter
    history gives all their items, an empty one none.
    """
    users = np.asarray(users, dtype=np.int64)
    ends = sequences.offsets[users + 1]
    taken = np.minimum(ends - sequences.offsets[users], count)
    rows = np.repeat(np.arange(len(users)), taken)
    first_of_row = np.cumsum(taken) - taken
    ages = np.arange(len(rows)) - np.repeat(first_of_row, taken)
    positions = ends[rows] - 1 - ages
    return rows, ages, positions


def transition_matrix(
    sequences: UserSequences, n_items: int, lags: int, lag_decay: float
) -> sp.csr_matrix:
    """items x items decayed transition counts, row-normalised (rows sum to 1 or 0).

    Each lag's exact pair counts are added in turn, so memory holds one lag's pairs and the
    sparse sum, not every lag's pairs at once (at 5M interactions and 20 lags: 1.4 GB, not 7).
    """
    items = sequences.items
    owner = np.repeat(np.arange(sequences.n_users, dtype=np.int32), sequences.lengths())
    counts = sp.csr_matrix((n_items, n_items), dtype=np.float64)
    for lag in range(1, lags + 1):
        same_user = owner[:-lag] == owner[lag:]
        pairs = sp.csr_matrix(
            (
                np.ones(int(same_user.sum()), dtype=np.float64),
                (items[:-lag][same_user], items[lag:][same_user]),
            ),
            shape=(n_items, n_items),
        )  # duplicate (source, target) pairs are summed
        counts = counts + pairs * lag_decay ** (lag - 1)
    counts.eliminate_zeros()
    row_sums = np.asarray(counts.sum(axis=1)).ravel()
    inverse = np.divide(1.0, row_sums, out=np.zeros_like(row_sums), where=row_sums > 0)
    return sp.csr_matrix(sp.diags(inverse) @ counts, dtype=np.float32)


class Markov:
    """Transitions fitted on time-ordered histories; scores the fitted users."""

    def __init__(self, config: MarkovConfig) -> None:
        self.config = config
        self.sequences: UserSequences | None = None
        self.transitions: sp.csr_matrix | None = None
        self.popularity: np.ndarray | None = None

    def fit(self, data: TrainingData, run: FitRun) -> None:
        """Count the transitions of the data's sequences (closed form: ``run`` is unused)."""
        sequences, n_items = data.sequences, data.n_items
        self.sequences = sequences
        self.transitions = transition_matrix(
            sequences, n_items, self.config.lags, self.config.lag_decay
        )
        counts = np.bincount(sequences.items, minlength=n_items).astype(np.float32)
        self.popularity = counts / max(float(counts.max(initial=0.0)), 1.0)

    def _fitted(self) -> tuple[UserSequences, sp.csr_matrix]:
        if self.sequences is None or self.transitions is None:
            raise RuntimeError("Markov used before fit")
        return self.sequences, self.transitions

    def recent_votes(self, users: np.ndarray) -> sp.csr_matrix:
        """``(len(users), n_items)``: each user's last ``k`` items, weighted by recency."""
        sequences, transitions = self._fitted()
        rows, ages, positions = recent_positions(sequences, users, self.config.k)
        weights = self.config.recency_decay ** ages.astype(np.float64)
        return sp.csr_matrix(
            (weights.astype(np.float32), (rows, sequences.items[positions])),
            shape=(len(users), transitions.shape[0]),
        )

    def score(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), n_items)`` float32 scores; zero rows for users without history."""
        sequences, transitions = self._fitted()
        users = np.asarray(users, dtype=np.int64)
        scores = (self.recent_votes(users) @ transitions).toarray().astype(np.float32, copy=False)
        has_history = sequences.lengths()[users] > 0
        scores[has_history] += self.config.tie_break * self.popularity
        return scores

    def history_votes(self, history_items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A history's last ``k`` items (oldest first in ``history_items``), distinct, and
        their recency weights: the votes a fitted user's last items cast."""
        recent = np.asarray(history_items, dtype=np.int64)[::-1][: self.config.k]
        weights = self.config.recency_decay ** np.arange(len(recent), dtype=np.float64)
        items, slots = np.unique(recent, return_inverse=True)
        return items, np.bincount(slots, weights=weights, minlength=len(items)).astype(np.float32)

    def history_scores(self, history_items: np.ndarray) -> np.ndarray:
        """The scores of every item for a new history, as for a fitted user."""
        _, transitions = self._fitted()
        items, votes = self.history_votes(history_items)
        row = sp.csr_matrix((votes, items, [0, len(items)]), shape=(1, transitions.shape[0]))
        scores = (row @ transitions).toarray().ravel().astype(np.float32)
        if len(items):
            scores += self.config.tie_break * self.popularity
        return scores

    def explain(
        self, item: int, history_items: np.ndarray, user: int | None = None
    ) -> list[Reason]:
        """The history's recent items that vote for ``item``, largest vote first (ties to
        the smaller index); the votes sum to the score less the popularity tie-break."""
        _, transitions = self._fitted()
        items, votes = self.history_votes(history_items)
        shares = votes.astype(np.float64) * transitions[items, item].toarray().ravel()
        order = np.lexsort((items, -shares))
        return [Reason("item", int(items[i]), float(shares[i])) for i in order if shares[i] > 0]

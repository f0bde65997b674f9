"""Why an item is recommended, and recommendations for a history no model was fitted on.

Every explanation is an exact decomposition of the model's score into contributions:

* **Linear item-item models** (EASE, ADMM-SLIM): a user's score for item ``i`` is
  ``x_u · B[:, i] = Σ_{j watched} B[j, i]``; the reasons are the watched items ``j`` with
  the largest ``B[j, i]``. Folding in a new history is the same product, ``x · B``.
* **Markov**: the score is ``Σ_j recency_decay ** (j - 1) · T[item_j, i]`` over the last
  ``k`` items (plus a popularity tie-break); the reasons are those recent items' votes.
  A new history folds in through the same transitions.
* **SKNN**: the score is a sum of neighbour users' votes; the reasons are those neighbours
  (:meth:`movie_rec.models.sknn.SKNN.reasons`). It cannot fold in a history.

A history is an array of dense item indices, oldest first. Plain numpy; no Kedro.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from movie_rec.evaluation import top_k_unseen
from movie_rec.models.admm_slim import ADMMSLIM
from movie_rec.models.ease import EASE
from movie_rec.models.markov import Markov
from movie_rec.models.sknn import SKNN

LINEAR_ITEM_MODELS = (EASE, ADMMSLIM)


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


def as_array(weights: torch.Tensor | np.ndarray) -> np.ndarray:
    """Item-item weights as a CPU numpy array (a view where possible)."""
    if isinstance(weights, torch.Tensor):
        return weights.detach().cpu().numpy()
    return np.asarray(weights)


def ease_scores(history_items: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``x · B`` for the binary history ``x``: the scores of every item (the fold-in)."""
    items = np.unique(np.asarray(history_items, dtype=np.int64))
    return weights[items].sum(axis=0, dtype=np.float64).astype(np.float32)


def ease_reasons(
    history_items: np.ndarray, weights: np.ndarray, item: int, top: int = 3
) -> list[tuple[int, float]]:
    """The watched items with the largest positive terms ``B[j, item]`` of the item's score.

    Returns up to ``top`` ``(item_idx, contribution)`` pairs, largest first (ties by index);
    all the terms together sum to the score ``x · B[:, item]``.
    """
    items = np.unique(np.asarray(history_items, dtype=np.int64))
    contributions = weights[items, item].astype(np.float64)
    order = np.lexsort((items, -contributions))[:top]
    return [(int(items[i]), float(contributions[i])) for i in order if contributions[i] > 0]


def markov_votes(history_items: np.ndarray, model: Markov) -> tuple[np.ndarray, np.ndarray]:
    """The history's last ``k`` distinct items and their recency weights (as Markov votes)."""
    recent = np.asarray(history_items, dtype=np.int64)[::-1][: model.config.k]
    weights = model.config.recency_decay ** np.arange(len(recent), dtype=np.float64)
    items, slots = np.unique(recent, return_inverse=True)
    return items, np.bincount(slots, weights=weights, minlength=len(items)).astype(np.float32)


def markov_transitions(model: Markov) -> sp.csr_matrix:
    if model.transitions is None or model.popularity is None:
        raise RuntimeError("Markov used before fit")
    return model.transitions


def markov_scores(history_items: np.ndarray, model: Markov) -> np.ndarray:
    """A fitted Markov model's scores of every item for ``history_items`` (the fold-in)."""
    transitions = markov_transitions(model)
    items, votes = markov_votes(history_items, model)
    row = sp.csr_matrix((votes, items, [0, len(items)]), shape=(1, transitions.shape[0]))
    scores = (row @ transitions).toarray().ravel().astype(np.float32)
    if len(items):
        scores += model.config.tie_break * model.popularity
    return scores


def markov_reasons(
    history_items: np.ndarray, model: Markov, item: int, top: int = 3
) -> list[tuple[int, float]]:
    """The history's recent items that vote for ``item``, largest vote first (ties by index)."""
    transitions = markov_transitions(model)
    items, votes = markov_votes(history_items, model)
    shares = votes.astype(np.float64) * transitions[items, item].toarray().ravel()
    order = np.lexsort((items, -shares))[:top]
    return [(int(items[i]), float(shares[i])) for i in order if shares[i] > 0]


def can_fold_in(model: Any) -> bool:
    """Whether ``model`` can score a history it was not fitted on."""
    return isinstance(model, (*LINEAR_ITEM_MODELS, Markov))


def history_scores(model: Any, history_items: np.ndarray) -> np.ndarray:
    """Scores of every item for a new user's history (oldest first)."""
    if isinstance(model, LINEAR_ITEM_MODELS):
        return ease_scores(history_items, as_array(model.weights))
    if isinstance(model, Markov):
        return markov_scores(history_items, model)
    raise TypeError(f"{type(model).__name__} cannot score a new history")


def top_unseen(scores: np.ndarray, history_items: np.ndarray, k: int = 10) -> np.ndarray:
    """The ``k`` best items of one score row that are not in the history, best first."""
    n_items = len(scores)
    history = np.unique(np.asarray(history_items, dtype=np.int64))
    seen = sp.csr_matrix(
        (np.ones(len(history), dtype=np.float32), history, [0, len(history)]), shape=(1, n_items)
    )
    ranked = top_k_unseen(lambda users: scores[None, :], seen, k, users=np.array([0]))
    return ranked["item_idx"].to_numpy()


def user_top_unseen(model: Any, user: int, seen: sp.csr_matrix, k: int = 10) -> np.ndarray:
    """A fitted model's ``k`` best unseen items for one of its users, best first."""
    ranked = top_k_unseen(model.score, seen, k, users=np.array([user]))
    return ranked["item_idx"].to_numpy()


class Explainer:
    """The reasons a model gives for items, for a fitted user or a new history.

    Args:
        model: a fitted EASE, ADMM-SLIM, Markov or SKNN model.
        top: reasons kept per item.
    """

    def __init__(self, model: Any, top: int = 3) -> None:
        if not self.supports(model):
            raise TypeError(f"{type(model).__name__} gives no reasons")
        self.model = model
        self.top = top
        self.weights = as_array(model.weights) if isinstance(model, LINEAR_ITEM_MODELS) else None

    @staticmethod
    def supports(model: Any) -> bool:
        return isinstance(model, (*LINEAR_ITEM_MODELS, Markov, SKNN))

    def scores(self, history_items: np.ndarray) -> np.ndarray:
        """The model's scores for a history (with the weights converted once)."""
        if self.weights is not None:
            return ease_scores(history_items, self.weights)
        return history_scores(self.model, history_items)

    def reasons(
        self, item: int, history_items: np.ndarray, user: int | None = None
    ) -> list[Reason]:
        """Why ``item`` scores for ``history_items`` (SKNN needs the fitted ``user``)."""
        if self.weights is not None:
            pairs = ease_reasons(history_items, self.weights, item, self.top)
        elif isinstance(self.model, Markov):
            pairs = markov_reasons(history_items, self.model, item, self.top)
        elif user is None:
            return []
        else:
            neighbours = self.model.reasons(user, item)[: self.top]
            return [Reason("user", index, share) for index, share in neighbours]
        return [Reason("item", index, share) for index, share in pairs]

"""Why an item is recommended, and recommendations for a history no model was fitted on.

Each model that can explains itself (:class:`movie_rec.models.protocol.Explains`: every
reason is an exact term of its score) and folds in a new history itself
(:class:`movie_rec.models.protocol.FoldsIn`); the registry's ``EXPLAINABLE`` and
``FOLDS_IN`` capabilities say which do. This module names no model class:

* item-item models (EASE, ADMM-SLIM): the watched items with the largest weights
  ``W[j, i]``; a new history is the same product ``x · W``;
* Markov: the recent items' votes through the transitions;
* SKNN: the neighbour users who watched the item (it cannot fold in a history).

A history is an array of dense item indices, oldest first. Plain numpy; no Kedro.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from movie_rec.evaluation import top_k_unseen
from movie_rec.models.protocol import Explains, FoldsIn, Reason


def can_fold_in(model: Any) -> bool:
    """Whether ``model`` can score a history it was not fitted on."""
    return isinstance(model, FoldsIn)


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
        model: a fitted model that explains itself (``supports``).
        top: reasons kept per item.
    """

    def __init__(self, model: Any, top: int = 3) -> None:
        if not self.supports(model):
            raise TypeError(f"{type(model).__name__} gives no reasons")
        self.model = model
        self.top = top

    @staticmethod
    def supports(model: Any) -> bool:
        return isinstance(model, Explains)

    def scores(self, history_items: np.ndarray) -> np.ndarray:
        """The model's scores of every item for a new history."""
        if not can_fold_in(self.model):
            raise TypeError(f"{type(self.model).__name__} cannot score a new history")
        return self.model.history_scores(history_items)

    def reasons(
        self, item: int, history_items: np.ndarray, user: int | None = None
    ) -> list[Reason]:
        """Why ``item`` scores for ``history_items`` (a neighbour model needs the fitted
        ``user``): the ``top`` largest contributions."""
        return self.model.explain(item, history_items, user)[: self.top]

"""The holdout that mirrors the hidden test: per user, the last items of the history and
items drawn at random from before them (docs/architecture.md §4).

One function makes every such split: the validation split of ``data_processing`` and the
ranker's extra training splits (:mod:`movie_rec.second_stage.holdouts`), which hold out
again from the validation split's own training history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


def holdout_split(
    interactions: pd.DataFrame,
    n_last: int,
    n_random: int,
    min_history: int,
    seed: int,
    users: np.ndarray | None = None,
    max_users: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out, per eligible user, the last ``n_last`` items and ``n_random`` earlier ones.

    ``interactions`` must be ordered by user then time. A user is eligible with at least
    ``min_history`` interactions (and, when ``users`` is given, when listed there); answers
    are held out for every eligible user, or for a ``seed``-ed sample of ``max_users`` of
    them. The random items are drawn with ``seed`` from everything before the last
    ``n_last``.

    Returns:
        The kept interactions (same columns and order) and the answers
        (``user_idx, item_idx, kind`` with kind ``last``/``random``).
    """
    if n_last < 0 or n_random < 0 or n_last + n_random == 0:
        raise ValueError(f"a split needs n_last, n_random >= 0 and not both 0, got "
                         f"{n_last}, {n_random}")  # fmt: skip
    if min_history <= n_last + n_random:
        raise ValueError(
            f"split.min_history ({min_history}) must exceed n_last + n_random "
            f"({n_last + n_random}) so every eligible user keeps some history"
        )
    user_ids = interactions["user_idx"].to_numpy()
    length = interactions.groupby("user_idx")["user_idx"].transform("size").to_numpy()
    position = interactions.groupby("user_idx").cumcount().to_numpy()
    eligible = length >= min_history
    if users is not None:
        eligible &= np.isin(user_ids, users)
    if max_users is not None:
        eligible &= np.isin(user_ids, sample_users(user_ids[eligible], max_users, seed))
    is_last = eligible & (position >= length - n_last)

    rng = np.random.default_rng(seed)
    draw = pd.Series(np.where(eligible & ~is_last, rng.random(len(user_ids)), np.inf))
    draw_rank = draw.groupby(user_ids).rank(method="first").to_numpy()
    is_random = eligible & ~is_last & (draw_rank <= n_random)

    held_out = is_last | is_random
    answers = interactions.loc[held_out, ["user_idx", "item_idx"]].assign(
        kind=np.where(is_last[held_out], "last", "random")
    )
    kept = interactions.loc[~held_out].reset_index(drop=True)
    return kept, answers.reset_index(drop=True)


def sample_users(users: np.ndarray, max_users: int | None, seed: int) -> np.ndarray:
    """The distinct ``users`` (sorted), or a ``seed``-ed sample of ``max_users`` of them."""
    distinct = np.unique(users)
    if max_users is None or len(distinct) <= max_users:
        return distinct
    return np.sort(np.random.default_rng(seed).choice(distinct, max_users, replace=False))


def history_matrix(interactions: pd.DataFrame, shape: tuple[int, int]) -> sp.csr_matrix:
    """Binary users × items CSR matrix (float32) of the interactions, of the given shape."""
    ones = np.ones(len(interactions), dtype=np.float32)
    matrix = sp.csr_matrix(
        (ones, (interactions["user_idx"].to_numpy(), interactions["item_idx"].to_numpy())),
        shape=shape,
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix

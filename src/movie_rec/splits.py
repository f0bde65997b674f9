"""The holdout that mirrors the hidden test: per user, the last items of the history and
items drawn at random from before them (docs/architecture.md §4).

One function makes every such split: the validation split of ``data_processing`` and the
ranker's extra training splits (:mod:`movie_rec.second_stage.holdouts`), which hold out
again from the validation split's own training history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movie_rec.models.config import ParamsConfig


@dataclass(frozen=True)
class SplitSettings(ParamsConfig):
    """``data_processing.split``: per eligible user (at least ``min_history`` interactions;
    at most ``max_users`` of them, a seeded sample, ``None`` = all), the last ``n_last``
    items and ``n_random`` drawn with ``seed`` from before them are held out. Beyond 10,000
    validated users no choice sharpens (tuning scores at most 10,000, each ranker fold model
    trains on at most 6,000) while every later stage pays per user."""

    n_last: int = 4
    n_random: int = 6
    min_history: int = 16
    seed: int = 42
    max_users: int | None = 10_000

    def __post_init__(self) -> None:
        super().__post_init__()
        held_out = self.n_last + self.n_random
        if self.n_last < 0 or self.n_random < 0:
            raise ValueError(f"n_last, n_random = {self.n_last}, {self.n_random}: expected >= 0")
        if held_out == 0:
            raise ValueError("n_last + n_random = 0: at least one answer must be held out")
        if held_out >= self.min_history:
            raise ValueError(f"n_last + n_random = {held_out} must be smaller than "
                             f"min_history = {self.min_history}")  # fmt: skip
        if self.seed < 0 or (self.max_users is not None and self.max_users < 1):
            raise ValueError(f"seed, max_users = {self.seed}, {self.max_users}: expected "
                             "seed >= 0 and max_users >= 1 (or null)")  # fmt: skip


def holdout_split(
    interactions: pd.DataFrame, split: SplitSettings, users: np.ndarray | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out, per eligible user, the last ``n_last`` items and ``n_random`` earlier ones.

    ``interactions`` must be ordered by user then time. A user is eligible with at least
    ``min_history`` interactions (and, when ``users`` is given, when listed there); answers
    are held out for every eligible user, or for a seeded sample of ``max_users`` of them.
    The random items are drawn with ``seed`` from everything before the last ``n_last``.

    Returns:
        The kept interactions (same columns and order) and the answers
        (``user_idx, item_idx, kind`` with kind ``last``/``random``).
    """
    user_ids = interactions["user_idx"].to_numpy()
    length = interactions.groupby("user_idx")["user_idx"].transform("size").to_numpy()
    position = interactions.groupby("user_idx").cumcount().to_numpy()
    eligible = length >= split.min_history
    if users is not None:
        eligible &= np.isin(user_ids, users)
    if split.max_users is not None:
        chosen = sample_users(user_ids[eligible], split.max_users, split.seed)
        eligible &= np.isin(user_ids, chosen)
    is_last = eligible & (position >= length - split.n_last)

    rng = np.random.default_rng(split.seed)
    draw = pd.Series(np.where(eligible & ~is_last, rng.random(len(user_ids)), np.inf))
    draw_rank = draw.groupby(user_ids).rank(method="first").to_numpy()
    is_random = eligible & ~is_last & (draw_rank <= split.n_random)

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

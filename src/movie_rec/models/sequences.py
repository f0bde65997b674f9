"""Per-user item sequences in time order, stored CSR-style (one flat array + offsets)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class UserSequences:
    """``items[offsets[u]:offsets[u + 1]]`` is user ``u``'s history, oldest first."""

    items: np.ndarray
    offsets: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    def of(self, user: int) -> np.ndarray:
        return self.items[self.offsets[user] : self.offsets[user + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def last_items(self) -> np.ndarray:
        """Each user's most recent item, -1 for a user with no history."""
        lengths = self.lengths()
        last = np.full(self.n_users, -1, dtype=np.int64)
        has = lengths > 0
        last[has] = self.items[self.offsets[1:][has] - 1]
        return last


def user_sequences(interactions: pd.DataFrame, n_users: int) -> UserSequences:
    """Group ``user_idx, item_idx, time`` interactions into time-ordered sequences.

    Users absent from ``interactions`` get an empty sequence; ties in time keep the
    frame's order.
    """
    ordered = interactions.sort_values(["user_idx", "time"], kind="stable")
    counts = np.bincount(ordered["user_idx"].to_numpy(), minlength=n_users)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return UserSequences(ordered["item_idx"].to_numpy(dtype=np.int64), offsets)

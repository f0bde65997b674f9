"""The release-year filter: no movie released after the user's last activity year + slack.

Held-out movies are watched around the end of a history, so one released years after a
user's last interaction is rarely among them: the ensemble drops such candidates
(``ensembling.release_filter``) and the ranker reads the same years as features
(``year_minus_last_activity_year``). Years are calendar years (UTC); an unknown year
never excludes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def user_last_activity_year(history: pd.DataFrame, n_users: int | None = None) -> np.ndarray:
    """Calendar year (UTC) of each user's last interaction; NaN for a user without one.

    Indexed by ``user_idx`` (length ``n_users``, default the largest id + 1).
    """
    users = history["user_idx"].to_numpy()
    n_users = int(users.max(initial=-1)) + 1 if n_users is None else n_users
    last_time = np.full(n_users, -np.inf)
    np.maximum.at(last_time, users, history["time"].to_numpy(dtype=np.float64))
    years = np.full(n_users, np.nan)
    has = np.isfinite(last_time)
    years[has] = pd.to_datetime(last_time[has], unit="s", utc=True).year
    return years


def released_after_last_activity(
    pairs: pd.DataFrame, item_year: np.ndarray, user_last_year: np.ndarray, slack: float
) -> np.ndarray:
    """Row mask: the movie came out after the user's last activity year plus ``slack``.

    An unknown year (NaN) on either side never excludes.
    """
    year = item_year[pairs["item_idx"].to_numpy()]
    last = user_last_year[pairs["user_idx"].to_numpy()]
    return released_too_late(year, last, slack)


def released_too_late(
    item_year: np.ndarray, user_last_year: np.ndarray, slack: float
) -> np.ndarray:
    """Where a release year is past the last activity year plus ``slack`` (element-wise,
    broadcasting); an unknown year (NaN) on either side never is."""
    return item_year > user_last_year + slack


def release_year_filter(
    candidates: pd.DataFrame, item_year: np.ndarray, user_last_year: np.ndarray, slack: float
) -> pd.DataFrame:
    """``candidates`` without movies released after the user's last activity year + ``slack``.

    The remaining rows keep their order per user and are ranked 1..n again.
    """
    after = released_after_last_activity(candidates, item_year, user_last_year, slack)
    kept = candidates.loc[~after].sort_values(["user_idx", "rank"], kind="stable")
    kept = kept.reset_index(drop=True)
    kept["rank"] = kept.groupby("user_idx").cumcount().to_numpy(dtype=np.int64) + 1
    return kept


def item_years(item_features: pd.DataFrame, n_items: int) -> np.ndarray:
    """Release year of each movie by ``item_idx`` (float, NaN when unknown)."""
    side = item_features.set_index("item_idx").reindex(np.arange(n_items))
    return pd.to_numeric(side["year"], errors="coerce").to_numpy(dtype=np.float64)

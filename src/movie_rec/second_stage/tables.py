"""Per-movie and per-user tables the ranker's pair features read (:mod:`movie_rec.second_stage.features`):
popularity and its trend, release year and people per movie; history length, activity span
and the years watched per user. Each reads only a history and the side tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from movie_rec.models.release_year import item_years, user_last_activity_year

SECONDS_PER_DAY = 86_400


def _category_codes(values: pd.Series) -> np.ndarray:
    """Stable integer codes of a string column (sorted categories; -1 = missing)."""
    categories = np.sort(values.dropna().astype(str).unique())
    return pd.Categorical(values.astype("string"), categories=categories).codes.astype(np.int32)


def item_table(
    history: pd.DataFrame, item_features: pd.DataFrame, n_items: int, recent_days: float
) -> pd.DataFrame:
    """Per movie: popularity overall and in the last ``recent_days``, trend, year, people."""
    items = history["item_idx"].to_numpy()
    times = history["time"].to_numpy(dtype=np.float64)
    end = times.max(initial=0.0)
    recent = items[times > end - recent_days * SECONDS_PER_DAY]
    pop = np.bincount(items, minlength=n_items).astype(np.float64)
    pop_recent = np.bincount(recent, minlength=n_items).astype(np.float64)
    share = pop / max(len(items), 1)
    share_recent = pop_recent / max(len(recent), 1)
    first_time = np.full(n_items, np.inf)
    np.minimum.at(first_time, items, times)
    side = item_features.set_index("item_idx").reindex(np.arange(n_items))
    return pd.DataFrame(
        {
            "item_pop": pop.astype(np.float32),
            "item_pop_recent": pop_recent.astype(np.float32),
            "item_trend": np.divide(
                share_recent, share, out=np.zeros(n_items), where=share > 0
            ).astype(np.float32),
            "year": item_years(item_features, n_items).astype(np.float32),
            "director": _category_codes(side["director"]),
            "writer": _category_codes(side["writer"]),
            "first_time": first_time,
        }
    )


def user_table(history: pd.DataFrame, item_year: np.ndarray, n_users: int) -> pd.DataFrame:
    """Per user: history length, first/last time, last activity year, mean/latest year watched."""
    users = history["user_idx"].to_numpy()
    times = pd.Series(history["time"].to_numpy(dtype=np.float64)).groupby(users)
    years = pd.Series(item_year[history["item_idx"].to_numpy()]).groupby(users)
    index = np.arange(n_users)

    def per_user(values: pd.Series) -> np.ndarray:
        return values.reindex(index).to_numpy(dtype=np.float64)

    return pd.DataFrame(
        {
            "user_len": np.bincount(users, minlength=n_users).astype(np.float32),
            "first_time": per_user(times.min()),
            "last_time": per_user(times.max()),
            "last_activity_year": user_last_activity_year(history, n_users),
            "mean_year": per_user(years.mean()),
            "latest_year": per_user(years.max()),
        }
    )

"""The submission: every user's 10 movies in raw ids, completed and validated.

``complete_with_popular`` fills short lists, ``build_submission`` maps dense ids back to raw
ones and ``validate_submission`` refuses anything the competition would reject.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movie_rec.evaluation import top_k_unseen
from movie_rec.fusion import SUBMISSION_K, number_ranks
from movie_rec.models.baselines import item_popularity

logger = logging.getLogger(__name__)

SUBMISSION_COLUMNS = ["user", "item"]


class SubmissionError(ValueError):
    """The submission breaks the competition's format; nothing is written."""


def complete_with_popular(
    recommendations: pd.DataFrame,
    seen: sp.csr_matrix,
    k: int = SUBMISSION_K,
    allowed: Callable[[np.ndarray], np.ndarray] | None = None,
) -> pd.DataFrame:
    """Give every user of ``seen`` exactly ``k`` items, filling short lists by popularity.

    Popularity counts the interactions in ``seen``; filled items are unseen, not already
    recommended, and score 0 (below every fused score). ``allowed(users)`` (a
    ``len(users) × n_items`` boolean mask, e.g. the release-year filter) restricts the
    fill; a list it leaves short is completed from every unseen movie.
    """
    if allowed is not None:
        recommendations = _fill_from_popular(recommendations, seen, k, allowed)
    return _fill_from_popular(recommendations, seen, k, None)


def _fill_from_popular(
    recommendations: pd.DataFrame,
    seen: sp.csr_matrix,
    k: int,
    allowed: Callable[[np.ndarray], np.ndarray] | None,
) -> pd.DataFrame:
    seen = sp.csr_matrix(seen)
    n_users, n_items = seen.shape
    kept = recommendations.sort_values(["user_idx", "rank"]).groupby("user_idx").head(k)
    have = np.bincount(kept["user_idx"].to_numpy(dtype=np.int64), minlength=n_users)
    short = np.flatnonzero(have < k)
    if len(short) == 0:
        return number_ranks(kept, score=kept["score"].to_numpy(dtype=np.float64))
    taken = sp.csr_matrix(
        (np.ones(len(kept), dtype=np.float32), (kept["user_idx"], kept["item_idx"])),
        shape=(n_users, n_items),
    )
    popularity = item_popularity(seen).astype(np.float32)

    def score(users: np.ndarray) -> np.ndarray:
        scores = np.broadcast_to(popularity, (len(users), n_items))
        return scores if allowed is None else np.where(allowed(users), scores, -np.inf)

    fill = top_k_unseen(score, seen + taken, k, users=short)
    fill = fill[fill["rank"] <= k - have[fill["user_idx"].to_numpy()]]
    completed = pd.concat(
        [kept.assign(filled=False), fill.assign(score=0.0, filled=True)], ignore_index=True
    ).sort_values(["user_idx", "filled", "rank"], kind="stable")
    logger.info("ensemble: filled %d short lists from popularity", len(short))
    return number_ranks(completed, score=completed["score"].to_numpy(dtype=np.float64))


def build_submission(
    recommendations: pd.DataFrame, user_map: pd.DataFrame, item_map: pd.DataFrame
) -> pd.DataFrame:
    """``user,item`` in raw ids, users in id order, each user's items best first."""
    ordered = recommendations.sort_values(["user_idx", "rank"])
    users = user_map.set_index("user_idx")["user"]
    items = item_map.set_index("item_idx")["item"]
    return pd.DataFrame(
        {
            "user": users.reindex(ordered["user_idx"]).to_numpy(),
            "item": items.reindex(ordered["item_idx"]).to_numpy(),
        }
    )


def validate_submission(
    submission: pd.DataFrame,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
    seen: sp.csr_matrix,
    k: int = SUBMISSION_K,
) -> None:
    """Raise :class:`SubmissionError` unless ``submission`` is valid for the competition.

    Valid: columns exactly ``user,item``; every user of ``user_map`` and no other; ``k``
    distinct known items per user; none of them seen (``seen`` is users × items on dense
    ids, e.g. ``train_matrix_full``).
    """
    if list(submission.columns) != SUBMISSION_COLUMNS:
        raise SubmissionError(
            f"columns must be {SUBMISSION_COLUMNS}, got {list(submission.columns)}"
        )
    if submission.isna().any().any():
        raise SubmissionError("the submission has missing values")
    user_idx = submission["user"].map(user_map.set_index("user")["user_idx"])
    item_idx = submission["item"].map(item_map.set_index("item")["item_idx"])
    if user_idx.isna().any():
        raise SubmissionError(f"unknown users, e.g. {submission['user'][user_idx.isna()].iloc[0]}")
    if item_idx.isna().any():
        raise SubmissionError(f"unknown items, e.g. {submission['item'][item_idx.isna()].iloc[0]}")
    missing = np.setdiff1d(user_map["user"].to_numpy(), submission["user"].unique())
    if len(missing):
        raise SubmissionError(f"{len(missing)} users have no recommendations, e.g. {missing[0]}")
    duplicated = submission.duplicated(SUBMISSION_COLUMNS)
    if duplicated.any():
        raise SubmissionError(f"{int(duplicated.sum())} repeated (user, item) rows")
    counts = submission.groupby("user").size()
    if (counts != k).any():
        wrong = counts[counts != k]
        raise SubmissionError(
            f"{len(wrong)} users do not have exactly {k} items, e.g. user {wrong.index[0]} "
            f"has {wrong.iloc[0]}"
        )
    is_seen = np.asarray(
        sp.csr_matrix(seen)[user_idx.to_numpy(dtype=np.int64), item_idx.to_numpy(dtype=np.int64)]
    ).ravel()
    if (is_seen != 0).any():
        raise SubmissionError(f"{int((is_seen != 0).sum())} recommended items were already seen")

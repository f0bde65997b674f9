"""The one Recall@K implementation and the one top-k routine every model uses.

Recall@K follows the competition: for each user, |top-K ∩ truth| / min(K, |truth|),
averaged over users. It is reported overall and separately for the held-out ``last``
items (the end of the sequence) and the ``random`` ones (gaps in the middle).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

CANDIDATE_COLUMNS = ["user_idx", "item_idx", "score", "rank"]
ANSWER_KINDS = ("last", "random")

ScoreFn = Callable[[np.ndarray], "torch.Tensor | np.ndarray"]


def empty_candidates() -> pd.DataFrame:
    """A candidate frame with no rows but the right columns and dtypes (what a disabled
    model writes, and what scoring no users gives)."""
    return pd.DataFrame(
        {
            "user_idx": pd.Series(dtype="int64"),
            "item_idx": pd.Series(dtype="int64"),
            "score": pd.Series(dtype="float32"),
            "rank": pd.Series(dtype="int64"),
        }
    )


def per_user_recall(
    recommendations: pd.DataFrame, answers: pd.DataFrame, k: int = 10
) -> pd.DataFrame:
    """Recall@k of every user that has held-out answers.

    Args:
        recommendations: ``user_idx, item_idx, rank`` (rank 1 is best); only ranks
            ``<= k`` count. Users without recommendations score 0.
        answers: ``user_idx, item_idx, kind`` with kind in ``last``/``random``.
        k: list length.

    Returns:
        One row per answered user: ``user_idx``, ``recall`` and ``recall_last`` /
        ``recall_random`` (NaN where the user has no answer of that kind).
    """
    top = recommendations.loc[recommendations["rank"] <= k, ["user_idx", "item_idx"]]
    truth = answers[["user_idx", "item_idx", "kind"]].drop_duplicates(["user_idx", "item_idx"])
    truth = truth.assign(
        hit=truth.merge(top.assign(_hit=1), on=["user_idx", "item_idx"], how="left")["_hit"]
        .fillna(0)
        .to_numpy()
    )
    overall = truth.groupby("user_idx")["hit"].agg(["sum", "size"])
    result = pd.DataFrame(
        {"recall": overall["sum"] / np.minimum(k, overall["size"])}, index=overall.index
    )
    by_kind = truth.groupby(["user_idx", "kind"])["hit"].agg(["sum", "size"])
    kind_recall = (by_kind["sum"] / np.minimum(k, by_kind["size"])).unstack("kind")
    for kind in ANSWER_KINDS:
        column = kind_recall[kind] if kind in kind_recall else np.nan
        result[f"recall_{kind}"] = column
    return result.reset_index()


def recall_at_k(
    recommendations: pd.DataFrame, answers: pd.DataFrame, k: int = 10
) -> dict[str, float]:
    """Mean Recall@k overall and per held-out kind, as ``recall@k``, ``recall@k_last``...

    Per-kind figures average over the users that have answers of that kind.
    """
    per_user = per_user_recall(recommendations, answers, k)
    metrics = {f"recall@{k}": float(per_user["recall"].mean()) if len(per_user) else 0.0}
    for kind in ANSWER_KINDS:
        values = per_user[f"recall_{kind}"].dropna()
        metrics[f"recall@{k}_{kind}"] = float(values.mean()) if len(values) else float("nan")
    metrics["users"] = len(per_user)
    return metrics


def _writable_scores(scores: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A float32 tensor we may overwrite: model outputs and read-only views stay intact."""
    if isinstance(scores, torch.Tensor):
        return scores.detach().float().clone()
    return torch.from_numpy(np.array(scores, dtype=np.float32))


def top_k_unseen(
    score_fn: ScoreFn,
    seen: sp.csr_matrix,
    k: int,
    users: np.ndarray | None = None,
    batch_size: int = 1024,
) -> pd.DataFrame:
    """The top ``k`` unseen items per user, scored one user batch at a time.

    ``score_fn(user_batch)`` returns a ``(len(user_batch), n_items)`` array or tensor
    on any device; items the user has in ``seen`` are excluded and the selection runs
    on that device. Only one batch of scores exists at a time, so memory stays at
    ``batch_size × n_items`` whatever the number of users.

    Returns:
        Candidates ``user_idx, item_idx, score, rank`` (rank 1 = best, scores
        descending); a user with fewer than ``k`` unseen items gets fewer rows.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    seen = sp.csr_matrix(seen)
    n_items = seen.shape[1]
    users = np.arange(seen.shape[0]) if users is None else np.asarray(users, dtype=np.int64)
    k_eff = min(k, n_items)
    frames = []
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = _writable_scores(score_fn(batch))
        if scores.shape != (len(batch), n_items):
            raise ValueError(
                f"score_fn returned shape {tuple(scores.shape)}, expected {(len(batch), n_items)}"
            )
        rows = seen[batch]
        row_ids = np.repeat(np.arange(len(batch)), np.diff(rows.indptr))
        scores[
            torch.as_tensor(row_ids, device=scores.device),
            torch.as_tensor(rows.indices, dtype=torch.long, device=scores.device),
        ] = -torch.inf
        top_scores, top_items = torch.topk(scores, k_eff, dim=1)
        top_scores, top_items = top_scores.cpu().numpy(), top_items.cpu().numpy()
        frame = pd.DataFrame(
            {
                "user_idx": np.repeat(batch, k_eff),
                "item_idx": top_items.ravel(),
                "score": top_scores.ravel(),
                "rank": np.tile(np.arange(1, k_eff + 1), len(batch)),
            }
        )
        frames.append(frame[np.isfinite(frame["score"].to_numpy())])
    if not frames:
        return empty_candidates()
    result = pd.concat(frames, ignore_index=True)
    return result.astype({"user_idx": "int64", "item_idx": "int64", "rank": "int64"})


TOP_K_BLOCK_USERS = 4096  # users whose pairs are laid out and sorted at a time


def top_k_pairs(
    users: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's ``k`` best (user, item) pairs by score: their positions in the arrays and
    their ranks (1 = best), users ascending, ties to the smaller item.

    The order of ``np.lexsort((items, -scores, users))`` cut at ``k`` a user, without its
    three global sorts: the pairs are put in (user, item) order (one integer sort, none when
    they already are), laid out one row a user in blocks of :data:`TOP_K_BLOCK_USERS` and
    each row sorted on its own (stable, so equal scores keep the item order).
    """
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    key = users * (int(items.max(initial=0)) + 1) + items
    in_order = (
        np.arange(len(key)) if np.all(key[1:] >= key[:-1]) else np.argsort(key, kind="stable")
    )
    ordered_users, negated = users[in_order], -np.asarray(scores, dtype=np.float64)[in_order]
    starts = np.flatnonzero(np.r_[True, ordered_users[1:] != ordered_users[:-1]])[: len(key)]
    sizes = np.diff(np.r_[starts, len(key)])
    positions, ranks = [], []
    for first in range(0, len(starts), TOP_K_BLOCK_USERS):
        block_starts = starts[first : first + TOP_K_BLOCK_USERS]
        block_sizes = sizes[first : first + TOP_K_BLOCK_USERS]
        row = np.repeat(np.arange(len(block_starts)), block_sizes)
        flat = np.arange(block_starts[0], block_starts[0] + len(row))
        grid = np.full((len(block_starts), int(block_sizes.max())), np.inf)
        grid[row, flat - block_starts[row]] = negated[flat]
        column = np.argsort(grid, axis=1, kind="stable")[:, :k]
        real = column < block_sizes[:, None]
        positions.append((block_starts[:, None] + column)[real])
        ranks.append(np.broadcast_to(np.arange(1, column.shape[1] + 1), column.shape)[real])
    if not positions:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return in_order[np.concatenate(positions)], np.concatenate(ranks).astype(np.int64)


def check_candidates(candidates: pd.DataFrame, seen: sp.csr_matrix, k: int) -> None:
    """Raise ``ValueError`` unless ``candidates`` is a valid model output.

    Valid means: the candidate columns, at most ``k`` rows per user with ranks
    1..n, no duplicate (user, item), no item the user has already seen, and scores
    not increasing with rank.
    """
    missing = set(CANDIDATE_COLUMNS) - set(candidates.columns)
    if missing:
        raise ValueError(f"candidates lack columns {sorted(missing)}")
    if candidates.duplicated(["user_idx", "item_idx"]).any():
        raise ValueError("candidates repeat a (user_idx, item_idx) pair")
    per_user = candidates.groupby("user_idx")["rank"].agg(["size", "min", "max"])
    if (per_user["size"] > k).any():
        raise ValueError(f"some users have more than k={k} candidates")
    if ((per_user["min"] != 1) | (per_user["max"] != per_user["size"])).any():
        raise ValueError("ranks must run 1..n for every user")
    seen_csr = sp.csr_matrix(seen)
    is_seen = np.asarray(
        seen_csr[candidates["user_idx"].to_numpy(), candidates["item_idx"].to_numpy()]
    ).ravel()
    if (is_seen != 0).any():
        raise ValueError(f"{int((is_seen != 0).sum())} candidates are items the user has seen")
    ordered = candidates.sort_values(["user_idx", "rank"])
    score_steps = ordered.groupby("user_idx")["score"].diff().dropna()
    if (score_steps > 1e-6).any():
        raise ValueError("scores must not increase with rank")


def mix_label(mix: tuple[int, int]) -> str:
    """``(2, 8)`` → ``"2/8"``: how a mix of held-out last/random items is named."""
    return f"{mix[0]}/{mix[1]}"


def per_user_mixed_recall(per_user: pd.DataFrame, mix: tuple[int, int], k: int = 10) -> pd.Series:
    """Each user's Recall@k had the test held out ``mix = (n_last, n_random)`` items.

    The hidden test's share of last vs random items is unknown. From one split, a list's
    expected hits under another mix are ``n_last · recall_last + n_random · recall_random``
    (each held-out item of a kind is found at that kind's rate), over ``min(k, n_last +
    n_random)``. A user with answers of one kind only counts that kind's recall for both.

    Args:
        per_user: :func:`per_user_recall`'s frame.
        mix: held-out last and random items.
        k: list length.
    """
    n_last, n_random = mix
    last = per_user["recall_last"].fillna(per_user["recall_random"])
    random = per_user["recall_random"].fillna(per_user["recall_last"])
    return (n_last * last + n_random * random) / min(k, n_last + n_random)


def recall_by_mix(
    recommendations: pd.DataFrame,
    answers: pd.DataFrame,
    mixes: list[tuple[int, int]],
    k: int = 10,
) -> dict[str, float]:
    """Mean Recall@k under each mix (``"2/8"``...), their ``mean`` and the ``worst``."""
    per_user = per_user_recall(recommendations, answers, k)
    result = {
        mix_label(mix): float(per_user_mixed_recall(per_user, mix, k).mean())
        if len(per_user)
        else 0.0
        for mix in mixes
    }
    values = list(result.values())
    result["mean"] = float(np.mean(values)) if values else 0.0
    result["worst"] = float(np.min(values)) if values else 0.0
    return result

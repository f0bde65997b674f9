"""Fusing the candidate lists of several models into one top-10.

Two fusion methods:

* :func:`priority_fusion` — the seed study's hand-made rule: items that at least
  ``min_votes`` models put in their top ``vote_depth`` come first (more votes first, then
  the best rank), then each model's own list in a fixed priority order, until ``k``.
* :func:`weighted_rank` — weighted rank fusion, a weighted form of reciprocal rank
  fusion (Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and
  individual Rank Learning Methods", SIGIR 2009): ``score(u, i) = Σ_m w_m · f(rank_m)``
  over the models whose top ``cutoff`` holds ``i``, with ``f(r) = 1 / (r + offset)`` and
  ranks past ``head`` counted at ``tail_weight`` (the study's best private score counted
  ranks 11–15 at 0.3). :mod:`movie_rec.fusion_tuning` chooses the weights.

Plain pandas/numpy: no Kedro here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from movie_rec.evaluation import empty_candidates, top_k_pairs

logger = logging.getLogger(__name__)

METHODS = ("weighted_rank", "priority")
SUBMISSION_K = 10


def empty_recommendations() -> pd.DataFrame:
    """An empty candidate frame (:func:`movie_rec.evaluation.empty_candidates`) whose fused
    scores are float64."""
    return empty_candidates().astype({"score": "float64"})


def usable_candidates(
    candidates: Mapping[str, pd.DataFrame | None], models: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """The candidate frames of ``models`` that exist and are not empty, in ``models`` order.

    A disabled model writes an empty frame; it is skipped with a log line, so the
    ensemble works with any subset of models.
    """
    usable = {}
    for name in models:
        frame = candidates.get(name)
        if frame is None or frame.empty:
            logger.info("ensemble: model %s has no candidates (disabled or missing), skipped", name)
            continue
        usable[name] = frame
    return usable


def number_ranks(frame: pd.DataFrame, score: np.ndarray | None = None) -> pd.DataFrame:
    """Number each user's rows 1..n in frame order; ``score`` defaults to ``1 / rank``."""
    ranks = frame.groupby("user_idx", sort=False).cumcount().to_numpy() + 1
    return pd.DataFrame(
        {
            "user_idx": frame["user_idx"].to_numpy(dtype=np.int64),
            "item_idx": frame["item_idx"].to_numpy(dtype=np.int64),
            "score": 1.0 / ranks if score is None else score,
            "rank": ranks.astype(np.int64),
        }
    )


def priority_fusion(
    candidates: Mapping[str, pd.DataFrame],
    order: Sequence[str],
    min_votes: int = 2,
    vote_depth: int = 10,
    k: int = SUBMISSION_K,
) -> pd.DataFrame:
    """The study's priority ensemble.

    First the items that at least ``min_votes`` models rank within their top
    ``vote_depth`` (more votes first, then the best rank, then the item id); then the
    lists of the models in ``order`` one after another (models not named in ``order``
    follow in the given mapping order), skipping items already taken, until ``k``.

    Fewer than ``k`` items are ever taken before a list is read, so a list's top ``2k``
    always holds enough untaken items: deeper ranks are dropped up front.
    """
    ordered = [name for name in order if name in candidates]
    ordered += [name for name in candidates if name not in ordered]
    if not ordered:
        return empty_recommendations()
    stacked = pd.concat(
        [
            candidates[name]
            .loc[
                lambda frame: frame["rank"] <= max(2 * k, vote_depth),
                ["user_idx", "item_idx", "rank"],
            ]
            .assign(priority=position)
            for position, name in enumerate(ordered)
        ],
        ignore_index=True,
    )
    voted = stacked[stacked["rank"] <= vote_depth]
    agreement = (
        voted.groupby(["user_idx", "item_idx"])
        .agg(votes=("priority", "nunique"), best_rank=("rank", "min"))
        .reset_index()
    )
    agreed = agreement[agreement["votes"] >= min_votes]
    proposals = pd.concat(
        [
            pd.DataFrame(
                {
                    "user_idx": agreed["user_idx"],
                    "item_idx": agreed["item_idx"],
                    "stage": 0,
                    "first": -agreed["votes"],
                    "second": agreed["best_rank"],
                }
            ),
            pd.DataFrame(
                {
                    "user_idx": stacked["user_idx"],
                    "item_idx": stacked["item_idx"],
                    "stage": 1,
                    "first": stacked["priority"],
                    "second": stacked["rank"],
                }
            ),
        ],
        ignore_index=True,
    )
    chosen = (
        proposals.sort_values(["user_idx", "stage", "first", "second", "item_idx"], kind="stable")
        .drop_duplicates(["user_idx", "item_idx"])
        .groupby("user_idx", sort=False)
        .head(k)
    )
    return number_ranks(chosen)


@dataclass(frozen=True)
class RankFusion:
    """Weights and rank shape of :func:`weighted_rank` (what tuning chooses)."""

    weights: dict[str, float]
    cutoff: int = 15
    head: int = 10
    tail_weight: float = 0.3
    rank_offset: float = 10.0

    def rank_value(self, ranks: np.ndarray) -> np.ndarray:
        """``f(rank)``: ``1/(rank + offset)``, times ``tail_weight`` past ``head``, 0 past ``cutoff``."""
        ranks = np.asarray(ranks, dtype=np.float64)
        value = 1.0 / (ranks + self.rank_offset)
        value = np.where(ranks > self.head, self.tail_weight * value, value)
        return np.where(ranks > self.cutoff, 0.0, value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StackedRanks:
    """Every model's top ranks, stacked once so that many weightings fuse fast.

    Row ``r`` says model ``models[model_id[r]]`` ranks item ``pair_item[pair[r]]`` at
    ``rank[r]`` for user ``pair_user[pair[r]]``; pairs are sorted by user then item.
    """

    models: tuple[str, ...]
    model_id: np.ndarray
    rank: np.ndarray
    pair: np.ndarray
    pair_user: np.ndarray
    pair_item: np.ndarray = field(repr=False)

    def of_users(self, users: np.ndarray) -> StackedRanks:
        """The ranks of ``users`` only (pairs keep their order)."""
        kept_pairs = np.isin(self.pair_user, users)
        renumbered = np.cumsum(kept_pairs) - 1
        rows = kept_pairs[self.pair]
        return StackedRanks(
            models=self.models,
            model_id=self.model_id[rows],
            rank=self.rank[rows],
            pair=renumbered[self.pair[rows]],
            pair_user=self.pair_user[kept_pairs],
            pair_item=self.pair_item[kept_pairs],
        )


def stack_ranks(
    candidates: Mapping[str, pd.DataFrame], max_rank: int, users: np.ndarray | None = None
) -> StackedRanks:
    """Stack the ranks ``<= max_rank`` of every model (of ``users`` only, when given)."""
    frames = []
    for model_id, frame in enumerate(candidates.values()):
        kept = frame.loc[frame["rank"] <= max_rank, ["user_idx", "item_idx", "rank"]]
        if users is not None:
            kept = kept[kept["user_idx"].isin(users)]
        frames.append(kept.assign(model_id=model_id))
    stacked = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["user_idx", "item_idx", "rank", "model_id"], dtype="int64")
    )
    user = stacked["user_idx"].to_numpy(dtype=np.int64)
    item = stacked["item_idx"].to_numpy(dtype=np.int64)
    width = int(item.max()) + 1 if len(item) else 1
    keys, pair = np.unique(user * width + item, return_inverse=True)
    return StackedRanks(
        models=tuple(candidates),
        model_id=stacked["model_id"].to_numpy(dtype=np.int64),
        rank=stacked["rank"].to_numpy(dtype=np.int64),
        pair=pair.ravel(),
        pair_user=keys // width,
        pair_item=keys % width,
    )


def fuse_stacked(stacked: StackedRanks, fusion: RankFusion, k: int = SUBMISSION_K) -> pd.DataFrame:
    """Top ``k`` of ``Σ_m w_m · f(rank_m)`` per user; ties go to the lower item id."""
    weights = np.array([float(fusion.weights.get(name, 0.0)) for name in stacked.models])
    contribution = weights[stacked.model_id] * fusion.rank_value(stacked.rank)
    score = np.bincount(stacked.pair, weights=contribution, minlength=len(stacked.pair_user))
    keep = np.flatnonzero(score > 0)
    top, rank = top_k_pairs(stacked.pair_user[keep], stacked.pair_item[keep], score[keep], k)
    if not len(top):
        return empty_recommendations()
    chosen = keep[top]
    return pd.DataFrame(
        {
            "user_idx": stacked.pair_user[chosen],
            "item_idx": stacked.pair_item[chosen],
            "score": score[chosen],
            "rank": rank,
        }
    )


def weighted_rank(
    candidates: Mapping[str, pd.DataFrame], fusion: RankFusion, k: int = SUBMISSION_K
) -> pd.DataFrame:
    """Weighted rank fusion of the models' candidate lists (see the module docstring)."""
    return fuse_stacked(stack_ranks(candidates, fusion.cutoff), fusion, k)


def timed_fusion(
    method: str,
    candidates: Mapping[str, pd.DataFrame],
    settings: Mapping[str, Any],
    fusion: RankFusion | None,
) -> tuple[pd.DataFrame, float]:
    """Run ``method`` (``priority`` or ``weighted_rank`` with ``fusion``); also its seconds."""
    start = time.perf_counter()
    if method == "priority":
        fused = priority_fusion(
            candidates,
            settings["priority_order"],
            int(settings["min_votes"]),
            int(settings["vote_depth"]),
        )
    elif method == "weighted_rank":
        fused = weighted_rank(candidates, fusion) if fusion else empty_recommendations()
    else:
        raise ValueError(f"ensembling.method must be one of {METHODS}, got {method!r}")
    return fused, time.perf_counter() - start

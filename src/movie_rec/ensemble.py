"""Fusing the candidate lists of several models into one top-10, and the submission.

Two fusion methods (DESIGN.md §6):

* :func:`priority_fusion` — the seed study's hand-made rule: items that at least
  ``min_votes`` models put in their top ``vote_depth`` come first (more votes first, then
  the best rank), then each model's own list in a fixed priority order, until ``k``.
* :func:`weighted_rank` — weighted rank fusion, a weighted form of reciprocal rank
  fusion (Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and
  individual Rank Learning Methods", SIGIR 2009): ``score(u, i) = Σ_m w_m · f(rank_m)``
  over the models whose top ``cutoff`` holds ``i``, with ``f(r) = 1 / (r + offset)`` and
  ranks past ``head`` counted at ``tail_weight`` (the study's best private score counted
  ranks 11–15 at 0.3). :func:`tune_weighted_rank` picks the weights, cutoff, tail weight
  and offset with a seeded Optuna study on validation users, and keeps them only if the
  tuning, cross-validated, beats the best single model.

Plain pandas/numpy/optuna: no Kedro here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
import scipy.sparse as sp

from movie_rec.evaluation import per_user_recall, recall_at_k, top_k_unseen
from movie_rec.models.baselines import item_popularity

logger = logging.getLogger(__name__)

MODELS = (
    "ease",
    "multivae",
    "gru4rec",
    "sasrec",
    "bert4rec",
    "srgnn",
    "s3rec_sasrec",
    "s3rec_bert4rec",
    "lgbm_ranker",
)
METHODS = ("weighted_rank", "priority")
SUBMISSION_K = 10
SUBMISSION_COLUMNS = ["user", "item"]


class SubmissionError(ValueError):
    """The submission breaks the competition's format; nothing is written."""


def empty_recommendations() -> pd.DataFrame:
    """A recommendation frame with no rows and the candidate columns and dtypes."""
    return pd.DataFrame(
        {
            "user_idx": pd.Series(dtype="int64"),
            "item_idx": pd.Series(dtype="int64"),
            "score": pd.Series(dtype="float64"),
            "rank": pd.Series(dtype="int64"),
        }
    )


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


def _ranked(frame: pd.DataFrame, score: np.ndarray | None = None) -> pd.DataFrame:
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
    return _ranked(chosen)


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
    keep = score > 0
    user, item, score = stacked.pair_user[keep], stacked.pair_item[keep], score[keep]
    order = np.lexsort((item, -score, user))
    user, item, score = user[order], item[order], score[order]
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]]) if len(user) else np.array([])
    sizes = np.diff(np.r_[starts, len(user)]).astype(np.int64)
    position = np.arange(len(user)) - np.repeat(starts, sizes).astype(np.int64)
    top = position < k
    if not top.any():
        return empty_recommendations()
    return pd.DataFrame(
        {
            "user_idx": user[top],
            "item_idx": item[top],
            "score": score[top],
            "rank": position[top] + 1,
        }
    )


def weighted_rank(
    candidates: Mapping[str, pd.DataFrame], fusion: RankFusion, k: int = SUBMISSION_K
) -> pd.DataFrame:
    """Weighted rank fusion of the models' candidate lists (see the module docstring)."""
    return fuse_stacked(stack_ranks(candidates, fusion.cutoff), fusion, k)


def split_users(valid_answers: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random half of the validated users for tuning; the other half judges."""
    users = np.unique(valid_answers["user_idx"].to_numpy(dtype=np.int64))
    shuffled = np.random.default_rng(seed).permutation(users)
    half = len(shuffled) // 2
    return np.sort(shuffled[:half]), np.sort(shuffled[half:])


def _single_model_trial(models: Sequence[str], chosen: str, head: int) -> dict[str, Any]:
    return {
        **{f"w_{name}": float(name == chosen) for name in models},
        "cutoff": head,
        "tail_weight": 0.0,
        "rank_offset": 10.0,
    }


def tune_weighted_rank(
    candidates: Mapping[str, pd.DataFrame],
    answers: pd.DataFrame,
    settings: Mapping[str, Any],
    seed: int,
    k: int = SUBMISSION_K,
) -> tuple[RankFusion, pd.DataFrame]:
    """Choose weights, cutoff, tail weight and offset maximising Recall@k on ``answers``.

    A seeded TPE study (:func:`search_fusion`). With many weights and few users a tuned
    fusion can beat the best single model on the users it was tuned on by noise alone,
    so the tuning itself is cross-validated first: :func:`out_of_fold_fusions` tunes on
    all folds of the users but one and fuses the one left out. The tuned fusion is kept
    only if, out of fold, it beats the best single model (also chosen out of fold) by at
    least ``min_gain_se`` standard errors of the paired per-user difference
    (:func:`significant_gain`); otherwise the best single model's own list is the fusion.
    ``settings``: ``head``, ``max_cutoff``, ``n_trials`` (per study), ``timeout``
    (seconds, shared by the ``guard_folds + 1`` studies), ``min_gain_se`` (default 1),
    ``guard_folds`` (default 5).

    Returns:
        The chosen fusion and the trial history of the study on all ``answers``
        (number, value, params...).
    """
    folds = int(settings.get("guard_folds", 5))
    timeout = settings.get("timeout")
    search = {**settings, "timeout": timeout / (folds + 1) if timeout else None}
    stacked = stack_ranks(candidates, int(settings["max_cutoff"]), np.unique(answers["user_idx"]))
    tuned, single, history = search_fusion(stacked, answers, search, seed, k)
    logger.info(
        "ensemble: %d weighted_rank trials, best tuning Recall@%d %.4f",
        len(history),
        k,
        history["value"].max(),
    )
    if tuned == single:
        return single, history
    fused, alone = out_of_fold_fusions(stacked, answers, search, seed, folds, k)
    if not significant_gain(fused, alone, answers, float(settings.get("min_gain_se", 1.0)), k):
        logger.info(
            "ensemble: out of fold, the tuned fusion's gain over the best single model is "
            "within noise; using %s's own list",
            max(single.weights, key=single.weights.get),
        )
        return single, history
    return tuned, history


def search_fusion(
    stacked: StackedRanks,
    answers: pd.DataFrame,
    settings: Mapping[str, Any],
    seed: int,
    k: int = SUBMISSION_K,
) -> tuple[RankFusion, RankFusion, pd.DataFrame]:
    """The seeded Optuna search of :func:`tune_weighted_rank` on ``answers``' users.

    Every single model alone and the study's hand-set weighting (equal weights, ranks
    11–15 at 0.3) are tried first, so the tuned fusion is never worse on these users than
    the best single model.

    Returns:
        The best fusion, the best single model's fusion and the trial history.
    """
    models = stacked.models
    head, max_cutoff = int(settings["head"]), int(settings["max_cutoff"])

    def fusion_of(params: Mapping[str, Any]) -> RankFusion:
        return RankFusion(
            weights={name: params[f"w_{name}"] for name in models},
            cutoff=params["cutoff"],
            head=head,
            tail_weight=params["tail_weight"],
            rank_offset=params["rank_offset"],
        )

    def objective(trial: optuna.Trial) -> float:
        params = {f"w_{name}": trial.suggest_float(f"w_{name}", 0.0, 1.0) for name in models}
        params["cutoff"] = trial.suggest_int("cutoff", head, max_cutoff)
        params["tail_weight"] = trial.suggest_float("tail_weight", 0.0, 1.0)
        params["rank_offset"] = trial.suggest_float("rank_offset", 1.0, 100.0, log=True)
        return recall_at_k(fuse_stacked(stacked, fusion_of(params), k), answers, k)[f"recall@{k}"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    for name in models:
        study.enqueue_trial(_single_model_trial(models, name, head))
    study.enqueue_trial(
        {**{f"w_{name}": 1.0 for name in models}, "cutoff": min(15, max_cutoff)}
        | {"tail_weight": 0.3, "rank_offset": 10.0}
    )
    study.optimize(objective, n_trials=int(settings["n_trials"]), timeout=settings["timeout"])
    history = study.trials_dataframe(attrs=("number", "value", "params"))
    history.columns = [column.removeprefix("params_") for column in history.columns]
    single_trials = [t for t in study.trials[: len(models)] if t.value is not None]
    best_single = max(single_trials, key=lambda t: t.value)
    return fusion_of(study.best_params), fusion_of(best_single.params), history


def guard_folds(users: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """``users`` cut into ``folds`` seeded random folds of (nearly) equal size."""
    shuffled = np.random.default_rng([seed, folds]).permutation(np.unique(users))
    return [np.sort(fold) for fold in np.array_split(shuffled, folds)]


def out_of_fold_fusions(
    stacked: StackedRanks,
    answers: pd.DataFrame,
    settings: Mapping[str, Any],
    seed: int,
    folds: int,
    k: int = SUBMISSION_K,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every user's list from a search that never saw them: the tuned fusion and the best
    single model of :func:`search_fusion` on the other folds' users (:func:`guard_folds`)."""
    tuned_lists, single_lists = [], []
    for fold in guard_folds(answers["user_idx"].to_numpy(), folds, seed):
        inside = ~answers["user_idx"].isin(fold)
        tuned, single, _ = search_fusion(stacked, answers[inside], settings, seed, k)
        for fusion, lists in ((tuned, tuned_lists), (single, single_lists)):
            fused = fuse_stacked(stacked, fusion, k)
            lists.append(fused[fused["user_idx"].isin(fold)])
    return pd.concat(tuned_lists, ignore_index=True), pd.concat(single_lists, ignore_index=True)


def significant_gain(
    fused: pd.DataFrame,
    baseline: pd.DataFrame,
    answers: pd.DataFrame,
    min_gain_se: float,
    k: int = SUBMISSION_K,
) -> bool:
    """Whether ``fused`` beats ``baseline`` by ``min_gain_se`` standard errors of the mean
    per-user difference in Recall@k (a paired comparison over the same users)."""
    ours = per_user_recall(fused, answers, k).set_index("user_idx")["recall"]
    theirs = per_user_recall(baseline, answers, k).set_index("user_idx")["recall"]
    difference = (ours - theirs.reindex(ours.index)).to_numpy()
    if len(difference) < 2:
        return bool(difference.mean() > 0) if len(difference) else False
    standard_error = difference.std(ddof=1) / np.sqrt(len(difference))
    return bool(difference.mean() > min_gain_se * standard_error)


def evaluate_on_halves(
    recommendations: pd.DataFrame,
    valid_answers: pd.DataFrame,
    tune_users: np.ndarray,
    holdout_users: np.ndarray,
    k: int = SUBMISSION_K,
) -> dict[str, dict[str, float]]:
    """Recall@k of ``recommendations`` on all validated users, the tuning and the holdout half."""
    halves = {
        "all": valid_answers,
        "tune": valid_answers[valid_answers["user_idx"].isin(tune_users)],
        "holdout": valid_answers[valid_answers["user_idx"].isin(holdout_users)],
    }
    return {half: recall_at_k(recommendations, answers, k) for half, answers in halves.items()}


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


def complete_with_popular(
    recommendations: pd.DataFrame,
    seen: sp.csr_matrix,
    k: int = SUBMISSION_K,
) -> pd.DataFrame:
    """Give every user of ``seen`` exactly ``k`` items, filling short lists by popularity.

    Popularity counts the interactions in ``seen``; filled items are unseen, not already
    recommended, and score 0 (below every fused score).
    """
    seen = sp.csr_matrix(seen)
    n_users, n_items = seen.shape
    kept = recommendations.sort_values(["user_idx", "rank"]).groupby("user_idx").head(k)
    have = np.bincount(kept["user_idx"].to_numpy(dtype=np.int64), minlength=n_users)
    short = np.flatnonzero(have < k)
    if len(short) == 0:
        return _ranked(kept, score=kept["score"].to_numpy(dtype=np.float64))
    taken = sp.csr_matrix(
        (np.ones(len(kept), dtype=np.float32), (kept["user_idx"], kept["item_idx"])),
        shape=(n_users, n_items),
    )
    popularity = item_popularity(seen).astype(np.float32)
    fill = top_k_unseen(
        lambda users: np.broadcast_to(popularity, (len(users), n_items)),
        seen + taken,
        k,
        users=short,
    )
    fill = fill[fill["rank"] <= k - have[fill["user_idx"].to_numpy()]]
    completed = pd.concat(
        [kept.assign(filled=False), fill.assign(score=0.0, filled=True)], ignore_index=True
    ).sort_values(["user_idx", "filled", "rank"], kind="stable")
    logger.info("ensemble: filled %d short lists from popularity", len(short))
    return _ranked(completed, score=completed["score"].to_numpy(dtype=np.float64))


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

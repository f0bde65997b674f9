"""Choosing the weights of :func:`movie_rec.fusion.weighted_rank`, judged out of fold.

A seeded Optuna study tunes the fusion on half the validated users; the tuning itself is
cross-validated over folds of those users, and the tuned fusion is kept only if, out of
fold, it beats the reference list beyond noise (:func:`tune_weighted_rank`). The reference
is the best first-stage list, or the second stage's (the ranker's, itself scored out of
fold) where it beats that one beyond noise (:func:`reference_model`): each step up from the
simplest list has to earn its place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd

from movie_rec.evaluation import per_user_mixed_recall, per_user_recall, recall_at_k
from movie_rec.fusion import SUBMISSION_K, RankFusion, StackedRanks, fuse_stacked, stack_ranks

logger = logging.getLogger(__name__)


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


def fusion_of_trial(models: Sequence[str], params: Mapping[str, Any], head: int) -> RankFusion:
    """The fusion a trial's parameters (``w_<model>``, cutoff, tail weight, offset) describe."""
    return RankFusion(
        weights={name: params[f"w_{name}"] for name in models},
        cutoff=params["cutoff"],
        head=head,
        tail_weight=params["tail_weight"],
        rank_offset=params["rank_offset"],
    )


def single_model_fusion(models: Sequence[str], chosen: str, head: int) -> RankFusion:
    """The fusion that is ``chosen``'s own list: its weight 1, every other model's 0."""
    return fusion_of_trial(models, _single_model_trial(models, chosen, head), head)


def reference_model(
    candidates: Mapping[str, pd.DataFrame],
    answers: pd.DataFrame,
    second_stage: Sequence[str],
    min_gain_se: float,
    mixes: Sequence[Sequence[int]] | None = None,
    k: int = SUBMISSION_K,
) -> str:
    """The list a fusion must beat: the best first-stage list on ``answers``' users, unless a
    second-stage list (``second_stage``, scored out of fold) beats it by ``min_gain_se``
    standard errors of the paired per-user difference (:func:`significant_gain`); then the
    best such second-stage list."""

    def objective(name: str) -> float:
        return float(objective_per_user(candidates[name], answers, mixes, k).mean())

    first = [name for name in candidates if name not in second_stage]
    second = [name for name in candidates if name in second_stage]
    if not first:
        return max(second, key=objective)
    best = max(first, key=objective)
    if second:
        challenger = max(second, key=objective)
        if significant_gain(candidates[challenger], candidates[best], answers, min_gain_se, k,
                            mixes):  # fmt: skip
            return challenger
    return best


def tune_weighted_rank(
    candidates: Mapping[str, pd.DataFrame],
    answers: pd.DataFrame,
    settings: Mapping[str, Any],
    seed: int,
    k: int = SUBMISSION_K,
    second_stage: Sequence[str] = (),
) -> tuple[RankFusion, pd.DataFrame]:
    """Choose weights, cutoff, tail weight and offset maximising Recall@k on ``answers``.

    A seeded TPE study (:func:`search_fusion`). With many weights and few users a tuned
    fusion can beat every list on the users it was tuned on by noise alone, so the tuning
    itself is cross-validated first: :func:`out_of_fold_fusions` tunes on all folds of the
    users but one and fuses the one left out. The tuned fusion is kept only if, out of
    fold, it beats the reference list (:func:`reference_model`: the best first-stage list,
    or the ``second_stage`` list where that wins beyond noise) by at least ``min_gain_se``
    standard errors of the paired per-user difference (:func:`significant_gain`);
    otherwise the fusion is the reference's own list. ``settings``: ``head``,
    ``max_cutoff``, ``n_trials`` (per study), ``min_gain_se`` (default 1), ``guard_folds``
    (default 5) and ``mixes`` (the last/random mixes whose mean Recall@k is maximised,
    :func:`objective_per_user`; none = plain Recall@k).

    Returns:
        The chosen fusion and the trial history of the study on all ``answers``
        (number, value, params...).
    """
    folds = int(settings.get("guard_folds", 5))
    min_gain_se = float(settings.get("min_gain_se", 1.0))
    mixes = settings.get("mixes")
    stacked = stack_ranks(candidates, int(settings["max_cutoff"]), np.unique(answers["user_idx"]))
    tuned, history = search_fusion(stacked, answers, settings, seed, k)
    logger.info(
        "ensemble: %d weighted_rank trials, best tuning Recall@%d %.4f",
        len(history),
        k,
        history["value"].max(),
    )
    reference = reference_model(candidates, answers, second_stage, min_gain_se, mixes, k)
    own_list = single_model_fusion(stacked.models, reference, int(settings["head"]))
    if tuned == own_list:
        return own_list, history
    fused = out_of_fold_fusions(stacked, answers, settings, seed, folds, k)
    if not significant_gain(fused, candidates[reference], answers, min_gain_se, k, mixes):
        logger.info(
            "ensemble: out of fold, the tuned fusion's gain over %s is within noise; "
            "using %s's own list",
            reference,
            reference,
        )
        return own_list, history
    return tuned, history


def search_fusion(
    stacked: StackedRanks,
    answers: pd.DataFrame,
    settings: Mapping[str, Any],
    seed: int,
    k: int = SUBMISSION_K,
) -> tuple[RankFusion, pd.DataFrame]:
    """The seeded Optuna search of :func:`tune_weighted_rank` on ``answers``' users.

    Every single model alone and the study's hand-set weighting (equal weights, ranks
    11–15 at 0.3) are tried first, so the tuned fusion is never worse on these users than
    the best single model.

    Returns:
        The best fusion and the trial history.
    """
    models = stacked.models
    head, max_cutoff = int(settings["head"]), int(settings["max_cutoff"])
    mixes = settings.get("mixes")

    def objective(trial: optuna.Trial) -> float:
        params = {f"w_{name}": trial.suggest_float(f"w_{name}", 0.0, 1.0) for name in models}
        params["cutoff"] = trial.suggest_int("cutoff", head, max_cutoff)
        params["tail_weight"] = trial.suggest_float("tail_weight", 0.0, 1.0)
        params["rank_offset"] = trial.suggest_float("rank_offset", 1.0, 100.0, log=True)
        fused = fuse_stacked(stacked, fusion_of_trial(models, params, head), k)
        return float(objective_per_user(fused, answers, mixes, k).mean())

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    for name in models:
        study.enqueue_trial(_single_model_trial(models, name, head))
    study.enqueue_trial(
        {**{f"w_{name}": 1.0 for name in models}, "cutoff": min(15, max_cutoff)}
        | {"tail_weight": 0.3, "rank_offset": 10.0}
    )
    study.optimize(objective, n_trials=int(settings["n_trials"]))
    history = study.trials_dataframe(attrs=("number", "value", "params"))
    history.columns = [column.removeprefix("params_") for column in history.columns]
    return fusion_of_trial(models, study.best_params, head), history


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
) -> pd.DataFrame:
    """Every user's list from a search that never saw them: the fusion :func:`search_fusion`
    tunes on the other folds' users (:func:`guard_folds`)."""
    lists = []
    for fold in guard_folds(answers["user_idx"].to_numpy(), folds, seed):
        inside = ~answers["user_idx"].isin(fold)
        tuned, _ = search_fusion(stacked, answers[inside], settings, seed, k)
        fused = fuse_stacked(stacked, tuned, k)
        lists.append(fused[fused["user_idx"].isin(fold)])
    return pd.concat(lists, ignore_index=True)


def objective_per_user(
    recommendations: pd.DataFrame,
    answers: pd.DataFrame,
    mixes: Sequence[Sequence[int]] | None,
    k: int = SUBMISSION_K,
) -> pd.Series:
    """What the fusion maximises, per user: Recall@k averaged over the last/random
    ``mixes`` (:func:`movie_rec.evaluation.per_user_mixed_recall`), or plain Recall@k."""
    per_user = per_user_recall(recommendations, answers, k).set_index("user_idx")
    if not mixes:
        return per_user["recall"]
    by_mix = [per_user_mixed_recall(per_user, (int(a), int(b)), k) for a, b in mixes]
    return pd.concat(by_mix, axis=1).mean(axis=1)


def significant_gain(
    fused: pd.DataFrame,
    baseline: pd.DataFrame,
    answers: pd.DataFrame,
    min_gain_se: float,
    k: int = SUBMISSION_K,
    mixes: Sequence[Sequence[int]] | None = None,
) -> bool:
    """Whether ``fused`` beats ``baseline`` by ``min_gain_se`` standard errors of the mean
    per-user difference of the objective (a paired comparison over the same users)."""
    ours = objective_per_user(fused, answers, mixes, k)
    theirs = objective_per_user(baseline, answers, mixes, k)
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

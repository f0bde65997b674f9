"""Choosing the weights of :func:`movie_rec.fusion.weighted_rank`, judged out of fold.

A seeded Optuna study tunes the fusion on every validated user; the tuning itself is
cross-fitted over folds of those users, so that the fusion, the ranker (itself scored out of
fold) and the best first-stage list are compared on the same users, each scored without
having been tuned on them (:func:`tune_weighted_rank`). The simplest of them is the
submission unless another wins beyond the noise (:func:`choose_list`): each step up from the
simplest list has to earn its place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd

from movie_rec.evaluation import per_user_mixed_recall, per_user_recall, recall_at_k
from movie_rec.fusion import SUBMISSION_K, RankFusion, StackedRanks, fuse_stacked, stack_ranks
from movie_rec.records import FinalChoice, Halves, Recall
from movie_rec.splits import sample_users

logger = logging.getLogger(__name__)


def split_users(valid_answers: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random half of the validated users and the other half (``holdout``): every
    list is also reported on the holdout half, the same users whatever the models."""
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


def fusion_of_trial(models: Sequence[str], values: Mapping[str, Any], head: int) -> RankFusion:
    """The fusion a trial's values (``w_<model>``, cutoff, tail weight, offset) describe."""
    return RankFusion(
        weights={name: values[f"w_{name}"] for name in models},
        cutoff=values["cutoff"],
        head=head,
        tail_weight=values["tail_weight"],
        rank_offset=values["rank_offset"],
    )


def single_model_fusion(models: Sequence[str], chosen: str, head: int) -> RankFusion:
    """The fusion that is ``chosen``'s own list: its weight 1, every other model's 0."""
    return fusion_of_trial(models, _single_model_trial(models, chosen, head), head)


FUSION = "weighted_rank"  # the tuned fusion's name among the contenders of the final choice


def paired_difference(ours: pd.Series, theirs: pd.Series) -> tuple[float, float]:
    """Mean and standard error of the per-user difference ``ours - theirs`` (same users)."""
    difference = (ours - theirs.reindex(ours.index)).to_numpy()
    if len(difference) < 2:
        return float(difference.mean()) if len(difference) else 0.0, float("inf")
    return float(difference.mean()), float(difference.std(ddof=1) / np.sqrt(len(difference)))


def choose_list(
    contenders: Mapping[str, pd.DataFrame],
    answers: pd.DataFrame,
    min_gain_se: float,
    mixes: Sequence[Sequence[int]] | None = None,
    k: int = SUBMISSION_K,
) -> FinalChoice:
    """The simplest contender the best-scoring one does not beat by ``min_gain_se`` standard
    errors of their paired per-user difference.

    ``contenders`` come simplest first, each scored on users it was not tuned on. A more
    complex list has to win beyond the noise to be chosen, and a list that loses to another
    out of fold is never chosen over it: the best list qualifies itself, and every
    contender simpler than it is tried first.
    """
    per_user = {name: objective_per_user(frame, answers, mixes, k)
                for name, frame in contenders.items()}  # fmt: skip
    scores = {name: float(values.mean()) for name, values in per_user.items()}
    best = max(scores, key=lambda name: scores[name])
    chosen = best
    for name in contenders:
        gain, error = paired_difference(per_user[best], per_user[name])
        if name == best or gain <= min_gain_se * error:
            chosen = name
            break
    others = [name for name in contenders if name != chosen]
    runner_up = max(others, key=lambda name: scores[name]) if others else None
    gain, error = (
        paired_difference(per_user[chosen], per_user[runner_up]) if runner_up else (0.0, 0.0)
    )
    return FinalChoice(chosen, scores, runner_up, gain, error)


@dataclass(frozen=True)
class TunedFusion:
    """The outcome of :func:`tune_weighted_rank`.

    Attributes:
        fusion: the submission's fusion: the tuned weights where the fusion was chosen,
            otherwise the chosen list's own (its weight 1, every other 0).
        history: the trial history of the search on every validated user.
        choice: which list was chosen and by how much (:class:`FinalChoice`).
        cross_fitted: the fusion's lists, each user's from a search that never saw them.
    """

    fusion: RankFusion
    history: pd.DataFrame
    choice: FinalChoice
    cross_fitted: pd.DataFrame


def best_first_stage(
    candidates: Mapping[str, pd.DataFrame],
    answers: pd.DataFrame,
    second_stage: Sequence[str],
    mixes: Sequence[Sequence[int]] | None = None,
    k: int = SUBMISSION_K,
) -> str | None:
    """The first-stage list (not in ``second_stage``) with the best mean objective."""
    first = [name for name in candidates if name not in second_stage]
    if not first:
        return None
    return max(first, key=lambda name: objective_per_user(candidates[name], answers, mixes,
                                                          k).mean())  # fmt: skip


def tune_weighted_rank(
    candidates: Mapping[str, pd.DataFrame],
    answers: pd.DataFrame,
    settings: Mapping[str, Any],
    seed: int,
    k: int = SUBMISSION_K,
    second_stage: Sequence[str] = (),
) -> TunedFusion:
    """Tune the fusion's weights, cutoff, tail weight and offset on every validated user,
    then choose the submission's list among the best first stage, the ``second_stage``
    lists and the fusion (:func:`choose_list`).

    A seeded TPE study (:func:`search_fusion`) tunes on all of ``answers``' users. With many
    weights and few users a tuned fusion beats every list on the users it was tuned on by
    noise alone, so it is judged cross-fitted: :func:`out_of_fold_fusions` tunes on all
    ``guard_folds`` folds of the users but one and fuses the one left out, and the
    second-stage lists are already out of fold. ``settings``: ``head``, ``max_cutoff``,
    ``n_trials`` (per study), ``min_gain_se`` (default 1), ``guard_folds`` (default 5),
    ``max_users`` (each study tunes on a seeded sample of at most this many users; default
    all) and ``mixes`` (the last/random mixes whose mean Recall@k is maximised,
    :func:`objective_per_user`; none = plain Recall@k).
    """
    folds = int(settings.get("guard_folds", 5))
    min_gain_se = float(settings.get("min_gain_se", 1.0))
    mixes = settings.get("mixes")
    stacked = stack_ranks(candidates, int(settings["max_cutoff"]), np.unique(answers["user_idx"]))
    tuned, history = search_fusion(stacked, answers, settings, seed, k)
    logger.info("ensemble: %d weighted_rank trials, best tuning Recall@%d %.4f", len(history),
                k, history["value"].max())  # fmt: skip
    cross_fitted = out_of_fold_fusions(stacked, answers, settings, seed, folds, k)
    first = best_first_stage(candidates, answers, second_stage, mixes, k)
    contenders = {name: candidates[name] for name in [first, *second_stage] if name in candidates}
    choice = choose_list({**contenders, FUSION: cross_fitted}, answers, min_gain_se, mixes, k)
    logger.info(
        "ensemble: the submission is %s's list: out of fold %.4f, runner-up %s %.4f "
        "(paired gain %+.4f ± %.4f); contenders %s",
        choice.chosen, choice.scores[choice.chosen], choice.runner_up,
        choice.scores.get(choice.runner_up, float("nan")), choice.gain, choice.standard_error,
        {name: round(value, 4) for name, value in choice.scores.items()},
    )  # fmt: skip
    if choice.chosen != FUSION:
        tuned = single_model_fusion(stacked.models, choice.chosen, int(settings["head"]))
    return TunedFusion(tuned, history, choice, cross_fitted)


def search_fusion(
    stacked: StackedRanks,
    answers: pd.DataFrame,
    settings: Mapping[str, Any],
    seed: int,
    k: int = SUBMISSION_K,
) -> tuple[RankFusion, pd.DataFrame]:
    """The seeded Optuna search of :func:`tune_weighted_rank` on ``answers``' users, or on a
    seeded sample of ``settings["max_users"]`` of them: a dozen weights need a few thousand
    users, and each trial fuses every user it tunes on.

    Every single model alone and the study's hand-set weighting (equal weights, ranks
    11–15 at 0.3) are tried first, so the tuned fusion is never worse on these users than
    the best single model.

    Returns:
        The best fusion and the trial history.
    """
    models = stacked.models
    head, max_cutoff = int(settings["head"]), int(settings["max_cutoff"])
    mixes = settings.get("mixes")
    users = sample_users(answers["user_idx"].to_numpy(), settings.get("max_users"), seed)
    answers = answers[answers["user_idx"].isin(users)]
    stacked = stacked.of_users(users)

    def objective(trial: optuna.Trial) -> float:
        values = {f"w_{name}": trial.suggest_float(f"w_{name}", 0.0, 1.0) for name in models}
        values["cutoff"] = trial.suggest_int("cutoff", head, max_cutoff)
        values["tail_weight"] = trial.suggest_float("tail_weight", 0.0, 1.0)
        values["rank_offset"] = trial.suggest_float("rank_offset", 1.0, 100.0, log=True)
        fused = fuse_stacked(stacked, fusion_of_trial(models, values, head), k)
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


def evaluate_on_halves(
    recommendations: pd.DataFrame,
    valid_answers: pd.DataFrame,
    tune_users: np.ndarray,
    holdout_users: np.ndarray,
) -> Halves:
    """Recall@10 of ``recommendations`` on all validated users, the tuning and the holdout half."""
    halves = {
        "all": valid_answers,
        "tune": valid_answers[valid_answers["user_idx"].isin(tune_users)],
        "holdout": valid_answers[valid_answers["user_idx"].isin(holdout_users)],
    }
    return Halves(
        **{
            half: Recall.from_json(recall_at_k(recommendations, answers, SUBMISSION_K))
            for half, answers in halves.items()
        }
    )

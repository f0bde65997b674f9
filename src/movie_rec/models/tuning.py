"""Optuna helpers shared by every tuned model: resumable studies, search spaces, trial history.

A study lives in a SQLite file (``<storage_dir>/optuna_<file>.db``) under a name that
includes a fingerprint of the training data and of the search space, so a rerun on the
same data resumes the same study while new data or a new search space starts a fresh one.

Semantics of ``n_trials``: the TOTAL number of finished trials (complete or pruned) the
study should hold. A rerun only runs the missing ones, so a complete study runs nothing
new; raise ``n_trials`` to extend it. ``timeout`` (seconds, per run) stops a run early;
a trial already running finishes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import scipy.sparse as sp

from movie_rec.evaluation import ScoreFn, recall_at_k, top_k_unseen

logger = logging.getLogger(__name__)

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
TRIAL_COLUMNS = ["number", "state", "value", "duration_seconds"]


def study_fingerprint(matrix: sp.spmatrix, search_space: dict[str, Any]) -> str:
    """A short hash of the data's shape and size and of the search space."""
    payload = json.dumps(
        {"shape": list(matrix.shape), "nnz": int(matrix.nnz), "space": search_space},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha1(payload.encode()).hexdigest()[:10]


def storage_url(storage_dir: str | Path, file_stem: str) -> str:
    """``sqlite:///<storage_dir>/optuna_<file_stem>.db``, creating the folder."""
    folder = Path(storage_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / f'optuna_{file_stem}.db').resolve()}"


def finished_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def open_study(
    name: str,
    storage: str,
    seed: int,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Create or resume a maximising study with a seeded TPE sampler.

    The sampler's seed is offset by the trials already stored, so a resumed study does not
    replay the random start-up suggestions of its first run.
    """
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        pruner=pruner or optuna.pruners.NopPruner(),
    )
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    return study


def suggest(trial: optuna.Trial, search_space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Draw one value per entry of a search space written in parameters.

    Each entry is ``{type: float|int, low, high, log}`` or ``{type: categorical, choices}``.
    """
    values: dict[str, Any] = {}
    for name, spec in search_space.items():
        kind = spec["type"]
        if kind == "float":
            values[name] = trial.suggest_float(
                name, spec["low"], spec["high"], log=spec.get("log", False)
            )
        elif kind == "int":
            values[name] = trial.suggest_int(
                name, spec["low"], spec["high"], log=spec.get("log", False)
            )
        elif kind == "categorical":
            values[name] = trial.suggest_categorical(name, list(spec["choices"]))
        else:
            raise ValueError(f"search space entry {name!r} has unknown type {kind!r}")
    return values


def within_space(values: dict[str, Any], search_space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The entries of ``values`` that the search space can hold (to enqueue as a trial)."""
    kept = {}
    for name, spec in search_space.items():
        if name not in values:
            continue
        value = values[name]
        inside = (
            value in spec["choices"]
            if spec["type"] == "categorical"
            else spec["low"] <= value <= spec["high"]
        )
        if inside:
            kept[name] = value
    return kept


def run_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    timeout: float | None,
    first_trial: dict[str, Any] | None = None,
) -> optuna.Study:
    """Run the trials ``study`` still lacks to reach ``n_trials`` finished ones.

    ``first_trial`` (the fixed defaults) is enqueued when the study is new, so even a run
    cut short by ``timeout`` after one trial has tried the defaults.
    """
    missing = n_trials - finished_trials(study)
    if missing <= 0:
        logger.info("study %s already holds %d finished trials", study.study_name, n_trials)
        return study
    if first_trial and not study.trials:
        study.enqueue_trial(first_trial, skip_if_exists=True)
    logger.info(
        "study %s: running up to %d trials (timeout %s s)", study.study_name, missing, timeout
    )
    study.optimize(objective, n_trials=missing, timeout=timeout, gc_after_trial=True)
    return study


def best_hyperparameters(study: optuna.Study, fixed: dict[str, Any]) -> dict[str, Any]:
    """The fixed hyperparameters overridden by the best complete trial's values (if any)."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return dict(fixed)
    return {**fixed, **study.best_params}


def trials_frame(study: optuna.Study | None) -> pd.DataFrame:
    """Trial history: number, state, value, duration_seconds and one ``param_<name>`` column each."""
    if study is None or not study.trials:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in TRIAL_COLUMNS}).astype(
            {"number": "int64", "state": "object"}
        )
    rows = [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "duration_seconds": t.duration.total_seconds() if t.duration else np.nan,
            **{f"param_{k}": v for k, v in t.params.items()},
        }
        for t in study.trials
    ]
    return pd.DataFrame(rows)


def evaluation_users(
    answers: pd.DataFrame, max_users: int | None, seed: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """The users validation is scored on (all answered users, or a seeded sample of them)."""
    users = np.sort(answers["user_idx"].unique())
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
        answers = answers[answers["user_idx"].isin(users)]
    return users, answers


def validation_recall(
    score_fn: ScoreFn,
    seen: sp.csr_matrix,
    answers: pd.DataFrame,
    users: np.ndarray,
    batch_size: int = 1024,
) -> float:
    """Recall@10 of ``score_fn`` on ``answers`` (only ``users`` are scored)."""
    candidates = top_k_unseen(score_fn, seen, 10, users=users, batch_size=batch_size)
    return recall_at_k(candidates, answers, k=10)["recall@10"]


def pruning_evaluator(
    trial: optuna.Trial, evaluate: Callable[..., float], deadline: float | None = None
) -> Callable[..., float]:
    """Wrap an epoch evaluator so it reports each epoch's score and prunes poor trials.

    Use it as the ``evaluate`` of the shared training loop: ``optuna.TrialPruned`` raised
    here ends training and marks the trial pruned. Past ``deadline`` (a
    ``time.monotonic()`` value) the trial is pruned at its next epoch, so a run's timeout
    also bounds a trial that would otherwise train for hours.
    """
    epoch = 0

    def report(*args: Any) -> float:
        nonlocal epoch
        epoch += 1
        score = evaluate(*args)
        trial.report(score, step=epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} with recall@10 {score:.4f}")
        if deadline is not None and time.monotonic() > deadline:
            raise optuna.TrialPruned(f"tuning timeout reached at epoch {epoch}")
        return score

    return report

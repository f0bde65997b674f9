"""Optuna helpers shared by every tuned model: resumable studies, search spaces, trial history.

A study lives in a SQLite file (``<storage_dir>/optuna_<file>.db``) under a name that
includes :func:`study_fingerprint`: a hash of everything a trial's value depends on (the
training matrix's content, the validation answers, every setting the objective reads, the
search space). A rerun on the same inputs resumes the same study; a new split seed, new data
or a new setting starts a fresh one, so a study never returns hyperparameters tuned on
something else.

Budgets are in trials. ``n_trials`` is the TOTAL number of finished trials (complete or
pruned) the study should hold: :func:`run_study` runs exactly the missing ones, so a
complete study runs nothing new; raise ``n_trials`` to extend it. Each trial's TPE sampler
is seeded with ``seed + trial number``, so a study run in several parts draws what one
uninterrupted run draws. ``timeout`` (seconds per run, ``None`` = none) is only a safety
cap: no trial starts after it (but a run always makes one), the trial running at that
moment finishes, and a run it cuts short logs a WARNING and says so in its
:class:`StudyRun`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
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


def _update_with_array(digest: Any, values: np.ndarray) -> None:
    values = np.ascontiguousarray(values)
    digest.update(f"{values.dtype.str}{values.shape}".encode())
    digest.update(values.tobytes())


def study_fingerprint(
    matrix: sp.spmatrix,
    answers: pd.DataFrame,
    settings: dict[str, Any],
    search_space: dict[str, Any],
) -> str:
    """A short hash of everything a trial's value depends on.

    Args:
        matrix: the training matrix; its content (shape, indptr, indices, data) is hashed,
            so a different split of the same data gives a different fingerprint.
        answers: the validation answers the objective scores (``user_idx``, ``item_idx``,
            ``kind``), in any row order.
        settings: every parameter the objective reads (fixed hyperparameters, training
            settings, seed, device, ...), JSON-serialisable (other values go in as ``str``).
        search_space: the search space.
    """
    digest = hashlib.sha256()
    canonical = sp.csr_matrix(matrix, copy=True)
    canonical.sum_duplicates()  # also sorts the column indices of each row
    digest.update(str(canonical.shape).encode())
    for part in (canonical.indptr, canonical.indices, canonical.data):
        _update_with_array(digest, part)
    ordered = answers[["user_idx", "item_idx", "kind"]].sort_values(
        ["user_idx", "item_idx", "kind"], kind="stable"
    )
    _update_with_array(digest, ordered["user_idx"].to_numpy(dtype=np.int64))
    _update_with_array(digest, ordered["item_idx"].to_numpy(dtype=np.int64))
    digest.update("\n".join(ordered["kind"].astype(str)).encode())
    described = {"settings": settings, "space": search_space}
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def storage_url(storage_dir: str | Path, file_stem: str) -> str:
    """``sqlite:///<storage_dir>/optuna_<file_stem>.db``, creating the folder."""
    folder = Path(storage_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / f'optuna_{file_stem}.db').resolve()}"


def finished_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


SEED_ATTR = "sampler_seed"


def open_study(
    name: str,
    storage: str,
    seed: int,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Create or resume a maximising study; ``seed`` seeds the TPE sampler of every trial.

    The seed is recorded in the study (user attribute ``sampler_seed``), where
    :func:`run_study` reads it.
    """
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        pruner=pruner or optuna.pruners.NopPruner(),
    )
    study.set_user_attr(SEED_ATTR, int(seed))
    study.sampler = trial_sampler(int(seed), len(study.trials))
    return study


def trial_sampler(seed: int, trial_number: int) -> optuna.samplers.TPESampler:
    """The TPE sampler of trial ``trial_number``: seeded with ``seed + trial_number``.

    A fresh sampler per trial makes each suggestion a function of the seed and the study's
    history alone, so resuming a study replays no start-up draw and skips none.
    """
    return optuna.samplers.TPESampler(seed=seed + trial_number)


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


@dataclass(frozen=True)
class StudyRun:
    """One call of :func:`run_study`: the study, the trials it ran, whether it was cut short.

    ``cut_short`` is True when ``timeout`` stopped the run before the study held
    ``n_trials`` finished trials; its best hyperparameters then come from fewer trials than
    asked for.
    """

    study: optuna.Study
    trials_run: int
    cut_short: bool


def run_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    timeout: float | None,
    first_trial: dict[str, Any] | None = None,
) -> StudyRun:
    """Run exactly the trials ``study`` still lacks to hold ``n_trials`` finished ones.

    Trials run one at a time, trial ``n`` sampled by :func:`trial_sampler` with the seed
    :func:`open_study` recorded. ``timeout`` (seconds) is a safety cap checked between
    trials: once passed, no further trial starts (a run always makes one) and the run is
    reported as cut short (a WARNING). ``first_trial`` (the fixed defaults) is enqueued when the study is new, so
    even a run cut short after one trial has tried the defaults.
    """
    missing = n_trials - finished_trials(study)
    if missing <= 0:
        logger.info("study %s already holds %d finished trials", study.study_name, n_trials)
        return StudyRun(study, trials_run=0, cut_short=False)
    if first_trial and not study.trials:
        study.enqueue_trial(first_trial, skip_if_exists=True)
    seed = int(study.user_attrs[SEED_ATTR])
    logger.info("study %s: running %d trials", study.study_name, missing)
    started = time.monotonic()
    trials_run = 0
    for _ in range(missing):
        if trials_run and timeout is not None and time.monotonic() - started >= timeout:
            break
        study.sampler = trial_sampler(seed, len(study.trials))
        study.optimize(objective, n_trials=1, gc_after_trial=True)
        trials_run += 1
    cut_short = trials_run < missing
    if cut_short:
        logger.warning(
            "study %s: timeout of %s s reached after %d of %d trials; its best "
            "hyperparameters come from %d finished trials instead of %d",
            study.study_name,
            timeout,
            trials_run,
            missing,
            finished_trials(study),
            n_trials,
        )
    return StudyRun(study, trials_run=trials_run, cut_short=cut_short)


def best_hyperparameters(study: optuna.Study, fixed: dict[str, Any]) -> dict[str, Any]:
    """The fixed hyperparameters overridden by the best complete trial's values (if any)."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return dict(fixed)
    return {**fixed, **study.best_params}


def trials_frame(study: optuna.Study | None) -> pd.DataFrame:
    """Trial history: number, state, value, duration_seconds and one ``params_<name>`` column each."""
    if study is None or not study.trials:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in TRIAL_COLUMNS}).astype(
            {"number": "int64", "state": "object"}
        )
    frame = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params"))
    seconds = frame.pop("duration").dt.total_seconds()
    return frame.assign(duration_seconds=seconds)


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


def pruning_evaluator(trial: optuna.Trial, evaluate: Callable[..., float]) -> Callable[..., float]:
    """Wrap a validation evaluator so it reports each score and prunes poor trials.

    Use it as the ``evaluate`` of the shared training loop: the n-th evaluation is reported
    as step n, and ``optuna.TrialPruned`` raised here ends training and marks the trial
    pruned.
    """
    evaluations = 0

    def report(*args: Any) -> float:
        nonlocal evaluations
        evaluations += 1
        score = evaluate(*args)
        trial.report(score, step=evaluations)
        if trial.should_prune():
            raise optuna.TrialPruned(
                f"pruned at evaluation {evaluations} with recall@10 {score:.4f}"
            )
        return score

    return report

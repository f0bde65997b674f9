"""Optuna helpers shared by every tuned model: resumable studies, search spaces, trial history.

A study lives in a storage (:func:`movie_rec.tuning.storage.study_storage`): by
default the SQLite file
``<storage_dir>/optuna_<file>.db``; ``tuning.storage`` names one that several processes,
on one machine or many, share (an RDB URL such as ``postgresql://…``, or a journal file on
shared storage). Its name includes :func:`study_fingerprint`: a hash of everything a trial's
value depends on (the training matrix's content, the validation answers, every setting the
objective reads, the search space). A rerun on the same inputs resumes the same study, and
every process tuning the same inputs joins it; a new split seed, new data or a new setting
starts a fresh one, so a study never returns hyperparameters tuned on something else.

Budgets are in trials. ``n_trials`` is the TOTAL number of finished trials (complete or
pruned) the study should hold: :func:`run_study` runs the missing ones, never more, however
many processes run it at once; a complete study runs nothing new; raise ``n_trials`` to
extend it. Trial 0 tries the fixed defaults; every other draw of trial ``k`` comes from a TPE
sampler seeded with ``seed + k`` (:class:`TrialSampler`), so a study run in several parts
draws what one uninterrupted run draws. ``timeout`` (seconds per run, ``None`` = none) is
only a safety cap: no trial starts after it (but a run always makes one), the trial running
at that moment finishes, and a run it cuts short logs a WARNING and says so in its
:class:`StudyRun`. ``patience`` stops a study early once it has converged
(:func:`converged`): past TPE's start-up, the last ``patience`` finished trials raised the
best value by at most ``min_gain`` (relative); like the budget, a rule on trials, not seconds.

**A study shared by several processes** holds exactly ``n_trials`` finished trials: a trial
runs only while fewer than ``n_trials`` trials numbered before it are finished, running or
waiting (:func:`run_study`); the storage numbers trials one at a time, so no more can ever
finish (Optuna's ``MaxTrialsCallback`` only stops a process after its own trial, so the
trials running elsewhere at that moment overshoot the budget). A process that finds every
place taken waits for the trials running elsewhere and returns when the study is complete,
so every process reads the same best trial. What stays deterministic: a trial samples from
the seeded random start-up while fewer than ``n_startup_trials`` trials (TPE: 10) are
finished, so its parameters are a function of the seed and its number alone; a study of at
most 10 trials therefore holds the same trials, parameters and (on the CPU, unpruned)
values however many processes ran it. A pruner's verdict reads the intermediate values the
other trials had reported by then, which depends on timing. Later TPE draws depend on which trials had finished when they
started, so beyond the start-up a parallel study may try other parameters, and find another
best, than a one-process study.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
import scipy.sparse as sp

from movie_rec.evaluation import ScoreFn, recall_at_k, top_k_unseen
from movie_rec.splits import sample_users

logger = logging.getLogger(__name__)

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
PLACES = (*FINISHED, optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
WAIT_SECONDS = 2  # how often a process whose places are all taken looks at the study again
WAIT_LOG_SECONDS = 600  # how often it says what it waits for
TRIAL_COLUMNS = ["number", "state", "value", "duration_seconds"]
TPE_STARTUP = 10  # TPE's random start-up trials (Optuna's n_startup_trials default)


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


def finished_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


SEED_ATTR = "sampler_seed"


def open_study(
    name: str,
    storage: str | optuna.storages.BaseStorage,
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
    study.sampler = TrialSampler(int(seed))
    return study


class TrialSampler(optuna.samplers.BaseSampler):
    """TPE, one sampler per trial: trial ``k`` draws with a TPE sampler seeded ``seed + k``,
    and trial 0 takes the ``first`` values (the fixed defaults) for the names it holds.

    A sampler per trial makes each draw a function of the seed, the trial's number and the
    trials finished when it samples, whichever process runs it: resuming a study replays
    no start-up draw and skips none, and processes sharing a study cannot shift each
    other's draws.
    """

    def __init__(self, seed: int, first: dict[str, Any] | None = None) -> None:
        self.seed = seed
        self.first = dict(first or {})
        self._samplers: dict[int, optuna.samplers.TPESampler] = {}

    def _tpe(self, trial: optuna.trial.FrozenTrial) -> optuna.samplers.TPESampler:
        if trial.number not in self._samplers:
            self._samplers[trial.number] = optuna.samplers.TPESampler(seed=self.seed + trial.number)
        return self._samplers[trial.number]

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, optuna.distributions.BaseDistribution]:
        return self._tpe(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        search_space: dict[str, optuna.distributions.BaseDistribution],
    ) -> dict[str, Any]:
        return self._tpe(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        if trial.number == 0 and param_name in self.first:
            return self.first[param_name]
        return self._tpe(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._tpe(trial).before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Any,
    ) -> None:
        self._tpe(trial).after_trial(study, trial, state, values)
        self._samplers.pop(trial.number, None)


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
    asked for. ``converged`` is True when the stop rule (:func:`converged`) ended it.
    """

    study: optuna.Study
    trials_run: int
    cut_short: bool
    converged: bool = False


class PlaceTaken(Exception):
    """A trial found the study's ``n_trials`` places taken by trials numbered before it."""


def places_taken(study: optuna.Study, before: int | None = None) -> int:
    """Trials (numbered below ``before``) that hold a place in the budget: finished, running
    or waiting."""
    trials = study.get_trials(deepcopy=False, states=PLACES)
    return sum(1 for trial in trials if before is None or trial.number < before)


def run_trial(
    study: optuna.Study, objective: Callable[[optuna.Trial], float], n_trials: int
) -> bool:
    """Run one trial if it gets a place among the first ``n_trials``; whether it did.

    The storage numbers trials one at a time, so the trials numbered before this one are
    fixed when it starts. Without a place it runs nothing and is marked FAIL (two processes
    asked for the last place at once).
    """
    taken = False

    def claimed(trial: optuna.Trial) -> float:
        nonlocal taken
        ahead = places_taken(study, before=trial.number)
        if ahead >= n_trials:
            taken = True
            raise PlaceTaken(f"{ahead} trials before trial {trial.number} hold the {n_trials}")
        return objective(trial)

    study.optimize(claimed, n_trials=1, gc_after_trial=True, catch=(PlaceTaken,))
    return not taken


def wait_for_others(study: optuna.Study, waited: int) -> None:
    """Sleep while the trials running elsewhere hold every place, failing those whose
    process died (RDB heartbeat); say so once every ``WAIT_LOG_SECONDS``."""
    if waited % WAIT_LOG_SECONDS == 0:
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        logger.log(
            logging.INFO if waited == 0 else logging.WARNING,
            "study %s: every place is taken; waiting %.0f s so far for trials %s, running "
            "elsewhere (a journal storage keeps the trial of a dead process RUNNING: fail it "
            "with study.tell(number, state=TrialState.FAIL))",
            study.study_name,
            waited,
            [trial.number for trial in running],
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    time.sleep(WAIT_SECONDS)


def converged(study: optuna.Study, patience: int | None, min_gain: float) -> bool:
    """Whether the last ``patience`` finished trials raised the best value by at most
    ``min_gain`` of it; never before TPE's start-up and ``patience`` more trials have
    finished (``patience`` None: never)."""
    if patience is None:
        return False
    trials = sorted(study.get_trials(deepcopy=False, states=FINISHED), key=lambda t: t.number)
    if len(trials) < TPE_STARTUP + patience:
        return False
    values = [t.value if t.value is not None else -np.inf for t in trials]
    before, best = max(values[:-patience]), max(values)
    return best - before <= min_gain * abs(before)


def run_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    timeout: float | None,
    first_trial: dict[str, Any] | None = None,
    patience: int | None = None,
    min_gain: float = 0.0,
) -> StudyRun:
    """Run trials until ``study`` holds ``n_trials`` finished ones, alongside any other
    process working on it, and never more.

    Trials run one at a time, each in its place (:func:`run_trial`), drawn by a
    :class:`TrialSampler` with the seed :func:`open_study` recorded and ``first_trial`` (the
    fixed defaults, for trial 0, so even a run cut short after one trial has tried them).
    While trials running elsewhere hold every remaining place, the run waits for them
    (:func:`wait_for_others`) and takes the place of any that fails. ``timeout`` (seconds) is
    a safety cap checked before each trial: once passed, no further trial starts (a run
    always makes one) and the run is reported as cut short (a WARNING). Once the study has
    :func:`converged`, no further trial starts either.
    """
    study.sampler = TrialSampler(int(study.user_attrs[SEED_ATTR]), first_trial)
    missing = n_trials - finished_trials(study)
    if missing <= 0:
        logger.info("study %s already holds %d finished trials", study.study_name, n_trials)
        return StudyRun(study, trials_run=0, cut_short=False)
    logger.info("study %s: %d trials to run", study.study_name, missing)
    started = time.monotonic()
    trials_run, waited = 0, 0
    while finished_trials(study) < n_trials:
        if converged(study, patience, min_gain):
            logger.info(
                "study %s converged after %d finished trials: the last %d raised the best "
                "value by at most %.1f %%", study.study_name, finished_trials(study),
                patience, 100 * min_gain,
            )  # fmt: skip
            return StudyRun(study, trials_run=trials_run, cut_short=False, converged=True)
        if places_taken(study) >= n_trials:
            wait_for_others(study, waited)
            waited += WAIT_SECONDS
            continue
        if trials_run and timeout is not None and time.monotonic() - started >= timeout:
            logger.warning(
                "study %s: timeout of %s s reached after %d trials; its best "
                "hyperparameters come from %d finished trials instead of %d",
                study.study_name,
                timeout,
                trials_run,
                finished_trials(study),
                n_trials,
            )
            return StudyRun(study, trials_run=trials_run, cut_short=True)
        trials_run += run_trial(study, objective, n_trials)
    return StudyRun(study, trials_run=trials_run, cut_short=False)


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
    users = sample_users(answers["user_idx"].to_numpy(), max_users, seed)
    if max_users is not None and len(users) == max_users:
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

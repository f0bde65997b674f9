import logging
import time
from dataclasses import replace

import numpy as np
import optuna
import pandas as pd
import pytest
import scipy.sparse as sp

from movie_rec.pipelines.data_processing.nodes import interaction_matrix, split_validation
from movie_rec.tuning.storage import storage_url
from movie_rec.tuning.studies import (
    TPE_STARTUP,
    best_hyperparameters,
    converged,
    evaluation_users,
    finished_trials,
    open_study,
    pruning_evaluator,
    run_study,
    study_fingerprint,
    suggest,
    trials_frame,
    validation_recall,
    within_space,
)
from tests.conftest import TEST_SPLIT

SPACE = {
    "x": {"type": "float", "low": -2.0, "high": 2.0},
    "n": {"type": "int", "low": 1, "high": 64, "log": True},
    "kind": {"type": "categorical", "choices": ["a", "b"]},
}


def _objective(trial: optuna.Trial) -> float:
    values = suggest(trial, SPACE)
    return -((values["x"] - 1) ** 2) - values["n"] / 64 + (values["kind"] == "b")


def test_suggest_draws_inside_the_space():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    values = suggest(trial, SPACE)
    assert -2 <= values["x"] <= 2 and 1 <= values["n"] <= 64 and values["kind"] in {"a", "b"}
    with pytest.raises(ValueError, match="unknown type"):
        suggest(study.ask(), {"y": {"type": "normal"}})


def test_within_space_drops_values_the_space_cannot_hold():
    values = {"x": 0.5, "n": 0, "kind": "c", "other": 1}
    assert within_space(values, SPACE) == {"x": 0.5}


def test_study_resumes_and_n_trials_is_the_total(tmp_path):
    storage = storage_url(tmp_path / "studies", "test")
    assert (tmp_path / "studies").is_dir()
    run = run_study(open_study("s", storage, seed=1), _objective, 2, None, {"x": 1.0, "n": 1})
    assert (run.trials_run, run.cut_short, finished_trials(run.study)) == (2, False, 2)
    assert run.study.trials[0].params["x"] == 1.0  # the enqueued defaults came first
    first_values = [t.value for t in run.study.trials]

    resumed = run_study(open_study("s", storage, seed=1), _objective, 3, None)
    assert resumed.trials_run == 1 and finished_trials(resumed.study) == 3
    assert [t.value for t in resumed.study.trials[:2]] == first_values

    again = run_study(open_study("s", storage, seed=1), _objective, 3, None)
    assert (again.trials_run, again.cut_short, finished_trials(again.study)) == (0, False, 3)
    frame = trials_frame(again.study)
    assert frame["number"].tolist() == [0, 1, 2]
    assert {"state", "value", "params_x", "params_n", "params_kind"} <= set(frame.columns)


def test_a_study_run_in_parts_draws_what_one_run_draws(tmp_path):
    whole = run_study(open_study("s", storage_url(tmp_path / "whole", "t"), 5), _objective, 5, None)
    storage = storage_url(tmp_path / "parts", "t")
    for total in (2, 5):
        parts = run_study(open_study("s", storage, 5), _objective, total, None)
    assert [t.params for t in parts.study.trials] == [t.params for t in whole.study.trials]


def _plateau(trial: optuna.Trial) -> float:
    """Trial 3 is the best there will ever be; every later trial scores lower."""
    suggest(trial, SPACE)
    return 1.0 if trial.number == 3 else 0.5 - trial.number / 1000


def test_a_study_stops_once_patience_trials_raised_the_best_by_at_most_min_gain(tmp_path):
    storage = storage_url(tmp_path / "s", "t")
    run = run_study(open_study("p", storage, 1), _plateau, 40, None, patience=4, min_gain=0.01)
    assert run.converged and not run.cut_short
    assert finished_trials(run.study) == TPE_STARTUP + 4  # never before the start-up is over
    assert run.study.best_trial.number == 3

    patient = run_study(open_study("q", storage, 1), _plateau, 20, None, patience=None)
    assert not patient.converged and finished_trials(patient.study) == 20


def test_converged_counts_only_gains_above_min_gain(tmp_path):
    def rising(trial: optuna.Trial) -> float:
        suggest(trial, SPACE)
        return 1.0 + 0.05 * trial.number  # every trial beats the best by 5 %, or less later

    storage = storage_url(tmp_path / "r", "t")
    study = run_study(open_study("r", storage, 1), rising, 16, None).study
    assert not converged(study, patience=3, min_gain=0.01)  # 1.6 -> 1.75 in the last three: +9 %
    assert converged(study, patience=3, min_gain=0.2)
    assert not converged(study, patience=7, min_gain=1.0)  # 16 < 10 start-up + 7


def _slow_objective(trial: optuna.Trial) -> float:
    time.sleep(0.02)
    return _objective(trial)


def test_budgets_are_trials_and_a_timeout_only_caps_them(tmp_path, caplog):
    runs = [
        run_study(open_study("s", storage_url(tmp_path / name, "t"), 2), _slow_objective, 4, None)
        for name in ("a", "b")
    ]
    assert [(r.trials_run, r.cut_short) for r in runs] == [(4, False), (4, False)]
    assert [t.params for t in runs[0].study.trials] == [t.params for t in runs[1].study.trials]
    assert runs[0].study.best_value == runs[1].study.best_value

    with caplog.at_level(logging.WARNING, logger="movie_rec.tuning.studies"):
        capped = run_study(
            open_study("s", storage_url(tmp_path / "c", "t"), 2), _slow_objective, 4, 0.001
        )
    assert capped.cut_short and capped.trials_run == 1  # the cap never interrupts a trial
    assert finished_trials(capped.study) == 1
    assert any("timeout" in r.message and r.levelno == logging.WARNING for r in caplog.records)
    finished = run_study(
        open_study("s", storage_url(tmp_path / "c", "t"), 2), _slow_objective, 4, None
    )
    assert (finished.trials_run, finished.cut_short) == (3, False)
    assert [t.params for t in finished.study.trials] == [t.params for t in runs[0].study.trials]


def test_pruning_evaluator_reports_epochs_and_prunes_a_poor_trial():
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    good = study.ask()
    report = pruning_evaluator(good, lambda: 0.5)
    assert [report(), report()] == [0.5, 0.5]
    study.tell(good, 0.5)
    poor = study.ask()
    with pytest.raises(optuna.TrialPruned):
        pruning_evaluator(poor, lambda: 0.1)()
    assert poor.storage.get_trial(poor._trial_id).intermediate_values == {1: 0.1}


def test_empty_history_has_the_columns():
    frame = trials_frame(None)
    assert list(frame.columns) == ["number", "state", "value", "duration_seconds"] and frame.empty


ANSWERS = pd.DataFrame({"user_idx": [0, 1, 2], "item_idx": [3, 2, 1], "kind": ["last"] * 3})
SETTINGS = {"hyperparameters": {"lambda": 400.0}, "seed": 42}


def test_fingerprint_is_a_function_of_the_inputs():
    matrix = sp.csr_matrix(np.eye(4, dtype=np.float32))
    base = study_fingerprint(matrix, ANSWERS, SETTINGS, SPACE)
    shuffled = ANSWERS.iloc[::-1].reset_index(drop=True)
    same = study_fingerprint(matrix.copy(), shuffled, {"seed": 42, **SETTINGS}, dict(SPACE))
    assert base == same


def test_fingerprint_changes_with_any_input_a_trial_depends_on():
    matrix = sp.csr_matrix(np.eye(4, dtype=np.float32))
    base = study_fingerprint(matrix, ANSWERS, SETTINGS, SPACE)
    same_shape_and_nnz = sp.csr_matrix(np.eye(4, dtype=np.float32)[[1, 0, 2, 3]])
    other_kind = ANSWERS.assign(kind=["last", "last", "random"])
    variants = [
        study_fingerprint(same_shape_and_nnz, ANSWERS, SETTINGS, SPACE),
        study_fingerprint(matrix, ANSWERS.assign(item_idx=[3, 2, 0]), SETTINGS, SPACE),
        study_fingerprint(matrix, other_kind, SETTINGS, SPACE),
        study_fingerprint(matrix, ANSWERS, {**SETTINGS, "seed": 7}, SPACE),
        study_fingerprint(matrix, ANSWERS, SETTINGS, {"x": SPACE["x"]}),
    ]
    assert base not in variants and len(set(variants)) == len(variants)


def test_another_split_seed_gives_another_study(tiny_data):
    """Same shape and nnz (the old fingerprint's inputs), different held-out items."""
    maps = tiny_data["user_map"], tiny_data["item_map"]
    fingerprints = set()
    for seed in (7, 8):
        split = replace(TEST_SPLIT, seed=seed)
        train, answers = split_validation(tiny_data["interactions"], split)
        matrix = interaction_matrix(train, *maps)
        assert matrix.nnz == tiny_data["train_matrix_valid"].nnz
        fingerprints.add(study_fingerprint(matrix, answers, SETTINGS, SPACE))
    assert len(fingerprints) == 2


def test_validation_recall_on_a_sample_of_users():
    answers = pd.DataFrame(
        {"user_idx": [0, 0, 1, 2], "item_idx": [1, 2, 0, 3], "kind": ["last"] * 4}
    )
    users, sampled = evaluation_users(answers, max_users=2, seed=0)
    assert len(users) == 2 and set(sampled["user_idx"]) == set(users)
    assert evaluation_users(answers, None, 0)[0].tolist() == [0, 1, 2]
    truth = sp.csr_matrix((np.ones(4), (answers["user_idx"], answers["item_idx"])), shape=(3, 12))
    seen = sp.csr_matrix((3, 12), dtype=np.float32)
    perfect = validation_recall(lambda u: truth[u].toarray(), seen, answers, np.arange(3))
    assert perfect == 1.0
    wrong = validation_recall(lambda u: 1 - truth[u].toarray(), seen, answers, np.arange(3))
    assert wrong == 0.0  # 10 other items outrank every held-out one


def test_best_hyperparameters_override_the_fixed_ones(tmp_path):
    study = open_study("s", storage_url(tmp_path, "t"), seed=0)
    assert best_hyperparameters(study, {"x": 5, "lr": 0.1}) == {"x": 5, "lr": 0.1}
    run_study(study, _objective, 3, None)
    best = best_hyperparameters(study, {"x": 5, "lr": 0.1})
    assert best["lr"] == 0.1 and best["x"] == study.best_params["x"]

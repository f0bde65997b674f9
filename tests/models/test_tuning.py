import time

import numpy as np
import optuna
import pandas as pd
import pytest
import scipy.sparse as sp

from movie_rec.models.tuning import (
    best_hyperparameters,
    evaluation_users,
    finished_trials,
    open_study,
    pruning_evaluator,
    run_study,
    storage_url,
    study_fingerprint,
    suggest,
    trials_frame,
    validation_recall,
    within_space,
)

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
    study = run_study(open_study("s", storage, seed=1), _objective, 2, None, {"x": 1.0, "n": 1})
    assert finished_trials(study) == 2
    assert study.trials[0].params["x"] == 1.0  # the enqueued defaults came first
    first_values = [t.value for t in study.trials]

    resumed = run_study(open_study("s", storage, seed=1), _objective, 3, None)
    assert finished_trials(resumed) == 3
    assert [t.value for t in resumed.trials[:2]] == first_values

    again = run_study(open_study("s", storage, seed=1), _objective, 3, None)
    assert finished_trials(again) == 3
    frame = trials_frame(again)
    assert frame["number"].tolist() == [0, 1, 2]
    assert {"state", "value", "param_x", "param_n", "param_kind"} <= set(frame.columns)


def test_same_seed_same_suggestions(tmp_path):
    runs = [
        run_study(open_study("s", storage_url(tmp_path / name, "t"), seed=3), _objective, 4, None)
        for name in ("a", "b")
    ]
    assert [t.params for t in runs[0].trials] == [t.params for t in runs[1].trials]


def test_best_hyperparameters_override_the_fixed_ones(tmp_path):
    study = open_study("s", storage_url(tmp_path, "t"), seed=0)
    assert best_hyperparameters(study, {"x": 5, "lr": 0.1}) == {"x": 5, "lr": 0.1}
    run_study(study, _objective, 3, None)
    best = best_hyperparameters(study, {"x": 5, "lr": 0.1})
    assert best["lr"] == 0.1 and best["x"] == study.best_params["x"]


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


def test_a_trial_past_the_deadline_is_pruned():
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    assert pruning_evaluator(trial, lambda: 0.3, deadline=time.monotonic() + 3600)() == 0.3
    with pytest.raises(optuna.TrialPruned, match="timeout"):
        pruning_evaluator(trial, lambda: 0.3, deadline=time.monotonic() - 1)()


def test_empty_history_has_the_columns():
    frame = trials_frame(None)
    assert list(frame.columns) == ["number", "state", "value", "duration_seconds"] and frame.empty


def test_fingerprint_changes_with_data_and_space():
    matrix = sp.csr_matrix(np.eye(4, dtype=np.float32))
    base = study_fingerprint(matrix, SPACE)
    assert base == study_fingerprint(matrix.copy(), SPACE)
    assert base != study_fingerprint(sp.csr_matrix(np.ones((4, 4))), SPACE)
    assert base != study_fingerprint(matrix, {"x": SPACE["x"]})


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

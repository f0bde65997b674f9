import copy

import pandas as pd

from movie_rec.evaluation import CANDIDATE_COLUMNS, check_candidates
from movie_rec.pipelines.general_rec import nodes

CANDIDATES = {"k": 20}


def test_ease_tuning_runs_two_trials_and_a_rerun_resumes_the_study(
    tiny_data, general_rec_params, runtime
):
    matrix, answers = tiny_data["train_matrix_valid"], tiny_data["valid_answers"]
    best, trials = nodes.tune_ease(matrix, answers, general_rec_params, runtime)
    assert trials["state"].tolist() == ["COMPLETE", "COMPLETE"]
    assert trials["param_lambda"].iloc[0] == general_rec_params["ease"]["hyperparameters"]["lambda"]
    assert best["lambda"] == trials.loc[trials["value"].idxmax(), "param_lambda"]

    rerun, again = nodes.tune_ease(matrix, answers, general_rec_params, runtime)
    pd.testing.assert_frame_equal(
        again.drop(columns="duration_seconds"), trials.drop(columns="duration_seconds")
    )
    assert rerun == best

    more = copy.deepcopy(general_rec_params)
    more["ease"]["tuning"]["n_trials"] = 3
    _, extended = nodes.tune_ease(matrix, answers, more, runtime)
    assert extended["number"].tolist() == [0, 1, 2]
    assert extended["value"].iloc[:2].tolist() == trials["value"].tolist()


def test_multivae_tuning_feeds_the_fits(tiny_data, general_rec_params, runtime):
    matrix, answers = tiny_data["train_matrix_valid"], tiny_data["valid_answers"]
    best, trials = nodes.tune_multivae(matrix, answers, general_rec_params, runtime)
    assert len(trials) == 2 and set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    assert set(general_rec_params["multivae"]["hyperparameters"]) <= set(best)

    candidates, report = nodes.fit_multivae_valid(
        matrix, answers, best, general_rec_params, runtime, CANDIDATES
    )
    check_candidates(candidates, matrix, CANDIDATES["k"])
    assert 1 <= report["epochs"] <= general_rec_params["multivae"]["train"]["max_epochs"]

    full = tiny_data["train_matrix_full"]
    final, artifact, final_report = nodes.fit_multivae_final(
        full, best, report, general_rec_params, runtime, CANDIDATES
    )
    check_candidates(final, full, CANDIDATES["k"])
    assert final_report["epochs"] == report["epochs"]  # trained for the best epoch count
    assert artifact["n_items"] == full.shape[1]
    metrics = nodes.model_report(candidates, answers, report, final_report, trials)
    assert metrics["model"] == "multivae" and metrics["tuning_trials"] == 2
    assert metrics["hyperparameters"]["hidden"] == best["hidden"]


def test_tuning_can_be_skipped(tiny_data, general_rec_params, runtime):
    general_rec_params["ease"]["tuning"]["enabled"] = False
    best, trials = nodes.tune_ease(
        tiny_data["train_matrix_valid"], tiny_data["valid_answers"], general_rec_params, runtime
    )
    assert best == general_rec_params["ease"]["hyperparameters"] and trials.empty


def test_a_disabled_model_writes_empty_outputs(tiny_data, general_rec_params, runtime):
    general_rec_params["ease"]["enabled"] = False
    matrix, answers = tiny_data["train_matrix_valid"], tiny_data["valid_answers"]
    best, trials = nodes.tune_ease(matrix, answers, general_rec_params, runtime)
    candidates, report = nodes.fit_ease_valid(matrix, best, general_rec_params, runtime, CANDIDATES)
    final, artifact, final_report = nodes.fit_ease_final(
        matrix, best, general_rec_params, runtime, CANDIDATES
    )
    for frame in (candidates, final):
        assert frame.empty and list(frame.columns) == CANDIDATE_COLUMNS
        assert frame["score"].dtype == "float32" and frame["item_idx"].dtype == "int64"
    assert trials.empty
    assert artifact == {"model": "ease", "skipped": True}
    metrics = nodes.model_report(candidates, answers, report, final_report, trials)
    assert metrics == {"model": "ease", "skipped": True}

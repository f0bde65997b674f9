"""The ensembling pipeline end to end in a throw-away project with fake model outputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import scipy.sparse as sp

from movie_rec import ensemble
from movie_rec.evaluation import check_candidates
from tests.conftest import run_pipeline

from .fakes import ENABLED, prepare_project

FAST = {"ensembling.tuning.n_trials": 8}


def load_outputs(project):
    data = project / "data"
    return {
        "user_map": pd.read_parquet(data / "03_primary" / "user_map.parquet"),
        "item_map": pd.read_parquet(data / "03_primary" / "item_map.parquet"),
        "seen_valid": sp.load_npz(data / "05_model_input" / "train_matrix_valid.npz"),
        "seen_full": sp.load_npz(data / "05_model_input" / "train_matrix_full.npz"),
        "answers": pd.read_parquet(data / "05_model_input" / "valid_answers.parquet"),
        "submission": pd.read_csv(data / "07_model_output" / "submission.csv"),
        "weights": json.loads((data / "07_model_output" / "ensemble_weights.json").read_text()),
        "metrics": json.loads((data / "08_reporting" / "ensemble_metrics.json").read_text()),
        "fused_valid": pd.read_parquet(
            data / "07_model_output" / "ensemble_recommendations_valid.parquet"
        ),
    }


def test_weighted_rank_run_writes_a_valid_submission_and_judges_on_held_out_users(
    kedro_project,
):
    prepare_project(kedro_project)
    run_pipeline(kedro_project, "ensembling", FAST)
    out = load_outputs(kedro_project)

    raw_users = pd.read_csv(kedro_project / "data" / "01_raw" / "train_ratings.csv")["user"]
    assert set(out["submission"]["user"]) == set(raw_users)
    ensemble.validate_submission(
        out["submission"], out["user_map"], out["item_map"], out["seen_full"]
    )

    assert out["weights"]["method"] == "weighted_rank"
    assert set(out["weights"]["models"]) == set(ENABLED)
    assert set(out["weights"]["weighted_rank"]["weights"]) == set(ENABLED)

    metrics = out["metrics"]
    assert metrics["tune_users"] + metrics["holdout_users"] == out["answers"]["user_idx"].nunique()
    assert metrics["trials"] == FAST["ensembling.tuning.n_trials"]
    assert set(metrics["models"]) == set(ENABLED)
    for result in (*metrics["models"].values(), *metrics["ensembles"].values()):
        assert result["holdout"]["users"] == metrics["holdout_users"]
        assert result["tune"]["users"] == metrics["tune_users"]
    assert set(metrics["ensembles"]) == set(ensemble.METHODS)
    for _method, fused in out["fused_valid"].groupby("method"):
        check_candidates(fused.drop(columns="method"), out["seen_valid"], k=10)


def test_priority_with_one_usable_model_submits_that_models_top_10(kedro_project):
    prepare_project(kedro_project)
    params = {**FAST, "ensembling.method": "priority", "ensembling.models": ["gru4rec", "sasrec"]}
    run_pipeline(kedro_project, "ensembling", params)
    out = load_outputs(kedro_project)
    assert out["weights"]["models"] == ["sasrec"]
    sasrec = pd.read_parquet(
        kedro_project / "data" / "07_model_output" / "sasrec_candidates_final.parquet"
    )
    expected = ensemble.build_submission(
        sasrec[sasrec["rank"] <= 10], out["user_map"], out["item_map"]
    )
    pd.testing.assert_frame_equal(out["submission"], expected, check_dtype=False)


def test_a_failed_check_stops_the_run_and_keeps_the_previous_submission(kedro_project):
    prepare_project(kedro_project)
    output = kedro_project / "data" / "07_model_output"
    previous = "user,item\n1,2\n"
    (output / "submission.csv").write_text(previous)
    candidates = pd.read_parquet(output / "ease_candidates_final.parquet")
    seen = sp.load_npz(kedro_project / "data" / "05_model_input" / "train_matrix_full.npz")
    first = candidates.index[0]
    candidates.loc[first, "item_idx"] = seen[candidates.loc[first, "user_idx"]].indices[0]
    candidates.to_parquet(output / "ease_candidates_final.parquet")

    params = {**FAST, "ensembling.method": "priority", "ensembling.models": ["ease"]}
    with pytest.raises(ensemble.SubmissionError, match="already seen"):
        run_pipeline(kedro_project, "ensembling", params)
    assert (output / "submission.csv").read_text() == previous

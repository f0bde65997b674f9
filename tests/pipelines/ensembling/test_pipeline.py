"""The ensembling pipeline end to end in a throw-away project with fake model outputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import scipy.sparse as sp

from movie_rec import fusion, submission
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
    submission.validate_submission(
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
    assert set(metrics["ensembles"]) == set(fusion.METHODS)
    assert set(metrics["by_mix"]) == {*ENABLED, "ensemble_weighted_rank", "ensemble_priority"}
    for by_mix in metrics["by_mix"].values():
        assert by_mix["worst"] == min(by_mix[mix] for mix in ("2/8", "4/6", "6/4"))
    assert set(metrics["release_filter"]["ease"]) == {"with", "without"}
    released_too_late = _released_after_last_activity(kedro_project, out, slack=1)
    assert not released_too_late.any()
    for _method, fused in out["fused_valid"].groupby("method"):
        check_candidates(fused.drop(columns="method"), out["seen_valid"], k=10)


def _released_after_last_activity(project, out, slack: int) -> pd.Series:
    """Submitted rows whose movie came out after the user's last activity year + slack,
    for the users who had at least 10 unseen movies released in time (the others are
    completed from every movie)."""
    data = project / "data"
    interactions = pd.read_parquet(data / "03_primary" / "interactions.parquet")
    years = pd.read_parquet(data / "05_model_input" / "item_features.parquet")
    year = years.set_index("item_idx")["year"].astype("float64")
    last_year = pd.to_datetime(interactions.groupby("user_idx")["time"].max(), unit="s").dt.year
    in_time = (
        year.to_numpy()[None, :] <= last_year.to_numpy()[:, None] + slack
    ) | year.isna().to_numpy()
    unseen_in_time = (in_time & (out["seen_full"].toarray() == 0)).sum(axis=1)
    assert (unseen_in_time >= 10).mean() > 0.9  # the check below covers most users
    rows = out["submission"].merge(out["user_map"], on="user").merge(out["item_map"], on="item")
    rows = rows[unseen_in_time[rows["user_idx"].to_numpy()] >= 10]
    return rows["item_idx"].map(year) > rows["user_idx"].map(last_year) + slack


def test_priority_with_one_usable_model_submits_that_models_top_10(kedro_project):
    prepare_project(kedro_project)
    params = {
        **FAST,
        "ensembling.method": "priority",
        "ensembling.models": ["gru4rec", "sasrec"],
        "ensembling.release_filter.enabled": False,
    }
    run_pipeline(kedro_project, "ensembling", params)
    out = load_outputs(kedro_project)
    assert out["weights"]["models"] == ["sasrec"]
    sasrec = pd.read_parquet(
        kedro_project / "data" / "07_model_output" / "sasrec_candidates_final.parquet"
    )
    expected = submission.build_submission(
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
    with pytest.raises(submission.SubmissionError, match="already seen"):
        run_pipeline(kedro_project, "ensembling", params)
    assert (output / "submission.csv").read_text() == previous

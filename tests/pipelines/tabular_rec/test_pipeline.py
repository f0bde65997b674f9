"""tabular_rec end to end in a throw-away Kedro project on tiny data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from movie_rec.evaluation import check_candidates
from movie_rec.pipelines.tabular_rec.pipeline import create_pipeline
from movie_rec.registry import first_stage_models
from tests.conftest import run_pipeline
from tests.pipelines.tabular_rec.conftest import write_first_stage

FAST = {
    "tabular_rec.n_folds": 3,
    "tabular_rec.bags": 2,
    "tabular_rec.max_rounds": 40,
    "tabular_rec.early_stopping_rounds": 5,
    "tabular_rec.num_threads": 1,
    "candidates.k": 20,
}


def _outputs(project) -> dict:
    data = project / "data"
    return {
        "valid": pd.read_parquet(data / "07_model_output" / "lgbm_ranker_candidates_valid.parquet"),
        "final": pd.read_parquet(data / "07_model_output" / "lgbm_ranker_candidates_final.parquet"),
        "metrics": json.loads((data / "08_reporting" / "lgbm_ranker_metrics.json").read_text()),
        "importance": pd.read_csv(data / "08_reporting" / "lgbm_ranker_feature_importance.csv"),
        "answers": pd.read_parquet(data / "05_model_input" / "valid_answers.parquet"),
        "seen_valid": sp.load_npz(data / "05_model_input" / "train_matrix_valid.npz"),
        "seen_full": sp.load_npz(data / "05_model_input" / "train_matrix_full.npz"),
    }


@pytest.fixture
def processed_project(kedro_project):
    run_pipeline(kedro_project, "data_processing")
    return kedro_project


def test_pipeline_writes_valid_candidates_metrics_and_importance(processed_project):
    write_first_stage(processed_project, empty=("multivae",))
    run_pipeline(processed_project, "tabular_rec", FAST)
    out = _outputs(processed_project)

    check_candidates(out["valid"], out["seen_valid"], k=20)
    check_candidates(out["final"], out["seen_full"], k=20)
    answered = set(out["answers"]["user_idx"])
    assert set(out["valid"]["user_idx"]) == answered
    assert set(out["final"]["user_idx"]) == set(range(out["seen_full"].shape[0]))
    assert out["metrics"]["model"] == "lgbm_ranker"
    assert 0.0 <= out["metrics"]["recall@10"] <= 1.0
    assert len(out["metrics"]["fold_rounds"]) == 3 * 2  # every fold of every bag
    # every extra split holds out again for each validated user with enough history left
    assert 0 < out["metrics"]["extra_queries"] <= 2 * len(answered)
    features = set(out["importance"]["feature"])
    assert {"ease_rank", "markov_1", "user_genre_share"} <= features
    assert "multivae_rank" not in features  # an empty (disabled) first stage adds no column
    assert np.isfinite(out["importance"]["gain"]).all()
    sources = [row["source"] for row in out["metrics"]["candidate_recall_by_source"]]
    assert sources == ["ease", "n_popular", "union"]
    assert set(out["metrics"]["by_mix"]) == {"2/8", "4/6", "6/4", "mean", "worst"}


def test_disabled_pipeline_writes_empty_outputs(processed_project):
    write_first_stage(processed_project)
    run_pipeline(processed_project, "tabular_rec", {**FAST, "tabular_rec.enabled": False})
    out = _outputs(processed_project)

    assert out["valid"].empty and out["final"].empty
    assert list(out["valid"].columns) == ["user_idx", "item_idx", "score", "rank"]
    assert out["metrics"] == {"model": "lgbm_ranker", "skipped": True}
    assert out["importance"].empty


def test_every_first_stage_model_of_the_registry_is_wired_in():
    inputs = create_pipeline().inputs()
    expected = {f"{m}.candidates_{fit}" for m in first_stage_models() for fit in ("valid", "final")}
    assert expected <= inputs
    assert "lgbm_ranker.candidates_valid" not in inputs

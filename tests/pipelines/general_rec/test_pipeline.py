"""general_rec end to end through a real KedroSession, on tiny data."""

import json

import pandas as pd
import scipy.sparse as sp

from movie_rec.evaluation import CANDIDATE_COLUMNS, check_candidates
from tests.conftest import run_pipeline
from tests.pipelines.general_rec.conftest import tiny_runtime_params

MODELS = ("ease", "user_ease", "admm_slim", "multivae", "recvae")


def _read(project, name: str) -> pd.DataFrame:
    return pd.read_parquet(project / "data" / "07_model_output" / f"{name}.parquet")


def _expected_rows(seen: sp.csr_matrix, k: int) -> pd.Series:
    unseen = seen.shape[1] - seen.getnnz(axis=1)
    return pd.Series(unseen.clip(max=k), index=range(seen.shape[0]), dtype="int64")


def test_pipeline_writes_valid_candidates_metrics_and_models(kedro_project):
    run_pipeline(kedro_project, "data_processing")
    params = tiny_runtime_params(kedro_project / "data" / "06_models")
    run_pipeline(kedro_project, "general_rec", {**params, "candidates.k": 30})
    data = kedro_project / "data"
    matrices = {
        "valid": sp.load_npz(data / "05_model_input/train_matrix_valid.npz"),
        "final": sp.load_npz(data / "05_model_input/train_matrix_full.npz"),
    }
    for model in MODELS:
        for split, seen in matrices.items():
            candidates = _read(kedro_project, f"{model}_candidates_{split}")
            check_candidates(candidates, seen, 30)
            rows = candidates.groupby("user_idx").size().reindex(range(seen.shape[0]), fill_value=0)
            pd.testing.assert_series_equal(rows, _expected_rows(seen, 30), check_names=False)
        metrics = json.loads((data / "08_reporting" / f"{model}_metrics.json").read_text())
        assert metrics["model"] == model and 0 < metrics["recall@10"] <= 1
        assert {"recall@10_last", "recall@10_random", "fit_seconds", "hyperparameters"} <= set(
            metrics
        )
        if model != "recvae":  # RecVAE keeps the paper's values: no study
            trials = pd.read_csv(data / "08_reporting" / f"{model}_optuna_trials.csv")
            assert len(trials) == 2
        assert (data / "06_models" / f"{model}_model.pkl").stat().st_size > 0
    assert (data / "06_models" / "optuna_movie_rec.db").exists()
    history = json.loads((data / "08_reporting" / "multivae_metrics.json").read_text())["history"]
    assert [row["update"] for row in history][:2] == [8, 16]


def test_disabled_model_leaves_the_dag_intact(kedro_project):
    run_pipeline(kedro_project, "data_processing")
    params = tiny_runtime_params(kedro_project / "data" / "06_models")
    run_pipeline(kedro_project, "general_rec", {**params, "general_rec.multivae.enabled": False})
    candidates = _read(kedro_project, "multivae_candidates_final")
    assert candidates.empty and list(candidates.columns) == CANDIDATE_COLUMNS
    metrics = json.loads((kedro_project / "data/08_reporting/multivae_metrics.json").read_text())
    assert metrics == {"model": "multivae", "skipped": True}
    assert not _read(kedro_project, "ease_candidates_valid").empty

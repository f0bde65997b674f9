import json

import pandas as pd
import scipy.sparse as sp

from movie_rec.evaluation import CANDIDATE_COLUMNS, check_candidates
from movie_rec.models.sequential.fit import MODELS
from movie_rec.pipelines.sequential_rec.nodes import skipped_outputs
from tests.conftest import run_pipeline

TINY = {
    "sequential_rec.common.max_len": 12,
    "sequential_rec.common.hidden": 16,
    "sequential_rec.common.batch_size": 64,
    "sequential_rec.common.max_epochs": 2,
    "sequential_rec.common.patience": 1,
    "sequential_rec.common.min_updates": 0,
    "sequential_rec.common.progress": False,
    "sequential_rec.srgnn.max_len": 8,
    "sequential_rec.srgnn.examples_per_epoch": 300,
    "sequential_rec.s3rec.pretrain_epochs": 1,
    "candidates.k": 15,
}


def test_pipeline_writes_valid_outputs_for_every_model(kedro_project):
    run_pipeline(kedro_project, "data_processing")
    enabled = {f"sequential_rec.{name}.enabled": name != "bert4rec" for name in MODELS}
    run_pipeline(kedro_project, "sequential_rec", {**TINY, **enabled})
    data = kedro_project / "data"
    seen = {
        fit: sp.load_npz(data / "05_model_input" / f"train_matrix_{fit}.npz")
        for fit in ("valid", "full")
    }
    for name in MODELS:
        metrics = json.loads((data / "08_reporting" / f"{name}_metrics.json").read_text())
        for fit, matrix in (("valid", "valid"), ("final", "full")):
            frame = pd.read_parquet(data / "07_model_output" / f"{name}_candidates_{fit}.parquet")
            assert list(frame.columns) == CANDIDATE_COLUMNS
            if name == "bert4rec":
                assert frame.empty
            else:
                check_candidates(frame, seen[matrix], k=15)
                assert frame["user_idx"].nunique() == seen[matrix].shape[0]
        if name == "bert4rec":
            assert metrics == {"model": "bert4rec", "skipped": True}
        else:
            assert 0.0 <= metrics["recall@10_last"] <= 1.0 and metrics["epochs"] >= 1
    assert (data / "06_models" / "s3rec_pretrained_final.pkl").exists()


def test_skipped_outputs_have_the_candidate_schema():
    frame, metrics, epochs = skipped_outputs("sasrec")
    assert list(frame.columns) == CANDIDATE_COLUMNS and frame.empty
    assert frame.dtypes.astype(str).tolist() == ["int64", "int64", "float32", "int64"]
    assert metrics == {"model": "sasrec", "skipped": True} and epochs == 0

"""A plain ``kedro run`` (``__default__``) on tiny settings ends in the submission and report.

``TINY_PARAMS`` holds the runtime parameters that make every model pipeline fast on the
tiny data (dotted keys, as ``kedro run --params``); it also turns on the models that are
off by default (on the CPU), so every registered model takes part.
"""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest
import scipy.sparse as sp

from movie_rec.records import Skipped
from movie_rec.registry import MODELS
from movie_rec.submission import validate_submission
from tests.conftest import run_pipeline, study_storage_dir
from tests.pipelines.general_rec.conftest import TINY_OVERRIDES as GENERAL_TINY
from tests.pipelines.sequential_rec.test_pipeline import TINY as SEQUENTIAL_TINY

TINY_PARAMS: dict[str, object] = {
    **{f"general_rec.{key}": value for key, value in GENERAL_TINY.items()},
    **{key: value for key, value in SEQUENTIAL_TINY.items() if key != "candidates.k"},
    "tabular_rec.n_folds": 2,
    "tabular_rec.max_rounds": 20,
    "ensembling.tuning.n_trials": 10,
    **{
        f"sequential_rec.{model}.enabled": True
        for model in ("bert4rec", "srgnn", "s3rec_sasrec", "s3rec_bert4rec")
    },
    # BERT4Rec's own training budget overrides the common one
    **{
        f"sequential_rec.bert4rec.train.{key}": SEQUENTIAL_TINY[
            f"sequential_rec.common.train.{key}"
        ]
        for key in ("max_updates", "eval_every", "patience")
    },
}


@pytest.mark.slow
def test_the_default_pipeline_ends_in_a_valid_submission_and_the_report(tiny_run, tmp_path):
    data = tiny_run / "data"
    submission = pd.read_csv(data / "07_model_output" / "submission.csv")
    user_map = pd.read_parquet(data / "03_primary" / "user_map.parquet")
    item_map = pd.read_parquet(data / "03_primary" / "item_map.parquet")
    seen = sp.load_npz(data / "05_model_input" / "train_matrix_full.npz")
    validate_submission(submission, user_map, item_map, seen)
    raw_users = pd.read_csv(data / "01_raw" / "train_ratings.csv")["user"]
    assert set(submission["user"]) == set(raw_users)

    enabled = [
        model
        for model in MODELS
        if not Skipped.marks(
            json.loads((data / "08_reporting" / f"{model}_metrics.json").read_text())
        )
    ]
    assert enabled == list(MODELS)
    table = pd.read_csv(data / "08_reporting" / "metrics.csv")
    assert table.loc[table["kind"] == "model", "model"].tolist() == enabled
    page = (data / "08_reporting" / "report.html").read_text()
    assert re.search(r'src="data:image/png;base64,', page)

    # The same run on the same raw files, made to fail at the ranker (LightGBM refuses one
    # leaf) after every first stage has finished, then resumed: only the missing outputs are
    # computed, and the submission is byte for byte the uninterrupted run's.
    interrupted = tmp_path / "interrupted"
    shutil.copytree(tiny_run, interrupted, ignore=shutil.ignore_patterns("data", "mlruns"))
    shutil.copytree(data / "01_raw", interrupted / "data" / "01_raw")
    params = {**TINY_PARAMS, **study_storage_dir(interrupted)}
    with pytest.raises(Exception, match="num_leaves"):
        run_pipeline(interrupted, None, {**params, "tabular_rec.lgbm.num_leaves": 1})
    assert not (interrupted / "data" / "07_model_output" / "submission.csv").exists()
    assert (interrupted / "data" / "07_model_output" / "sasrec_candidates_final.parquet").exists()
    run_pipeline(interrupted, None, params, only_missing_outputs=True)
    resumed = interrupted / "data" / "07_model_output" / "submission.csv"
    assert resumed.read_bytes() == (data / "07_model_output" / "submission.csv").read_bytes()

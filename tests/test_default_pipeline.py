"""A plain ``kedro run`` (``__default__``) on tiny settings ends in the submission and report.

``TINY_PARAMS`` holds the runtime parameters that make every model pipeline fast on the
tiny data (dotted keys, as ``kedro run --params``); it also turns on the models that are
off by default, so all nine take part.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import scipy.sparse as sp

from movie_rec import ensemble
from tests.conftest import run_pipeline

TINY_PARAMS: dict[str, object] = {
    "general_rec.ease.tuning.n_trials": 3,
    "general_rec.multivae.tuning.enabled": False,
    "general_rec.multivae.hyperparameters.hidden": 32,
    "general_rec.multivae.hyperparameters.latent": 16,
    "general_rec.multivae.train.max_epochs": 3,
    "general_rec.multivae.train.min_updates": 0,
    "general_rec.multivae.train.progress": False,
    "sequential_rec.common.max_len": 20,
    "sequential_rec.common.hidden": 16,
    "sequential_rec.common.max_epochs": 2,
    "sequential_rec.common.min_updates": 0,
    "sequential_rec.common.progress": False,
    "sequential_rec.srgnn.examples_per_epoch": 500,
    "sequential_rec.s3rec.pretrain_epochs": 1,
    "tabular_rec.n_folds": 2,
    "tabular_rec.max_rounds": 20,
    "ensembling.tuning.n_trials": 10,
    **{
        f"sequential_rec.{model}.enabled": True
        for model in ("bert4rec", "srgnn", "s3rec_sasrec", "s3rec_bert4rec")
    },
}


@pytest.mark.slow
def test_the_default_pipeline_ends_in_a_valid_submission_and_the_report(kedro_project):
    storage = {"general_rec.tuning.storage_dir": str(kedro_project / "data" / "06_models")}
    run_pipeline(kedro_project, None, {**TINY_PARAMS, **storage})
    data = kedro_project / "data"
    submission = pd.read_csv(data / "07_model_output" / "submission.csv")
    user_map = pd.read_parquet(data / "03_primary" / "user_map.parquet")
    item_map = pd.read_parquet(data / "03_primary" / "item_map.parquet")
    seen = sp.load_npz(data / "05_model_input" / "train_matrix_full.npz")
    ensemble.validate_submission(submission, user_map, item_map, seen)
    raw_users = pd.read_csv(data / "01_raw" / "train_ratings.csv")["user"]
    assert set(submission["user"]) == set(raw_users)

    enabled = [
        model
        for model in ensemble.MODELS
        if not json.loads((data / "08_reporting" / f"{model}_metrics.json").read_text()).get(
            "skipped"
        )
    ]
    assert enabled == list(ensemble.MODELS)
    table = pd.read_csv(data / "08_reporting" / "metrics.csv")
    assert table.loc[table["kind"] == "model", "model"].tolist() == enabled
    page = (data / "08_reporting" / "report.html").read_text()
    assert re.search(r'src="data:image/png;base64,', page)

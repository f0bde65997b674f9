"""MLflowHooks: one MLflow run per ``kedro run`` with every model's recall, read back."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from movie_rec.records import ModelMetrics, Recall, Skipped, from_json
from movie_rec.registry import models_of
from movie_rec.tracking import (
    MLflowHooks,
    RunRecord,
    TrackingSettings,
    model_record,
    store_locations,
)
from tests.conftest import run_pipeline
from tests.pipelines.general_rec.conftest import tiny_runtime_params

mlflow = pytest.importorskip("mlflow")

EASE_RECORD = ModelMetrics(
    "ease",
    Recall(overall=0.25, last=0.125, random=0.5, users=40),
    fit_seconds=1.5,
    predict_seconds=0.25,
    device="cpu",
    epochs=None,
    hyperparameters={"lam": 400.0, "lgbm": {"num_leaves": 31}},
)


def context_of(params: dict, project_path: Path) -> SimpleNamespace:
    """A Kedro context as the hooks read it: the parameters as written and the project."""
    return SimpleNamespace(config_loader={"parameters": params}, project_path=project_path)


def test_a_metrics_record_becomes_prefixed_params_and_metrics():
    params, metrics = model_record("ease", EASE_RECORD)
    assert params == {"ease.lam": "400.0", "ease.lgbm.num_leaves": "31", "ease.device": "cpu"}
    assert metrics == {
        "ease.recall_at_10": 0.25,
        "ease.recall_at_10_last": 0.125,
        "ease.recall_at_10_random": 0.5,
        "ease.fit_seconds": 1.5,
        "ease.predict_seconds": 0.25,
    }
    assert model_record("sknn", Skipped("sknn")) == (
        {"sknn.enabled": "false"},
        {},
    )


def test_a_bare_folder_is_a_sqlite_store_in_the_project(tmp_path):
    uri, artifacts = store_locations("mlruns", tmp_path)
    assert uri == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert artifacts == (tmp_path / "mlruns" / "artifacts").as_uri()
    assert store_locations("http://localhost:5000", tmp_path) == ("http://localhost:5000", None)


def client_of(project):
    uri, _ = store_locations("mlruns", project)
    return mlflow.tracking.MlflowClient(tracking_uri=uri)


def test_the_hook_records_a_run_with_metrics_and_artifacts(tmp_path):
    hooks = MLflowHooks()
    params = {"tracking": {"experiment": "unit"}, "runtime": {"seed": 7, "device": "cpu"}}
    hooks.after_context_created(context_of(params, tmp_path))
    run_params = {"run_id": "session-1", "env": "local", "pipeline_names": ["general_rec"]}
    hooks.before_pipeline_run(run_params)
    submission = pd.DataFrame({"user": [1, 1], "item": [10, 20]})
    hooks.after_node_run({"ease.metrics": EASE_RECORD, "submission": submission})
    hooks.after_node_run({"report": "<html>report</html>"})
    hooks.after_pipeline_run(run_params)

    client = client_of(tmp_path)
    experiment = client.get_experiment_by_name("unit")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "session-1"
    assert run.data.metrics["ease.recall_at_10"] == 0.25
    assert run.data.params["ease.lam"] == "400.0"
    assert run.data.params["runtime.seed"] == "7"
    assert run.data.params["kedro.pipeline"] == "general_rec"
    artifacts = {entry.path for entry in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"submission.csv", "report.html"}
    csv = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/submission.csv")
    assert csv == submission.to_csv(index=False)


def test_a_disabled_tracking_records_nothing(tmp_path):
    hooks = MLflowHooks()
    context = context_of({"tracking": {"enabled": False}}, tmp_path)
    hooks.after_context_created(context)
    hooks.after_node_run({"ease.metrics": EASE_RECORD})
    hooks.after_pipeline_run({"run_id": "x"})
    assert hooks.record == RunRecord.empty()
    assert not (tmp_path / "mlruns").exists()
    assert TrackingSettings.from_params(None) == TrackingSettings(True, "mlruns", "movie_rec")


def test_a_store_mlflow_cannot_write_to_loses_the_record_not_the_run(tmp_path, caplog):
    """An MLflow store of another MLflow version (its schema out of date) only warns."""
    params = {"tracking": {"experiment": "unit"}, "runtime": {"seed": 7, "device": "cpu"}}
    first = MLflowHooks()
    first.after_context_created(context_of(params, tmp_path / "a"))
    first.after_pipeline_run({"run_id": "first"})
    (tmp_path / "b" / "mlruns").mkdir(parents=True)
    store = tmp_path / "b" / "mlruns" / "mlflow.db"
    shutil.copy(tmp_path / "a" / "mlruns" / "mlflow.db", store)
    with sqlite3.connect(store) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0123456789ab'")
    hooks = MLflowHooks()
    hooks.after_context_created(context_of(params, tmp_path / "b"))
    with caplog.at_level("WARNING", logger="movie_rec.tracking"):
        hooks.after_pipeline_run({"run_id": "second"})
    assert "MLflow run not recorded in mlruns: Detected out-of-date database schema" in caplog.text


@pytest.mark.slow
def test_a_kedro_run_leaves_one_mlflow_run_with_every_enabled_models_recall(
    kedro_project, monkeypatch
):
    from movie_rec import settings

    if not any(
        isinstance(hook, MLflowHooks) for hook in settings.HOOKS
    ):  # until settings.py has it
        monkeypatch.setattr(settings, "HOOKS", (*settings.HOOKS, MLflowHooks()))
    run_pipeline(kedro_project, "data_processing")
    run_pipeline(
        kedro_project, "general_rec", tiny_runtime_params(kedro_project / "data" / "06_models")
    )

    client = client_of(kedro_project)
    experiment = client.get_experiment_by_name("movie_rec")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    assert [run.data.params["kedro.pipeline"] for run in runs] == [
        "data_processing",
        "general_rec",
    ]
    logged = runs[-1].data.metrics
    enabled = 0
    for spec in models_of("general_rec"):
        path = kedro_project / "data" / "08_reporting" / f"{spec.name}_metrics.json"
        record = from_json(ModelMetrics, json.loads(path.read_text()))
        if isinstance(record, Skipped):
            continue
        enabled += 1
        for column, value in record.recall.columns().items():
            assert logged[f"{spec.name}.{column.replace('@', '_at_')}"] == value
    assert enabled >= 2

"""MLflow tracking without a server: one MLflow run per ``kedro run``.

:class:`MLflowHooks` collects what the run's nodes produce (every ``<model>.metrics``
record, ``ensemble_metrics``, ``ensemble_weights``, the ``submission`` and the ``report``)
and, when the pipeline ends, records one run: each model's hyperparameters (flattened and
prefixed by the model, ``ease.lam``) and device as parameters; its validation Recall@10
(``ease.recall_at_10``, ``…_last``, ``…_random``: MLflow names cannot hold ``@``), fit and
predict seconds as metrics; the submission and the report as artifacts. A failed run is
recorded with what it produced, as ``FAILED``.

Settings: the ``tracking`` parameters (``enabled``, default true; ``uri``, default
``mlruns``; ``experiment``, default ``movie_rec``). A ``uri`` without a scheme is a
folder of the project holding ``mlflow.db`` (SQLite) and the ``artifacts``: MLflow 3
refuses its plain-folder store unless ``MLFLOW_ALLOW_FILE_STORE`` is set, and SQLite
needs no server (SQLAlchemy and Alembic come with Optuna). Any other URI (``http://…``,
``sqlite:///…``, ``databricks``) is used as it is. Without ``mlflow`` installed
(``pip install movie_rec[tracking]``, which also brings the viewer, ``mlflow ui``) the hook
does nothing.

Why not kedro-mlflow: its 2.0.3 supports Kedro 1.x, but it brings its own ``mlflow.yml``
configuration and model flavours, while this project only needs a few parameters, metrics
and two artifacts per run, which MLflow's client API writes directly.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
from kedro.framework.hooks import hook_impl

from movie_rec.parameters import written_parameters
from movie_rec.records import EnsembleMetrics, ModelMetrics, Skipped
from movie_rec.runtime import RuntimeSettings

logger = logging.getLogger(__name__)

METRICS_SUFFIX = ".metrics"
PARAM_VALUE_LIMIT = 500  # characters kept of a parameter's value (MLflow allows 6000)
BATCH_LIMIT = 100  # parameters per log_batch call (MLflow's limit; metrics allow 1000)


@dataclass(frozen=True)
class TrackingSettings:
    enabled: bool = True
    uri: str = "mlruns"
    experiment: str = "movie_rec"

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> TrackingSettings:
        known = {k: v for k, v in (params or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


def mlflow_available() -> bool:
    return importlib.util.find_spec("mlflow") is not None


def store_locations(uri: str, project_path: Path) -> tuple[str, str | None]:
    """The tracking URI and, for a project folder, where the artifacts go."""
    if len(urlparse(uri).scheme) > 1:  # a URI; a bare folder (even C:\\runs) is not
        return uri, None
    folder = (project_path / uri).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


def flatten(values: dict[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    """``{"lgbm": {"lr": 0.1}}`` with prefix ``m`` → ``("m.lgbm.lr", 0.1)``."""
    for key, value in values.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            yield from flatten(value, name)
        else:
            yield name, value


def metric_name(name: str) -> str:
    return name.replace("@", "_at_")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def model_record(
    model: str, record: ModelMetrics | Skipped
) -> tuple[dict[str, str], dict[str, float]]:
    """Parameters (hyperparameters, device) and metrics (recall, timings) of a metrics record."""
    if isinstance(record, Skipped):
        return {f"{model}.enabled": "false"}, {}
    params = {name: str(value) for name, value in flatten(record.hyperparameters, model)}
    params[f"{model}.device"] = record.device
    metrics = {
        metric_name(f"{model}.{key}"): float(value)
        for key, value in _model_figures(record).items()
        if is_number(value)
    }
    return params, metrics


def _model_figures(record: ModelMetrics) -> dict[str, Any]:
    """The recalls, the fits' seconds, the epochs and the tuning trials of a model."""
    first_stage = record.first_stage
    return {
        **record.recall.columns(),
        "fit_seconds": record.fit_seconds,
        "predict_seconds": record.predict_seconds,
        "final_fit_seconds": first_stage.final_fit_seconds if first_stage else None,
        "final_predict_seconds": first_stage.final_predict_seconds if first_stage else None,
        "epochs": record.epochs,
        "tuning_trials": first_stage.tuning_trials if first_stage else None,
    }


def ensemble_record(record: EnsembleMetrics) -> dict[str, float]:
    """Every fusion's recall on the tuning, holdout and all users, and its timings."""
    return {
        metric_name(name): float(value)
        for method, figures in record.ensembles.items()
        for name, value in flatten(figures.to_json(), f"ensemble.{method}")
        if is_number(value)
    }


@dataclass
class RunRecord:
    """What one ``kedro run`` produced, gathered node by node."""

    params: dict[str, str]
    metrics: dict[str, float]
    artifacts: dict[str, str]

    @classmethod
    def empty(cls) -> RunRecord:
        return cls({}, {}, {})

    def add(self, name: str, value: Any) -> None:
        if name.endswith(METRICS_SUFFIX) and isinstance(value, ModelMetrics | Skipped):
            params, metrics = model_record(name.removesuffix(METRICS_SUFFIX), value)
            self.params |= params
            self.metrics |= metrics
        elif isinstance(value, EnsembleMetrics):
            self.metrics |= ensemble_record(value)
        elif name == "ensemble_weights":
            self.params |= {key: str(v) for key, v in flatten(value, "ensemble")}
        elif name == "submission" and isinstance(value, pd.DataFrame):
            self.artifacts["submission.csv"] = value.to_csv(index=False)
        elif name == "report" and isinstance(value, str):
            self.artifacts["report.html"] = value


def run_params(run_params: dict[str, Any], runtime: dict[str, Any]) -> dict[str, str]:
    """The run's own settings: pipeline, environment, runtime and ``--params`` overrides."""
    pipelines = run_params.get("pipeline_names") or ["__default__"]
    params = {
        "kedro.pipeline": ",".join(map(str, pipelines)),
        "kedro.env": str(run_params.get("env")),
    }
    params |= {name: str(value) for name, value in flatten(runtime, "runtime")}
    overrides = run_params.get("runtime_params") or {}
    params |= {name: str(value) for name, value in flatten(overrides, "override")}
    return params


class MLflowHooks:
    """Records one MLflow run per ``kedro run`` (see the module docstring)."""

    def __init__(self) -> None:
        self.settings: TrackingSettings | None = None
        self.project_path = Path.cwd()
        self.runtime: dict[str, Any] = {}
        self.record = RunRecord.empty()
        self.started = time.time()

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        params = written_parameters(context)
        settings = TrackingSettings.from_params(params.get("tracking"))
        if settings.enabled and not mlflow_available():
            logger.warning("tracking is on but mlflow is missing: pip install movie_rec[tracking]")
        self.settings = settings if settings.enabled and mlflow_available() else None
        self.project_path = Path(context.project_path)
        self.runtime = RuntimeSettings.from_params(params.get("runtime") or {}).to_dict()

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        self.record = RunRecord.empty()
        self.started = time.time()

    @hook_impl
    def after_node_run(self, outputs: dict[str, Any]) -> None:
        if self.settings is None:
            return
        for name, value in outputs.items():
            self.record.add(name, value)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        self._log(run_params, "FINISHED")

    @hook_impl
    def on_pipeline_error(self, run_params: dict[str, Any]) -> None:
        self._log(run_params, "FAILED")

    def _log(self, params: dict[str, Any], status: str) -> None:
        if self.settings is None:
            return
        from mlflow.exceptions import MlflowException  # noqa: PLC0415 (mlflow is optional)

        try:
            run_id = log_run(
                self.settings,
                self.project_path,
                run_params(params, self.runtime) | self.record.params,
                self.record,
                params.get("run_id"),
                self.started,
                status,
            )
        except MlflowException as error:  # the run's outputs stand; only its record is lost
            message = str(error).splitlines()[0]
            logger.warning("MLflow run not recorded in %s: %s", self.settings.uri, message)
            return
        logger.info("MLflow run %s recorded in %s", run_id, self.settings.uri)


def log_run(
    settings: TrackingSettings,
    project_path: Path,
    params: dict[str, str],
    record: RunRecord,
    run_name: str | None,
    started: float,
    status: str,
) -> str:
    """Write one finished run to the tracking store; returns its id."""
    from mlflow.entities import Metric, Param  # noqa: PLC0415 (mlflow is optional)
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    uri, artifact_location = store_locations(settings.uri, project_path)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(settings.experiment)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(settings.experiment, artifact_location=artifact_location)
    )
    run = client.create_run(experiment_id, start_time=int(started * 1000), run_name=run_name)
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    entries = [Param(name, value[:PARAM_VALUE_LIMIT]) for name, value in sorted(params.items())]
    for start in range(0, len(entries), BATCH_LIMIT):
        client.log_batch(run_id, params=entries[start : start + BATCH_LIMIT])
    metrics = [Metric(name, value, now, 0) for name, value in sorted(record.metrics.items())]
    for start in range(0, len(metrics), BATCH_LIMIT * 10):
        client.log_batch(run_id, metrics=metrics[start : start + BATCH_LIMIT * 10])
    for file_name, text in record.artifacts.items():
        client.log_text(run_id, text, file_name)
    client.set_terminated(run_id, status=status)
    return run_id

"""The four nodes every first-stage model runs, whatever its pipeline.

Per registered model M (namespace ``M`` in kedro-viz): ``tune`` (a resumable Optuna study on
the validation split, or the fixed hyperparameters) → ``fit_valid`` (fit on ``split_train``,
early stopping on validation Recall@10 for iterative models; candidates for every user) →
``fit_final`` (the same hyperparameters on all interactions; iterative models train for the
validation fit's best update count, or continue the validation fit's model for
``train.final_updates`` updates) → ``report`` (the ``M.metrics`` record). A model with
``enabled: false`` writes empty candidates and :class:`~movie_rec.records.Skipped` in place
of its fit reports, model and metrics.

A model's parameters are its section of ``parameters_<pipeline>.yml`` over the pipeline's
``common`` section, resolved by :mod:`movie_rec.parameters` into a
:class:`~movie_rec.parameters.ModelSettings`; every node reads only that.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import optuna
import pandas as pd
import scipy.sparse as sp
from kedro.pipeline import Node, Pipeline

from movie_rec.evaluation import ScoreFn, empty_candidates, top_k_unseen
from movie_rec.model_outputs import model_metrics, stopwatch
from movie_rec.models.config import ParamsConfig
from movie_rec.models.protocol import FitRun, Model, Start, TrainingData
from movie_rec.models.training import TrainResult
from movie_rec.parameters import (
    STOP_SIGNALS,
    CandidateSettings,
    ModelSettings,
    TuningSettings,
    model_settings,
)
from movie_rec.records import FirstStageRecord, FitReport, ModelMetrics, Skipped, Training
from movie_rec.registry import GPU, ITERATIVE, spec
from movie_rec.runtime import RuntimeSettings, prepare_run
from movie_rec.tuning import studies
from movie_rec.tuning.storage import study_storage

logger = logging.getLogger(__name__)

GPU_TAG = "gpu"  # the nodes that train on runtime.device (movie_rec.runners.DaskRunner)


@dataclass(frozen=True)
class Validation:
    """Recall@10 on held-out answers: what early stopping and tuning maximise.

    Users are scored in order of history length, so sequence batches carry little padding.
    """

    answers: pd.DataFrame
    seen: sp.csr_matrix
    batch_size: int = 1024

    @classmethod
    def on(cls, answers: pd.DataFrame, seen: sp.csr_matrix, signal: str, batch_size: int):
        if signal not in STOP_SIGNALS:
            raise ValueError(f"stop_on must be one of {STOP_SIGNALS}, got {signal!r}")
        if signal == "last":
            answers = answers[answers["kind"] == "last"]
        return cls(answers, seen, batch_size)

    def recall(self, score_fn: ScoreFn) -> float:
        users = np.unique(self.answers["user_idx"].to_numpy())
        users = users[np.argsort(np.diff(self.seen.indptr)[users], kind="stable")]
        return studies.validation_recall(score_fn, self.seen, self.answers, users, self.batch_size)


@dataclass(frozen=True)
class ModelNodes:
    """The node functions of one registered model (bound to it, so each node is plain)."""

    model: str

    def settings(self, common: dict[str, Any], own: dict[str, Any]) -> ModelSettings:
        return model_settings(self.model, {"common": common, self.model: own})

    def _run(self, settings: ModelSettings, runtime: RuntimeSettings, **fields: Any) -> FitRun:
        return FitRun(
            device=prepare_run(runtime),
            seed=runtime.seed,
            train=settings.train,
            name=self.model,
            **fields,
        )

    def _fit(
        self, hyperparameters: ParamsConfig, data: TrainingData, run: FitRun
    ) -> tuple[Model, TrainResult | None]:
        model = spec(self.model).model(hyperparameters)
        return model, model.fit(data, run)

    def _config(self, values: dict[str, Any]) -> ParamsConfig:
        return spec(self.model).config.from_params(values)

    def tune(
        self,
        history: pd.DataFrame,
        matrix: sp.csr_matrix,
        answers: pd.DataFrame,
        common: dict[str, Any],
        own: dict[str, Any],
        tuning: TuningSettings,
        runtime: RuntimeSettings,
    ) -> tuple[ParamsConfig, pd.DataFrame]:
        """Best hyperparameters of a resumable Optuna study, or the fixed ones."""
        settings = self.settings(common, own)
        fixed = settings.hyperparameters.to_dict()
        study_settings = settings.tuning
        if not settings.tunes(runtime, matrix):
            if study_settings.enabled == "auto" and settings.runs_on(runtime, matrix):
                logger.info("%s: tuning auto: the tuned run is over the budget by estimate: "
                            "its fixed hyperparameters", self.model)  # fmt: skip
            return settings.hyperparameters, studies.trials_frame(None)
        seed = runtime.seed
        _, sampled = studies.evaluation_users(answers, tuning.max_eval_users, seed)
        validation = Validation.on(sampled, matrix, settings.stop_on, tuning.batch_size)
        data = TrainingData(matrix, history)
        space = study_settings.search_space
        iterative = spec(self.model).can(ITERATIVE)

        def objective(trial: optuna.Trial) -> float:
            values = {**fixed, **studies.suggest(trial, space)}
            evaluate = studies.pruning_evaluator(trial, validation.recall) if iterative else None
            run = self._run(settings, runtime, evaluate=evaluate)
            model, result = self._fit(self._config(values), data, run)
            if result is not None:
                trial.set_user_attr("best_update", result.best_update)
                return result.best_score
            return validation.recall(model.score)

        trial_inputs = {
            "settings": {
                key: value for key, value in settings.to_dict().items() if key != "tuning"
            },
            "pruner": study_settings.pruner,
            "runtime": {"device": runtime.device, "seed": runtime.seed},
        }
        name = f"{self.model}-" + studies.study_fingerprint(matrix, sampled, trial_inputs, space)
        pruner = optuna.pruners.MedianPruner(**study_settings.pruner)
        storage = study_storage(tuning.storage, tuning.storage_dir, "movie_rec")
        study = studies.open_study(name, storage, seed, pruner)
        run = studies.run_study(
            study,
            objective,
            int(study_settings.n_trials),
            study_settings.timeout,
            first_trial=studies.within_space(fixed, space),
            patience=study_settings.patience,
            min_gain=study_settings.min_gain,
        )
        best = studies.best_hyperparameters(run.study, fixed)
        logger.info("%s: best hyperparameters %s", self.model, best)
        trials = studies.trials_frame(run.study).assign(cut_short=run.cut_short)
        return self._config(best), trials

    def fit_valid(
        self,
        history: pd.DataFrame,
        matrix: sp.csr_matrix,
        answers: pd.DataFrame,
        hyperparameters: ParamsConfig,
        common: dict[str, Any],
        own: dict[str, Any],
        runtime: RuntimeSettings,
        candidates: CandidateSettings,
        **extras: Any,
    ) -> tuple[pd.DataFrame, FitReport | Skipped, Model | Skipped]:
        """Fit on ``split_train``: candidates for every user, the fit's report and, where the
        final fit continues it (``train.final_updates``), the fitted model (else Skipped)."""
        settings = self.settings(common, own)
        if settings.enabled == "auto":
            logger.info("%s: %s", self.model, settings.auto(runtime, matrix))
        if not settings.runs_on(runtime, matrix):
            logger.info("%s is disabled: writing empty outputs", self.model)
            return empty_candidates(), Skipped(self.model), Skipped(self.model)
        evaluate = None
        if spec(self.model).can(ITERATIVE):
            evaluate = Validation.on(
                answers, matrix, settings.stop_on, candidates.batch_size
            ).recall
        run = self._run(settings, runtime, evaluate=evaluate, extras=extras)
        model, ranked, report = self._fit_and_rank(
            hyperparameters, TrainingData(matrix, history), run, candidates
        )
        estimate = settings.auto(runtime, matrix).minutes
        continued = model if settings.continues else Skipped(self.model)
        return ranked, replace(report, estimated_run_minutes=round(estimate, 3)), continued

    def fit_final(
        self,
        history: pd.DataFrame,
        matrix: sp.csr_matrix,
        hyperparameters: ParamsConfig,
        valid_report: FitReport | Skipped,
        valid_model: Model | Skipped,
        common: dict[str, Any],
        own: dict[str, Any],
        runtime: RuntimeSettings,
        candidates: CandidateSettings,
        **extras: Any,
    ) -> tuple[pd.DataFrame, Any, FitReport | Skipped]:
        """Fit on all interactions: for the validation fit's best update count, or the
        validation fit's model continued for ``train.final_updates`` more updates."""
        settings = self.settings(common, own)
        if isinstance(valid_report, Skipped):  # the validation fit's choice, whatever this matrix
            return empty_candidates(), valid_report, valid_report
        stop_at, start = valid_report.best_update, None
        if settings.continues:
            if isinstance(valid_model, Skipped):
                raise ValueError(f"{self.model}: train.final_updates is set but the validation "
                                 "fit left no model to continue: rerun its fit_valid node")  # fmt: skip
            start = Start(valid_model, valid_report.best_update)
            stop_at = valid_report.best_update + settings.train.final_updates
        run = self._run(settings, runtime, stop_at=stop_at, start=start, extras=extras)
        model, ranked, report = self._fit_and_rank(
            hyperparameters, TrainingData(matrix, history), run, candidates
        )
        return ranked, model, report

    def _fit_and_rank(
        self,
        hyperparameters: ParamsConfig,
        data: TrainingData,
        run: FitRun,
        candidates: CandidateSettings,
    ) -> tuple[Model, pd.DataFrame, FitReport]:
        with stopwatch() as fit_time:
            model, result = self._fit(hyperparameters, data, run)
        with stopwatch() as predict_time:
            ranked = top_k_unseen(
                model.score, data.matrix, candidates.k, batch_size=candidates.batch_size
            )
        report = FitReport(
            self.model,
            fit_time["seconds"],
            predict_time["seconds"],
            str(run.device),
            hyperparameters.to_dict(),
            passes=int(result.passes) if result else None,
            training=training_summary(result),
        )
        logger.info(
            "%s: fitted in %.1fs, ranked in %.1fs on %s",
            self.model, fit_time["seconds"], predict_time["seconds"], run.device,
        )  # fmt: skip
        return model, ranked, report

    def report(
        self,
        candidates_valid: pd.DataFrame,
        answers: pd.DataFrame,
        valid_report: FitReport | Skipped,
        final_report: FitReport,
        trials: pd.DataFrame,
    ) -> ModelMetrics | Skipped:
        """The ``M.metrics`` record: validation recall, timings, tuning and training."""
        if isinstance(valid_report, Skipped):
            return valid_report
        return model_metrics(
            self.model,
            candidates_valid,
            answers,
            fit_seconds=valid_report.fit_seconds,
            predict_seconds=valid_report.predict_seconds,
            device=valid_report.device,
            hyperparameters=valid_report.hyperparameters,
            epochs=valid_report.passes,
            training=valid_report.training,
            first_stage=first_stage_record(valid_report, final_report, trials),
        )


def first_stage_record(
    valid_report: FitReport, final_report: FitReport, trials: pd.DataFrame
) -> FirstStageRecord:
    """The run plan's estimate, the final fit's seconds and the Optuna study's summary."""
    states = trials["state"] if "state" in trials else pd.Series(dtype="object")
    complete = trials.loc[states == "COMPLETE", "value"] if len(trials) else []
    return FirstStageRecord(
        estimated_run_minutes=valid_report.estimated_run_minutes,
        final_fit_seconds=round(float(final_report.fit_seconds), 3),
        final_predict_seconds=round(float(final_report.predict_seconds), 3),
        tuning_trials=int(states.isin(["COMPLETE", "PRUNED"]).sum()),
        tuning_pruned=int((states == "PRUNED").sum()),
        tuning_seconds=round(float(trials.get("duration_seconds", pd.Series()).sum()), 3),
        tuning_best_value=float(max(complete)) if len(complete) else None,
        tuning_cut_short=bool(trials["cut_short"].any()) if "cut_short" in trials else False,
    )


def training_summary(result: TrainResult | None) -> Training | None:
    """Updates, evaluations and the recall-by-update history of an iterative fit."""
    if result is None:
        return None
    return Training(
        best_update=int(result.best_update),
        updates=int(result.updates),
        evaluations=int(result.evaluations),
        training_seconds=round(float(result.seconds), 3),
        history=[
            {key: (float(value) if value is not None else None) for key, value in row.items()}
            for row in result.history
        ],
    )


FITS = {
    "valid": {"history": "split_train", "matrix": "train_matrix_valid"},
    "final": {"history": "interactions", "matrix": "train_matrix_full"},
}


def model_pipeline(name: str) -> Pipeline:
    """The four nodes of registered model ``name`` in its namespace.

    Its datasets are ``<name>.hyperparameters``, ``<name>.candidates_valid``... (the
    catalog's dataset factories give them files); the shared inputs keep their names.
    """
    entry = spec(name)
    nodes = ModelNodes(name)
    settings = {
        "common": f"params:{entry.pipeline}.common",
        "own": f"params:{entry.pipeline}.{name}",
        "runtime": "params:runtime",
    }
    extras = {fit: {extra: f"{extra}_{fit}" for extra in entry.extra_inputs} for fit in FITS}
    fitting = {GPU_TAG} if entry.can(GPU) else set()
    valid, final = FITS["valid"], FITS["final"]
    answers = {"answers": "valid_answers"}
    return Pipeline(
        [
            Node(
                nodes.tune,
                {**valid, **answers, **settings, "tuning": "params:tuning"},
                ["hyperparameters", "optuna_trials"],
                name="tune",
                tags=fitting,
            ),
            Node(
                nodes.fit_valid,
                {
                    **valid,
                    **answers,
                    "hyperparameters": "hyperparameters",
                    **settings,
                    "candidates": "params:candidates",
                    **extras["valid"],
                },
                ["candidates_valid", "valid_report", "valid_model"],
                name="fit_valid",
                tags=fitting,
            ),
            Node(
                nodes.fit_final,
                {
                    **final,
                    "hyperparameters": "hyperparameters",
                    "valid_report": "valid_report",
                    "valid_model": "valid_model",
                    **settings,
                    "candidates": "params:candidates",
                    **extras["final"],
                },
                ["candidates_final", "model", "final_report"],
                name="fit_final",
                tags=fitting,
            ),
            Node(
                nodes.report,
                [
                    "candidates_valid",
                    "valid_answers",
                    "valid_report",
                    "final_report",
                    "optuna_trials",
                ],
                "metrics",
                name="report",
            ),
        ],
        namespace=name,
        inputs={
            *valid.values(),
            *final.values(),
            "valid_answers",
            *(dataset for fit in extras.values() for dataset in fit.values()),
        },
        parameters={*settings.values(), "params:tuning", "params:candidates"},
    )

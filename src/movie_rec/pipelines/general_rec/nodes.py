"""Nodes of the general_rec pipeline: EASE and Multi-VAE, each tuned, fitted twice, reported.

Per model M the nodes run ``tune_M`` (Optuna on split_train → valid_answers, or the fixed
hyperparameters), ``fit_M_valid`` (fit on split_train, candidates for every user),
``fit_M_final`` (same hyperparameters on all interactions; Multi-VAE trains for the
validation fit's best epoch count) and ``model_report`` (the M_metrics record). A model
with ``enabled: false`` still runs every node, writing the outputs of :func:`skipped`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
import pandas as pd
import scipy.sparse as sp
import torch

from movie_rec.evaluation import ScoreFn, empty_candidates, top_k_unseen
from movie_rec.model_outputs import model_metrics, stopwatch
from movie_rec.models.ease import EASE, gram_matrix
from movie_rec.models.multivae import MultiVAE, MultiVAEConfig
from movie_rec.models.training import TrainConfig
from movie_rec.models.tuning import (
    best_hyperparameters,
    evaluation_users,
    open_study,
    pruning_evaluator,
    run_study,
    storage_url,
    study_fingerprint,
    suggest,
    trials_frame,
    validation_recall,
    within_space,
)
from movie_rec.runtime import resolve_device

logger = logging.getLogger(__name__)

STUDY_FILE = "general_rec"


def skipped(model: str) -> dict[str, Any]:
    """Everything a disabled model writes: empty candidates and trials, a 'skipped' record."""
    return {
        "candidates": empty_candidates(),
        "trials": trials_frame(None),
        "report": {"model": model, "skipped": True},
        "artifact": {"model": model, "skipped": True},
    }


def _candidates(
    score_fn: ScoreFn, seen: sp.csr_matrix, params: dict, candidates: dict
) -> pd.DataFrame:
    return top_k_unseen(score_fn, seen, candidates["k"], batch_size=params["scoring_batch_size"])


def _study(
    model: str,
    matrix: sp.spmatrix,
    params: dict,
    runtime: dict,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Open (or resume) the model's study in the pipeline's SQLite file.

    The storage folder comes from parameters: the one file a node opens itself, because an
    Optuna study is a live database rather than a dataset the catalog can load and save.
    """
    tuning = params[model]["tuning"]
    name = f"{model}-{study_fingerprint(matrix, tuning['search_space'])}"
    storage = storage_url(params["tuning"]["storage_dir"], STUDY_FILE)
    return open_study(name, storage, int(runtime["seed"]), pruner)


def _tuning_users(
    answers: pd.DataFrame, params: dict, runtime: dict
) -> tuple[np.ndarray, pd.DataFrame]:
    return evaluation_users(answers, params["tuning"].get("max_eval_users"), int(runtime["seed"]))


def _tune(
    model: str,
    params: dict,
    study_factory: Callable[[], optuna.Study],
    objective: Callable[[optuna.Trial], float],
) -> tuple[dict, pd.DataFrame]:
    """Shared tuning skeleton: skip (fixed values) or run the study, then pick the best."""
    fixed = dict(params[model]["hyperparameters"])
    tuning = params[model]["tuning"]
    if not params[model]["enabled"]:
        return fixed, skipped(model)["trials"]
    if not tuning["enabled"]:
        logger.info("%s: tuning disabled, using fixed hyperparameters %s", model, fixed)
        return fixed, trials_frame(None)
    study = run_study(
        study_factory(),
        objective,
        int(tuning["n_trials"]),
        tuning.get("timeout"),
        first_trial=within_space(fixed, tuning["search_space"]),
    )
    best = best_hyperparameters(study, fixed)
    logger.info("%s: best hyperparameters %s", model, best)
    return best, trials_frame(study)


def tune_ease(
    matrix: sp.csr_matrix, answers: pd.DataFrame, params: dict, runtime: dict
) -> tuple[dict, pd.DataFrame]:
    """Optuna search of EASE's λ: the Gram matrix is built once, one Cholesky per trial."""
    device = resolve_device(runtime["device"])
    users, answers = _tuning_users(answers, params, runtime)
    gram: dict[str, torch.Tensor] = {}  # built on the first trial: a complete study needs none

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, params["ease"]["tuning"]["search_space"])
        if "xtx" not in gram:
            gram["xtx"] = gram_matrix(matrix, device)
        model = EASE(values["lambda"], device).fit(matrix, gram=gram["xtx"])
        return validation_recall(model.score, matrix, answers, users, params["scoring_batch_size"])

    return _tune("ease", params, lambda: _study("ease", matrix, params, runtime), objective)


def fit_ease_valid(
    matrix: sp.csr_matrix, hyperparameters: dict, params: dict, runtime: dict, candidates: dict
) -> tuple[pd.DataFrame, dict]:
    """EASE on split_train: candidates for every user and the fit report."""
    if not params["ease"]["enabled"]:
        out = skipped("ease")
        return out["candidates"], out["report"]
    _, result, report = _fit_ease(matrix, hyperparameters, params, runtime, candidates)
    return result, report


def fit_ease_final(
    matrix: sp.csr_matrix, hyperparameters: dict, params: dict, runtime: dict, candidates: dict
) -> tuple[pd.DataFrame, dict, dict]:
    """EASE on all interactions: final candidates, the persisted weights, the fit report."""
    if not params["ease"]["enabled"]:
        out = skipped("ease")
        return out["candidates"], out["artifact"], out["report"]
    model, result, report = _fit_ease(matrix, hyperparameters, params, runtime, candidates)
    artifact = {
        "model": "ease",
        "hyperparameters": hyperparameters,
        "weights": model.weights.cpu().numpy(),
    }
    return result, artifact, report


def _fit_ease(
    matrix: sp.csr_matrix, hyperparameters: dict, params: dict, runtime: dict, candidates: dict
) -> tuple[EASE, pd.DataFrame, dict]:
    device = resolve_device(runtime["device"])
    with stopwatch() as fit_time:
        model = EASE(hyperparameters["lambda"], device).fit(matrix)
    with stopwatch() as predict_time:
        result = _candidates(model.score, matrix, params, candidates)
    report = {
        "model": "ease",
        "fit_seconds": fit_time["seconds"],
        "predict_seconds": predict_time["seconds"],
        "device": str(device),
        "hyperparameters": hyperparameters,
        "epochs": None,
    }
    logger.info(
        "ease: fitted in %.1fs, scored in %.1fs on %s",
        fit_time["seconds"],
        predict_time["seconds"],
        device,
    )
    return model, result, report


def tune_multivae(
    matrix: sp.csr_matrix, answers: pd.DataFrame, params: dict, runtime: dict
) -> tuple[dict, pd.DataFrame]:
    """Optuna search of Multi-VAE's sizes, dropout, β cap, annealing, lr and weight decay.

    Each trial trains with early stopping; per-epoch validation recall is reported to the
    trial so the median pruner can stop poor trials early, and a trial still training when
    the tuning timeout passes is pruned at its next epoch.
    """
    device = resolve_device(runtime["device"])
    users, answers = _tuning_users(answers, params, runtime)
    fixed = params["multivae"]["hyperparameters"]
    train_config = _train_config(params)
    timeout = params["multivae"]["tuning"].get("timeout")
    deadline = None if timeout is None else time.monotonic() + float(timeout)

    def objective(trial: optuna.Trial) -> float:
        values = {**fixed, **suggest(trial, params["multivae"]["tuning"]["search_space"])}
        model = MultiVAE(MultiVAEConfig.from_params(values), device, int(runtime["seed"]))

        def recall(score_fn) -> float:
            return validation_recall(score_fn, matrix, answers, users, params["scoring_batch_size"])

        result = model.fit(matrix, train_config, pruning_evaluator(trial, recall, deadline))
        trial.set_user_attr("best_epoch", result.best_epoch)
        return result.best_score

    pruner = optuna.pruners.MedianPruner(**params["multivae"]["tuning"].get("pruner", {}))
    return _tune(
        "multivae", params, lambda: _study("multivae", matrix, params, runtime, pruner), objective
    )


def _train_config(params: dict, **overrides: Any) -> TrainConfig:
    return TrainConfig.from_params({**params["multivae"]["train"], **overrides})


def fit_multivae_valid(
    matrix: sp.csr_matrix,
    answers: pd.DataFrame,
    hyperparameters: dict,
    params: dict,
    runtime: dict,
    candidates: dict,
) -> tuple[pd.DataFrame, dict]:
    """Multi-VAE on split_train with early stopping on validation Recall@10."""
    if not params["multivae"]["enabled"]:
        out = skipped("multivae")
        return out["candidates"], out["report"]
    users = answers["user_idx"].unique()

    def recall(score_fn) -> float:
        return validation_recall(score_fn, matrix, answers, users, params["scoring_batch_size"])

    _, result, report = _fit_multivae(
        matrix, hyperparameters, params, runtime, candidates, _train_config(params), recall
    )
    return result, report


def fit_multivae_final(
    matrix: sp.csr_matrix,
    hyperparameters: dict,
    valid_report: dict,
    params: dict,
    runtime: dict,
    candidates: dict,
) -> tuple[pd.DataFrame, dict, dict]:
    """Multi-VAE on all interactions for the validation fit's best epoch count (no validation)."""
    if not params["multivae"]["enabled"]:
        out = skipped("multivae")
        return out["candidates"], out["artifact"], out["report"]
    config = _train_config(params, max_epochs=int(valid_report["epochs"]))
    model, result, report = _fit_multivae(
        matrix, hyperparameters, params, runtime, candidates, config, None
    )
    return result, {"model": "multivae", **model.state()}, report


def _fit_multivae(
    matrix: sp.csr_matrix,
    hyperparameters: dict,
    params: dict,
    runtime: dict,
    candidates: dict,
    train_config: TrainConfig,
    evaluate: Callable[[ScoreFn], float] | None,
) -> tuple[MultiVAE, pd.DataFrame, dict]:
    device = resolve_device(runtime["device"])
    model = MultiVAE(MultiVAEConfig.from_params(hyperparameters), device, int(runtime["seed"]))
    with stopwatch() as fit_time:
        result = model.fit(matrix, train_config, evaluate)
    with stopwatch() as predict_time:
        cands = _candidates(model.score, matrix, params, candidates)
    report = {
        "model": "multivae",
        "fit_seconds": fit_time["seconds"],
        "predict_seconds": predict_time["seconds"],
        "device": str(device),
        "hyperparameters": model.config.to_dict(),
        "epochs": result.best_epoch,
        "epochs_run": result.epochs_run,
        "updates": result.updates,
    }
    return model, cands, report


def model_report(
    candidates_valid: pd.DataFrame,
    answers: pd.DataFrame,
    valid_report: dict,
    final_report: dict,
    trials: pd.DataFrame,
) -> dict:
    """The M_metrics record (DESIGN.md §5), or ``{"model": M, "skipped": true}``."""
    if valid_report.get("skipped"):
        return skipped(valid_report["model"])["report"]
    states = trials["state"]
    complete = trials.loc[states == "COMPLETE", "value"]
    extra = {
        "final_fit_seconds": round(float(final_report["fit_seconds"]), 3),
        "final_predict_seconds": round(float(final_report["predict_seconds"]), 3),
        "tuning_trials": int(states.isin(["COMPLETE", "PRUNED"]).sum()),
        "tuning_pruned": int((states == "PRUNED").sum()),
        "tuning_best_value": float(complete.max()) if len(complete) else None,
    }
    for key in ("epochs_run", "updates"):
        if key in valid_report:
            extra[key] = valid_report[key]
    return model_metrics(
        valid_report["model"],
        candidates_valid,
        answers,
        fit_seconds=valid_report["fit_seconds"],
        predict_seconds=valid_report["predict_seconds"],
        device=valid_report["device"],
        hyperparameters=valid_report["hyperparameters"],
        epochs=valid_report["epochs"],
        extra=extra,
    )

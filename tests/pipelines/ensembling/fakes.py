"""Stand-in model outputs for the ensembling and reporting pipeline tests.

The model pipelines are built elsewhere; these write, at the places the catalog's dataset
factories give every model's outputs, what the model pipelines would write: three
enabled models (from the reference scorers) and the rest disabled (empty candidates,
:class:`~movie_rec.records.Skipped` metrics), into a throw-away project that has run data_processing.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pandas as pd
import scipy.sparse as sp

from movie_rec.evaluation import top_k_unseen
from movie_rec.fusion import empty_recommendations
from movie_rec.model_outputs import model_metrics
from movie_rec.models.baselines import ItemCooccurrence
from movie_rec.models.ease import EASE, EASEConfig
from movie_rec.models.markov import Markov, MarkovConfig
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.records import Skipped
from movie_rec.registry import MODELS
from tests.conftest import popular_model, run_pipeline

ENABLED = ("ease", "sasrec", "multivae")
CANDIDATES_K = 30


def _scorers(matrix: sp.csr_matrix, interactions: pd.DataFrame) -> dict:
    last_item = fitted(Markov(MarkovConfig(k=1, lags=1)), TrainingData(matrix, interactions))
    return {
        "ease": ItemCooccurrence(matrix).score,
        "sasrec": last_item.score,
        "multivae": popular_model(matrix).score,
    }


def write_fake_model_outputs(project: Path) -> None:
    """Write candidates, metrics and side files of the fake models into ``project``."""
    data = project / "data"
    output, reports = data / "07_model_output", data / "08_reporting"
    output.mkdir(parents=True, exist_ok=True)
    reports.mkdir(parents=True, exist_ok=True)
    answers = pd.read_parquet(data / "05_model_input" / "valid_answers.parquet")
    fits = {
        "valid": (
            sp.load_npz(data / "05_model_input" / "train_matrix_valid.npz").tocsr(),
            pd.read_parquet(data / "05_model_input" / "split_train.parquet"),
        ),
        "final": (
            sp.load_npz(data / "05_model_input" / "train_matrix_full.npz").tocsr(),
            pd.read_parquet(data / "03_primary" / "interactions.parquet"),
        ),
    }
    candidates = {
        split: {
            name: top_k_unseen(score, matrix, CANDIDATES_K)
            for name, score in _scorers(matrix, interactions).items()
        }
        for split, (matrix, interactions) in fits.items()
    }
    for model in MODELS:
        for split in ("valid", "final"):
            frame = candidates[split].get(model, empty_recommendations())
            frame.to_parquet(output / f"{model}_candidates_{split}.parquet")
        metrics = (
            model_metrics(
                model,
                candidates["valid"][model],
                answers,
                fit_seconds=0.1,
                predict_seconds=0.1,
                device="cpu",
                hyperparameters={},
            )
            if model in ENABLED
            else Skipped(model)
        )
        (reports / f"{model}_metrics.json").write_text(json.dumps(metrics.to_json()))
    ease = fitted(EASE(EASEConfig(lam=50.0)), TrainingData(fits["final"][0]))
    (data / "06_models").mkdir(parents=True, exist_ok=True)
    (data / "06_models" / "ease_model.pkl").write_bytes(pickle.dumps(ease))
    pd.DataFrame({"number": [0, 1, 2], "value": [0.1, 0.15, 0.12], "lambda": [10, 50, 300]}).to_csv(
        reports / "ease_optuna_trials.csv", index=False
    )
    for model, spec in MODELS.items():
        if spec.model is not None and model != "ease":
            pd.DataFrame(columns=["number", "value"]).to_csv(
                reports / f"{model}_optuna_trials.csv", index=False
            )
    pd.DataFrame(columns=["feature", "gain"]).to_csv(
        reports / "lgbm_ranker_feature_importance.csv", index=False
    )


def prepare_project(project: Path) -> None:
    """Run data_processing in ``project``, then write the fake model outputs."""
    run_pipeline(project, "data_processing")
    write_fake_model_outputs(project)

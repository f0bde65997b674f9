"""The metrics records (movie_rec.records): JSON → record → JSON gives the same JSON, a
disabled model's record says so, and the catalog's dataset saves and loads records."""

from __future__ import annotations

import json

import pytest

from movie_rec.datasets import RecordJSONDataset
from movie_rec.records import (
    EnsembleMetrics,
    FitReport,
    ModelMetrics,
    Skipped,
    Training,
    from_json,
)

RECALL = {"recall@10": 0.25, "recall@10_last": 0.125, "recall@10_random": 0.5, "users": 40}
HISTORY = [
    {"update": 100.0, "pass": 0.0, "loss": 1.0, "recall@10": 0.2, "lr": 0.001, "seconds": 0.5},
    {"update": 200.0, "pass": 1.0, "loss": None, "recall@10": 0.3, "lr": 0.001, "seconds": 1.0},
]
TRAINING = {
    "best_update": 200,
    "updates": 200,
    "evaluations": 2,
    "training_seconds": 1.0,
    "history": HISTORY,
}
FIRST_STAGE = {
    "estimated_run_minutes": 0.5,
    "final_fit_seconds": 2.0,
    "final_predict_seconds": 0.3,
    "tuning_trials": 3,
    "tuning_pruned": 1,
    "tuning_seconds": 4.5,
    "tuning_best_value": 0.31,
    "tuning_cut_short": False,
}
MULTIVAE = {
    "model": "multivae",
    **RECALL,
    "fit_seconds": 1.5,
    "predict_seconds": 0.25,
    "device": "cpu",
    "epochs": 2,
    "hyperparameters": {"hidden": 64, "layers": [600, 200]},
    **TRAINING,
    **FIRST_STAGE,
}
EASE = {
    **{key: value for key, value in MULTIVAE.items() if key not in TRAINING},
    "model": "ease",
    "epochs": None,
    "tuning_best_value": None,
}
MIX = {"2/8": 0.2, "4/6": 0.25, "6/4": 0.3, "mean": 0.25, "worst": 0.2}
RANKER = {
    "model": "lgbm_ranker",
    **RECALL,
    "fit_seconds": 10.0,
    "predict_seconds": 0.5,
    "device": "cpu",
    "epochs": 35,
    "hyperparameters": {"lgbm": {"num_leaves": 31}, "n_folds": 3},
    "fold_rounds": [30, 40],
    "extra_queries": 12,
    "candidate_recall": 0.6,
    "candidate_recall_by_source": [{"source": "ease", "recall": 0.5, "adds": 0.1}],
    "first_stage_recall@10": {"ease": 0.2},
    "by_mix": MIX,
    "first_stage_by_mix": {"ease": MIX},
    "top_features": ["ease_rank", "popularity"],
}
HALVES = {"all": RECALL, "tune": RECALL, "holdout": RECALL}
ENSEMBLE = {
    "final_choice": {
        "chosen": "weighted_rank",
        "scores": {"ease": 0.2, "weighted_rank": 0.25},
        "runner_up": "ease",
        "gain": 0.05,
        "standard_error": 0.01,
    },
    "tune_users": 20,
    "holdout_users": 20,
    "trials": 4,
    "models": {"ease": HALVES},
    "ensembles": {"weighted_rank": {**HALVES, "fit_seconds": 3.0, "predict_seconds": 0.1}},
    "by_mix": {"ensemble_weighted_rank": MIX, "ease": MIX},
    "release_filter": {"ease": {"with": RECALL, "without": RECALL}},
    "release_filter_slack": 1,
}


@pytest.mark.parametrize(
    ("record", "data"),
    [
        (ModelMetrics, MULTIVAE),
        (ModelMetrics, EASE),
        (ModelMetrics, RANKER),
        (EnsembleMetrics, ENSEMBLE),
        (EnsembleMetrics, {**ENSEMBLE, "final_choice": None, "release_filter": {}}),
    ],
)
def test_a_record_writes_back_the_json_it_was_read_from(record, data):
    read = record.from_json(json.loads(json.dumps(data)))
    assert isinstance(read, record)
    assert json.dumps(read.to_json()) == json.dumps(data)


def test_a_fit_report_keeps_its_training_and_the_run_plans_estimate():
    data = {
        "model": "multivae",
        "fit_seconds": 1.5,
        "predict_seconds": 0.25,
        "device": "cpu",
        "hyperparameters": {"hidden": 64},
        "passes": 2,
        **TRAINING,
        "estimated_run_minutes": 0.5,
    }
    report = FitReport.from_json(data)
    assert report.training == Training(**TRAINING) and report.best_update == 200
    assert report.to_json() == data


def test_records_read_by_attribute():
    multivae, ease = ModelMetrics.from_json(MULTIVAE), ModelMetrics.from_json(EASE)
    assert multivae.recall.columns("holdout_")["holdout_recall@10_last"] == 0.125
    assert multivae.best_update == 200 and ease.best_update is None and ease.training is None
    assert ease.first_stage is not None and ease.first_stage.tuning_best_value is None
    ranker = ModelMetrics.from_json(RANKER).ranker
    assert ranker is not None and ranker.first_stage_by_mix["ease"].mixes["4/6"] == 0.25
    ensemble = EnsembleMetrics.from_json(ENSEMBLE)
    assert ensemble.ensembles["weighted_rank"].halves.holdout.users == 40
    assert ensemble.release_filter["ease"].without_filter.random == 0.5


def test_a_skipped_record_is_recognised_and_its_json_says_so():
    skipped = from_json(ModelMetrics, Skipped("sasrec").to_json())
    assert skipped == Skipped("sasrec")
    assert Skipped("sasrec").to_json() == {"model": "sasrec", "skipped": True}
    assert isinstance(from_json(ModelMetrics, MULTIVAE), ModelMetrics)
    assert not Skipped.marks(MULTIVAE) and Skipped.marks({"model": "x", "skipped": True})


def test_the_dataset_saves_json_and_loads_the_record(tmp_path):
    path = tmp_path / "multivae_metrics.json"
    dataset = RecordJSONDataset(
        filepath=str(path), record="movie_rec.records.ModelMetrics", save_args={"indent": 2}
    )
    record = ModelMetrics.from_json(MULTIVAE)
    dataset.save(record)
    assert json.loads(path.read_text()) == MULTIVAE
    assert dataset.load() == record
    dataset.save(Skipped("multivae"))
    assert json.loads(path.read_text()) == {"model": "multivae", "skipped": True}
    assert dataset.load() == Skipped("multivae")
    assert [entry.name for entry in tmp_path.iterdir()] == [path.name]  # no staging file left

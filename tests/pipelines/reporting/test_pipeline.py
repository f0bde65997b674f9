"""The reporting pipeline end to end after ensembling, on fake model outputs."""

from __future__ import annotations

import re

import pandas as pd

from movie_rec.fusion import METHODS
from movie_rec.pipelines.reporting.nodes import PLOTS
from movie_rec.registry import MODELS
from tests.conftest import run_pipeline
from tests.pipelines.ensembling.fakes import ENABLED, prepare_project

TABLES = (
    "metrics.csv",
    "training_history.csv",
    "recall_by_mix.csv",
    "release_filter_ablation.csv",
    "candidate_ceiling.csv",
    "recall_by_activity.csv",
    "example_users.csv",
    "example_users_valid.csv",
)


def all_titles(project) -> set[str]:
    features = pd.read_parquet(project / "data" / "05_model_input" / "item_features.parquet")
    return set(features["title"])


def test_reporting_writes_the_tables_plots_examples_and_a_self_contained_report(kedro_project):
    prepare_project(kedro_project)
    run_pipeline(kedro_project, "ensembling", {"ensembling.tuning.n_trials": 5})
    run_pipeline(kedro_project, "reporting", {"reporting.example_users.count": 3})
    reports = kedro_project / "data" / "08_reporting"
    for name in TABLES:
        assert (reports / name).exists(), name

    table = pd.read_csv(reports / "metrics.csv")
    enabled = [model for model in MODELS if model in ENABLED]
    assert table["model"].tolist() == [*enabled, *(f"ensemble_{method}" for method in METHODS)]
    assert table[["recall@10", "holdout_recall@10", "fit_seconds"]].notna().all().all()
    assert table[["mix_mean", "mix_worst"]].notna().all().all()

    by_mix = pd.read_csv(reports / "recall_by_mix.csv")
    assert set(by_mix["list"]) == set(table["model"])
    assert by_mix["mean"].is_monotonic_decreasing

    activity = pd.read_csv(reports / "recall_by_activity.csv")
    assert set(activity["model"]) == set(table["model"])

    examples = pd.read_csv(reports / "example_users.csv")
    assert examples["user"].nunique() == 3
    assert (examples.groupby("user")["role"].value_counts().xs("recommended", level=1) == 10).all()
    recommended = examples[examples["role"] == "recommended"]
    assert recommended["reason"].notna().mean() > 0.9  # EASE explains (nearly) every movie
    first_reasons = recommended["reason"].dropna().str.split("; ").explode()
    assert len(first_reasons) > 0 and first_reasons.isin(all_titles(kedro_project)).all()
    validation = pd.read_csv(reports / "example_users_valid.csv")
    assert validation["user"].nunique() == 3
    assert validation["held_out"].dtype == bool

    for name in PLOTS:
        assert (reports / "plots" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    page = (reports / "report.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', page)) == len(PLOTS)
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page)

"""Shared fixtures: tiny synthetic data, data_processing outputs and an isolated Kedro project.

``kedro_project`` copies ``conf/`` and ``pyproject.toml`` into a temporary folder with tiny
raw data, so a test can run any pipeline through a real ``KedroSession`` without touching
the repository's ``data/``. ``run_pipeline(project, name, params)`` does that run.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader

from movie_rec.models.baselines import MostPopular, PopularConfig
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.parameters import PreprocessingSettings
from movie_rec.pipelines.data_processing import nodes as dp
from movie_rec.splits import SplitSettings
from movie_rec.synthetic import generate, write_raw

REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")

TEST_SPLIT = SplitSettings(n_last=4, n_random=6, min_history=16, seed=7)
PREPROCESSING = PreprocessingSettings()  # every step on


def popular_model(matrix) -> MostPopular:
    """The most-popular baseline fitted on ``matrix``: what every model must beat."""
    return fitted(MostPopular(PopularConfig()), TrainingData(matrix))


@pytest.fixture(scope="session")
def shipped() -> dict[str, Any]:
    """``conf/base``'s parameters, merged as a run merges them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = OmegaConfigLoader(str(REPO_ROOT / "conf"), base_env="base", default_run_env="base")
        return loader["parameters"]


@pytest.fixture(scope="session")
def tiny_raw() -> dict[str, pd.DataFrame]:
    """The ``tiny`` synthetic preset: six raw tables keyed by file name."""
    return generate("tiny", seed=3)


def process(raw: dict[str, pd.DataFrame], split: SplitSettings | None = None) -> dict:
    """Run the data_processing nodes in memory; returns every output by catalog name."""
    ratings = dp.deduplicate_ratings(raw["train_ratings.csv"])
    user_map, item_map = dp.build_id_maps(ratings)
    interactions = dp.index_interactions(ratings, user_map, item_map)
    split_train, valid_answers = dp.split_validation(interactions, split or TEST_SPLIT)
    item_directors, item_writers = dp.build_item_people(
        item_map, raw["directors.tsv"], raw["writers.tsv"]
    )
    item_features = dp.build_item_features(
        item_map, split_train, raw["titles.tsv"], raw["years.tsv"], item_directors,
        item_writers, raw["genres.tsv"], PREPROCESSING,
    )  # fmt: skip
    return {
        "user_map": user_map,
        "item_map": item_map,
        "interactions": interactions,
        "item_features": item_features,
        "item_directors": item_directors,
        "item_writers": item_writers,
        "split_train": split_train,
        "valid_answers": valid_answers,
        "train_matrix_valid": dp.interaction_matrix(split_train, user_map, item_map),
        "train_matrix_full": dp.interaction_matrix(interactions, user_map, item_map),
    }


@pytest.fixture(scope="session")
def tiny_data(tiny_raw) -> dict:
    """data_processing outputs of the tiny preset, in memory."""
    return process(tiny_raw)


@pytest.fixture(scope="session")
def sample_data() -> dict:
    """data_processing outputs of the shipped sample in ``data/01_raw``."""
    raw_dir = REPO_ROOT / "data" / "01_raw"
    raw = {
        "train_ratings.csv": pd.read_csv(raw_dir / "train_ratings.csv"),
        **{
            name: pd.read_csv(
                raw_dir / name, sep="\t", quoting=3, keep_default_na=False, na_values=[""]
            )
            for name in ("titles.tsv", "years.tsv", "directors.tsv", "writers.tsv", "genres.tsv")
        },
    }
    return process(raw, SplitSettings(n_last=4, n_random=6, min_history=16, seed=42))


def make_project(folder: Path, raw: dict[str, pd.DataFrame]) -> Path:
    """A throw-away copy of the project (conf + pyproject) in ``folder`` with ``raw`` data."""
    shutil.copytree(REPO_ROOT / "conf", folder / "conf", ignore=shutil.ignore_patterns("local"))
    (folder / "conf" / "local").mkdir()
    (folder / "src").mkdir()  # bootstrap_project wants it; the package is installed
    shutil.copy(REPO_ROOT / "pyproject.toml", folder / "pyproject.toml")
    write_raw(raw, folder / "data" / "01_raw")
    return folder


@pytest.fixture
def kedro_project(tmp_path, tiny_raw) -> Path:
    """A throw-away copy of the project (conf + pyproject) whose data/01_raw holds tiny data."""
    return make_project(tmp_path, tiny_raw)


def study_storage_dir(project: Path) -> dict[str, str]:
    """The parameter that keeps a project's Optuna studies in its own data/06_models."""
    return {"tuning.storage_dir": str(project / "data" / "06_models")}


def nested(params: dict) -> dict:
    """``{"a.b": 1}`` → ``{"a": {"b": 1}}``, as ``kedro run --params=a.b=1`` does."""
    result: dict = {}
    for key, value in params.items():
        *parents, leaf = key.split(".")
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return result


def run_pipeline(
    project: Path, pipeline: str | None = None, params: dict | None = None, **run_options
) -> None:
    """Run a pipeline of ``project`` in a real KedroSession (``None`` = ``__default__``).

    ``params`` are runtime parameters; dotted keys override nested parameters;
    ``run_options`` go to ``KedroSession.run`` (e.g. ``only_missing_outputs=True``).
    """
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=nested(params or {})) as session:
        session.run(pipeline_name=pipeline, **run_options)


# The tiny preset at this seed shares users and three movies with the shipped sample, so the
# README's examples (tests/test_readme.py) run as written both on the sample and on the tiny
# run below.
TINY_RUN_SEED = 4


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A scratch project after a plain ``kedro run`` (``__default__``, every model on, at the
    tiny settings of ``tests/test_default_pipeline.py``) on the tiny preset, run from the
    project's folder as a user would; with the repository's ``.telemetry`` consent."""
    from tests.test_default_pipeline import TINY_PARAMS

    project = tmp_path_factory.mktemp("tiny_run")
    shutil.copytree(REPO_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(REPO_ROOT / name, project / name)
    write_raw(generate("tiny", seed=TINY_RUN_SEED), project / "data" / "01_raw")
    cwd = Path.cwd()
    os.chdir(project)
    try:
        run_pipeline(project, None, {**TINY_PARAMS, **study_storage_dir(project)})
    finally:
        os.chdir(cwd)
    return project

"""Tiny settings for the general_rec pipeline, as a parameters dict and as runtime params."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, nested

TINY_OVERRIDES = {
    "ease.tuning.n_trials": 2,
    "multivae.tuning.n_trials": 2,
    "multivae.hyperparameters.hidden": 32,
    "multivae.hyperparameters.latent": 8,
    "multivae.hyperparameters.batch_size": 64,
    "multivae.train.max_epochs": 3,
    "multivae.train.patience": 2,
    "multivae.train.min_updates": 0,
    "multivae.train.progress": False,
    "multivae.tuning.search_space.hidden.choices": [16, 32],
    "multivae.tuning.search_space.latent.choices": [8],
}


def _merge(base: dict, overrides: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def tiny_runtime_params(storage_dir: Path) -> dict:
    """Dotted ``general_rec.*`` overrides for ``run_pipeline``."""
    params = {f"general_rec.{k}": v for k, v in TINY_OVERRIDES.items()}
    return {**params, "general_rec.tuning.storage_dir": str(storage_dir)}


@pytest.fixture
def general_rec_params(tmp_path) -> dict:
    """``params:general_rec`` from conf/base with tiny settings and a temporary study folder."""
    base = yaml.safe_load((REPO_ROOT / "conf/base/parameters_general_rec.yml").read_text())
    params = _merge(base["general_rec"], nested(TINY_OVERRIDES))
    params["tuning"]["storage_dir"] = str(tmp_path / "studies")
    return params


@pytest.fixture
def runtime() -> dict:
    return {"device": "cpu", "seed": 11}

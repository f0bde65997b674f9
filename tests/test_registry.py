"""One model protocol: every registered model is built from its config, fits through
``fit(data, run)`` and scores through ``score(users)``; its capabilities say the truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from movie_rec.explain import Explainer, can_fold_in
from movie_rec.models.protocol import FitRun, TrainingData
from movie_rec.models.sequential.fit import pretrain_s3rec
from movie_rec.models.sequential.s3rec import PRETRAINED, S3RecConfig, attribute_matrix
from movie_rec.models.training import TrainConfig, TrainResult
from movie_rec.registry import (
    EXPLAINABLE,
    EXPLAINER,
    FOLDS_IN,
    ITERATIVE,
    MODELS,
    SIDE_INFO,
    models_that,
    spec,
)

FIRST_STAGE = [name for name, entry in MODELS.items() if entry.model is not None]
TINY = {"max_len": 8, "hidden": 16, "heads": 2, "layers": 1, "batch_size": 64, "latent": 8}
TRAIN = TrainConfig(max_updates=2, eval_every=1, progress=False)


def test_every_model_is_built_from_its_config_dataclass_alone():
    for name in FIRST_STAGE:
        entry = spec(name)
        assert dataclasses.is_dataclass(entry.config), name
        model = entry.model(entry.config())
        assert callable(model.fit) and callable(model.score), name


def test_capabilities_agree_with_what_the_models_do():
    for name in FIRST_STAGE:
        entry = spec(name)
        model = entry.model(entry.config())
        assert entry.can(EXPLAINABLE) == Explainer.supports(model), name
        assert entry.can(FOLDS_IN) == can_fold_in(model), name
    assert EXPLAINER in models_that(EXPLAINABLE) and EXPLAINER in models_that(FOLDS_IN)
    fine_tuned = [name for name in FIRST_STAGE if PRETRAINED in spec(name).extra_inputs]
    assert fine_tuned == ["s3rec_sasrec", "s3rec_bert4rec"]
    assert all(spec(name).can(SIDE_INFO) for name in fine_tuned)


@pytest.fixture(scope="module")
def backbone(tiny_data):
    """A pre-trained S3Rec backbone of the tiny data (2 updates), for the fine-tuned models."""
    data = TrainingData(tiny_data["train_matrix_valid"], tiny_data["split_train"])
    side = [tiny_data[name] for name in ("item_features", "item_directors", "item_writers")]
    config = S3RecConfig.from_params({**TINY, "pretrain_updates": 2})
    genres = attribute_matrix(*side, data.n_items, ["genre"])
    payload, _ = pretrain_s3rec(data.sequences, genres, config, TRAIN, torch.device("cpu"), 0)
    return payload


@pytest.mark.parametrize("name", FIRST_STAGE)
def test_fit_returns_a_training_record_exactly_when_the_model_is_iterative(
    name, tiny_data, backbone
):
    entry = spec(name)
    model = entry.model(entry.config.from_params(TINY))
    data = TrainingData(tiny_data["train_matrix_valid"], tiny_data["split_train"])
    run = FitRun(seed=1, train=TRAIN, extras={PRETRAINED: backbone}, name=name)
    result = model.fit(data, run)
    assert isinstance(result, TrainResult) == entry.can(ITERATIVE)
    if result is not None:
        assert result.updates == 2
    users = np.array([0, 5, data.n_users - 1])
    scores = model.score(users)
    scores = scores.float().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    assert scores.shape == (3, data.n_items) and np.isfinite(scores).all()

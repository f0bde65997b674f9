"""The ensembling nodes in memory: any subset of models, including none."""

from __future__ import annotations

import yaml

from movie_rec import fusion
from movie_rec.parameters import EnsemblingSettings, EvaluationSettings
from movie_rec.pipelines.ensembling import nodes
from movie_rec.registry import MODELS
from tests.conftest import REPO_ROOT


def default_params() -> EnsemblingSettings:
    text = (REPO_ROOT / "conf" / "base" / "parameters_ensembling.yml").read_text()
    return EnsemblingSettings.from_params(yaml.safe_load(text)["ensembling"])


def evaluation_params() -> EvaluationSettings:
    text = (REPO_ROOT / "conf" / "base" / "parameters.yml").read_text()
    return EvaluationSettings.from_params(yaml.safe_load(text)["evaluation"])


def test_with_every_model_disabled_the_submission_is_popularity(tiny_data):
    empty = {model: fusion.empty_recommendations() for model in MODELS}
    params = default_params()
    weights, metrics, fused_valid, history = nodes.evaluate_ensembles(
        tiny_data["valid_answers"],
        tiny_data["split_train"],
        tiny_data["item_features"],
        params,
        evaluation_params(),
        **empty,
    )
    assert weights["models"] == []
    assert weights["weighted_rank"] is None
    assert metrics.models == {}
    assert fused_valid.empty and history.empty

    final = nodes.fuse_final(
        weights,
        params,
        tiny_data["interactions"],
        tiny_data["item_features"],
        tiny_data["train_matrix_full"],
        **empty,
    )
    table, _ = nodes.make_submission(
        final, tiny_data["user_map"], tiny_data["item_map"], tiny_data["train_matrix_full"]
    )
    popularity = tiny_data["train_matrix_full"].sum(axis=0).A1
    first_user_items = final[final["user_idx"] == 0].sort_values("rank")["item_idx"]
    unseen = tiny_data["train_matrix_full"][0].toarray().ravel() == 0
    assert list(popularity[first_user_items]) == sorted(popularity[unseen], reverse=True)[:10]
    assert len(table) == 10 * len(tiny_data["user_map"])

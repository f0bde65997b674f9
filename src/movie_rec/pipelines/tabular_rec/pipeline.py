"""tabular_rec: a LightGBM lambdarank ranker over the candidates of every first-stage model.

Every registered first-stage model's candidates are wired in (a disabled model's are empty
and add nothing), so a new model joins the second stage without an edit here. The nodes run
in the namespace ``lgbm_ranker``.
"""

from kedro.pipeline import Node, Pipeline

from movie_rec.registry import SECOND_STAGE, first_stage_models
from movie_rec.second_stage.holdouts import refittable_models

from .nodes import (
    HYPERPARAMETERS,
    build_features_extra,
    build_features_valid,
    rank_final,
    train_ranker,
)

MODEL = SECOND_STAGE
SIDE_TABLES = {
    "item_features": "item_features",
    "item_directors": "item_directors",
    "item_writers": "item_writers",
}


def _first_stage_inputs(fit: str) -> dict[str, str]:
    return {model: f"{model}.candidates_{fit}" for model in first_stage_models()}


def create_pipeline(**kwargs) -> Pipeline:
    valid_inputs = {
        "split_train": "split_train",
        "train_matrix_valid": "train_matrix_valid",
        **SIDE_TABLES,
        "valid_answers": "valid_answers",
        "settings": "params:tabular_rec",
        **_first_stage_inputs("valid"),
    }
    refit = refittable_models()
    extra_inputs = {
        "split_train": "split_train",
        "train_matrix_valid": "train_matrix_valid",
        **SIDE_TABLES,
        "valid_answers": "valid_answers",
        "features_valid": "features_valid",
        "settings": "params:tabular_rec",
        "split": "params:data_processing.split",
        "runtime": "params:runtime",
        "candidates": "params:candidates",
        **{model: f"{model}.candidates_valid" for model in refit},
        **{model + HYPERPARAMETERS: f"{model}.hyperparameters" for model in refit},
    }
    final_inputs = {
        "interactions": "interactions",
        "train_matrix_full": "train_matrix_full",
        **SIDE_TABLES,
        "settings": "params:tabular_rec",
        "candidates": "params:candidates",
        **_first_stage_inputs("final"),
    }
    nodes = [
        Node(
            build_features_valid,
            valid_inputs,
            ["features_valid", "candidate_ceiling"],
            name="features_valid",
        ),
        Node(build_features_extra, extra_inputs, "features_extra", name="features_extra"),
        Node(
            train_ranker,
            [
                "features_valid",
                "features_extra",
                "candidate_ceiling",
                "valid_answers",
                "params:tabular_rec",
                "params:runtime",
                "params:candidates",
                "params:evaluation",
            ],
            ["candidates_valid", "metrics", "feature_importance", "model"],
            name="train",
        ),
        Node(
            rank_final,
            {"fold_models": "model", **final_inputs},
            "candidates_final",
            name="rank_final",
        ),
    ]
    external = {*valid_inputs.values(), *extra_inputs.values(), *final_inputs.values()}
    external -= {"features_valid"}
    return Pipeline(
        nodes,
        namespace=MODEL,
        inputs={name for name in external if not name.startswith("params:")},
        parameters={name for name in external if name.startswith("params:")}
        | {"params:runtime", "params:candidates", "params:evaluation"},
    )

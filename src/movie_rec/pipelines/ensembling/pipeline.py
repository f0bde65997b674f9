"""ensembling: every registered model's candidates → tuned fusion → the validated submission."""

from kedro.pipeline import Node, Pipeline

from movie_rec.registry import MODELS

from .nodes import evaluate_ensembles, fuse_final, make_submission


def _candidates(fit: str) -> dict[str, str]:
    return {model: f"{model}.candidates_{fit}" for model in MODELS}


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                evaluate_ensembles,
                {
                    "valid_answers": "valid_answers",
                    "split_train": "split_train",
                    "item_features": "item_features",
                    "settings": "params:ensembling",
                    "evaluation": "params:evaluation",
                    **_candidates("valid"),
                },
                [
                    "ensemble_weights",
                    "ensemble_metrics",
                    "ensemble_recommendations_valid",
                    "ensemble_optuna_trials",
                ],
                name="evaluate_ensembles",
            ),
            Node(
                fuse_final,
                {
                    "ensemble_weights": "ensemble_weights",
                    "settings": "params:ensembling",
                    "interactions": "interactions",
                    "item_features": "item_features",
                    "train_matrix_full": "train_matrix_full",
                    **_candidates("final"),
                },
                "ensemble_recommendations_final",
                name="fuse_final",
            ),
            Node(
                make_submission,
                ["ensemble_recommendations_final", "user_map", "item_map", "train_matrix_full"],
                ["submission", "submission_archive"],
                name="make_submission",
            ),
        ]
    )

"""general_rec: EASE and Multi-VAE, each tuned by Optuna and fitted on split_train and on all data."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    fit_ease_final,
    fit_ease_valid,
    fit_multivae_final,
    fit_multivae_valid,
    model_report,
    tune_ease,
    tune_multivae,
)

PARAMS = ["params:general_rec", "params:runtime", "params:candidates"]


def _report_node(model: str) -> Node:
    return Node(
        model_report,
        [
            f"{model}_candidates_valid",
            "valid_answers",
            f"{model}_valid_report",
            f"{model}_final_report",
            f"{model}_optuna_trials",
        ],
        f"{model}_metrics",
        name=f"report_{model}",
    )


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                tune_ease,
                ["train_matrix_valid", "valid_answers", "params:general_rec", "params:runtime"],
                ["ease_hyperparameters", "ease_optuna_trials"],
                name="tune_ease",
            ),
            Node(
                fit_ease_valid,
                ["train_matrix_valid", "ease_hyperparameters", *PARAMS],
                ["ease_candidates_valid", "ease_valid_report"],
                name="fit_ease_valid",
            ),
            Node(
                fit_ease_final,
                ["train_matrix_full", "ease_hyperparameters", *PARAMS],
                ["ease_candidates_final", "ease_model", "ease_final_report"],
                name="fit_ease_final",
            ),
            _report_node("ease"),
            Node(
                tune_multivae,
                ["train_matrix_valid", "valid_answers", "params:general_rec", "params:runtime"],
                ["multivae_hyperparameters", "multivae_optuna_trials"],
                name="tune_multivae",
            ),
            Node(
                fit_multivae_valid,
                ["train_matrix_valid", "valid_answers", "multivae_hyperparameters", *PARAMS],
                ["multivae_candidates_valid", "multivae_valid_report"],
                name="fit_multivae_valid",
            ),
            Node(
                fit_multivae_final,
                [
                    "train_matrix_full",
                    "multivae_hyperparameters",
                    "multivae_valid_report",
                    *PARAMS,
                ],
                ["multivae_candidates_final", "multivae_model", "multivae_final_report"],
                name="fit_multivae_final",
            ),
            _report_node("multivae"),
        ]
    )

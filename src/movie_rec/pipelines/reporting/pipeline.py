"""reporting: metrics table, plots, example users and the self-contained HTML report."""

from kedro.pipeline import Node, Pipeline

from movie_rec.ensemble import MODELS

from .nodes import (
    TUNED_MODELS,
    build_example_users,
    build_metrics_table,
    build_recall_by_activity,
    draw_plots,
    render_report,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                build_metrics_table,
                {
                    "ensemble_metrics": "ensemble_metrics",
                    **{model: f"{model}_metrics" for model in MODELS},
                },
                "metrics_table",
                name="build_metrics_table",
            ),
            Node(
                build_recall_by_activity,
                {
                    "valid_answers": "valid_answers",
                    "split_train": "split_train",
                    "ensemble_recommendations_valid": "ensemble_recommendations_valid",
                    "params": "params:reporting",
                    **{model: f"{model}_candidates_valid" for model in MODELS},
                },
                "recall_by_activity",
                name="build_recall_by_activity",
            ),
            Node(
                build_example_users,
                [
                    "ensemble_recommendations_final",
                    "interactions",
                    "item_features",
                    "user_map",
                    "params:reporting",
                ],
                "example_users",
                name="build_example_users",
            ),
            Node(
                draw_plots,
                {
                    "metrics_table": "metrics_table",
                    "recall_by_activity": "recall_by_activity",
                    "ensemble_weights": "ensemble_weights",
                    "ensemble_optuna_trials": "ensemble_optuna_trials",
                    "lgbm_ranker_feature_importance": "lgbm_ranker_feature_importance",
                    **{model: f"{model}_optuna_trials" for model in TUNED_MODELS},
                },
                ["report_plots", "report_images"],
                name="draw_plots",
            ),
            Node(
                render_report,
                [
                    "metrics_table",
                    "recall_by_activity",
                    "example_users",
                    "ensemble_weights",
                    "report_images",
                ],
                "report",
                name="render_report",
            ),
        ]
    )

"""reporting: tables, plots, example users and the self-contained HTML report."""

from kedro.pipeline import Node, Pipeline

from movie_rec.registry import EXPLAINER, MODELS, models_of

from .nodes import (
    ITERATIVE_MODELS,
    PLOTS,
    TUNED_MODELS,
    build_candidate_ceiling,
    build_example_users,
    build_metrics_table,
    build_recall_by_activity,
    build_recall_by_mix,
    build_release_filter_ablation,
    build_training_history,
    draw_plots,
    render_report,
)

RANKER = models_of("tabular_rec")[0].name
# what both example tables (the submission's and validation's) read besides their lists
EXAMPLE_INPUTS = {
    "item_features": "item_features",
    "user_map": "user_map",
    "item_map": "item_map",
    "ease_model": f"{EXPLAINER}.model",
    "settings": "params:reporting",
}


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                build_metrics_table,
                {
                    "ensemble_metrics": "ensemble_metrics",
                    **{model: f"{model}.metrics" for model in MODELS},
                },
                "metrics_table",
                name="build_metrics_table",
            ),
            Node(
                build_training_history,
                {model: f"{model}.metrics" for model in ITERATIVE_MODELS},
                "training_history",
                name="build_training_history",
            ),
            Node(
                build_recall_by_mix, "ensemble_metrics", "recall_by_mix", name="build_recall_by_mix"
            ),
            Node(
                build_release_filter_ablation,
                "ensemble_metrics",
                "release_filter_ablation",
                name="build_release_filter_ablation",
            ),
            Node(
                build_candidate_ceiling,
                f"{RANKER}.metrics",
                "candidate_ceiling",
                name="build_candidate_ceiling",
            ),
            Node(
                build_recall_by_activity,
                {
                    "valid_answers": "valid_answers",
                    "split_train": "split_train",
                    "ensemble_recommendations_valid": "ensemble_recommendations_valid",
                    "settings": "params:reporting",
                    **{model: f"{model}.candidates_valid" for model in MODELS},
                },
                "recall_by_activity",
                name="build_recall_by_activity",
            ),
            Node(
                build_example_users,
                {
                    "recommendations": "ensemble_recommendations_final",
                    "history": "interactions",
                    **EXAMPLE_INPUTS,
                },
                "example_users",
                name="build_example_users",
            ),
            Node(
                build_example_users,
                {
                    "recommendations": "ensemble_recommendations_valid",
                    "history": "split_train",
                    **EXAMPLE_INPUTS,
                    "answers": "valid_answers",
                    "ensemble_weights": "ensemble_weights",
                },
                "example_users_valid",
                name="build_validation_examples",
            ),
            Node(
                draw_plots,
                {
                    "metrics_table": "metrics_table",
                    "training_history": "training_history",
                    "recall_by_activity": "recall_by_activity",
                    "ensemble_weights": "ensemble_weights",
                    "ensemble_optuna_trials": "ensemble_optuna_trials",
                    "lgbm_ranker_feature_importance": f"{RANKER}.feature_importance",
                    **{model: f"{model}.optuna_trials" for model in TUNED_MODELS},
                },
                {**{name: f"plot_{name}" for name in PLOTS}, "images": "report_images"},
                name="draw_plots",
            ),
            Node(
                render_report,
                [
                    "metrics_table",
                    "recall_by_mix",
                    "release_filter_ablation",
                    "candidate_ceiling",
                    "recall_by_activity",
                    "example_users",
                    "example_users_valid",
                    "ensemble_weights",
                    "ensemble_metrics",
                    "report_images",
                ],
                "report",
                name="render_report",
            ),
        ]
    )

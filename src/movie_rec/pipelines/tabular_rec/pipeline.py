"""tabular_rec: a LightGBM lambdarank ranker over first-stage candidates and side information.

Kedro pipelines are static, so the first-stage inputs are wired here from
:data:`FIRST_STAGE_MODELS`. It must equal ``tabular_rec.first_stage_models`` in
``conf/base/parameters_tabular_rec.yml`` (the nodes check): to rerank other models, edit
both. Any model that writes ``<model>_candidates_valid`` / ``_final`` may be named.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import build_features_final, build_features_valid, train_and_rank

FIRST_STAGE_MODELS = ("ease", "multivae")
SIDE_TABLES = {
    "item_features": "item_features",
    "item_directors": "item_directors",
    "item_writers": "item_writers",
}


def _first_stage_inputs(split: str) -> dict[str, str]:
    return {model: f"{model}_candidates_{split}" for model in FIRST_STAGE_MODELS}


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                build_features_valid,
                {
                    "split_train": "split_train",
                    "train_matrix_valid": "train_matrix_valid",
                    **SIDE_TABLES,
                    "valid_answers": "valid_answers",
                    "params": "params:tabular_rec",
                    **_first_stage_inputs("valid"),
                },
                "lgbm_ranker_features_valid",
                name="lgbm_ranker_features_valid",
            ),
            Node(
                build_features_final,
                {
                    "interactions": "interactions",
                    "train_matrix_full": "train_matrix_full",
                    **SIDE_TABLES,
                    "params": "params:tabular_rec",
                    **_first_stage_inputs("final"),
                },
                "lgbm_ranker_features_final",
                name="lgbm_ranker_features_final",
            ),
            Node(
                train_and_rank,
                [
                    "lgbm_ranker_features_valid",
                    "lgbm_ranker_features_final",
                    "valid_answers",
                    "params:tabular_rec",
                    "params:runtime",
                    "params:candidates",
                ],
                [
                    "lgbm_ranker_candidates_valid",
                    "lgbm_ranker_candidates_final",
                    "lgbm_ranker_metrics",
                    "lgbm_ranker_feature_importance",
                ],
                name="lgbm_ranker_train_and_rank",
            ),
        ]
    )

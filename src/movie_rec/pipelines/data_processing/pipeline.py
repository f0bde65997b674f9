"""data_processing: validated raw files → ids, interactions, item features, split, matrices."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    build_id_maps,
    build_item_features,
    build_item_people,
    deduplicate_ratings,
    index_interactions,
    interaction_matrix,
    split_validation,
)

# the users×items matrix of each interaction table (validation fits read split_train's)
MATRIX_HISTORIES = {"train_matrix_valid": "split_train", "train_matrix_full": "interactions"}


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(deduplicate_ratings, "raw_ratings", "ratings", name="deduplicate_ratings"),
            Node(build_id_maps, "ratings", ["user_map", "item_map"], name="build_id_maps"),
            Node(
                index_interactions,
                ["ratings", "user_map", "item_map"],
                "interactions",
                name="index_interactions",
            ),
            Node(
                build_item_people,
                ["item_map", "raw_directors", "raw_writers"],
                ["item_directors", "item_writers"],
                name="build_item_people",
            ),
            Node(
                build_item_features,
                [
                    "item_map",
                    "split_train",
                    "raw_titles",
                    "raw_years",
                    "item_directors",
                    "item_writers",
                    "raw_genres",
                    "params:data_processing.preprocessing",
                ],
                "item_features",
                name="build_item_features",
            ),
            Node(
                split_validation,
                ["interactions", "params:data_processing.split"],
                ["split_train", "valid_answers"],
                name="split_validation",
            ),
            *(
                Node(interaction_matrix, [history, "user_map", "item_map"], matrix, name=matrix)
                for matrix, history in MATRIX_HISTORIES.items()
            ),
        ]
    )

"""sequential_rec: the models of the registry that read the order of a history.

Each runs the shared model nodes of :mod:`movie_rec.pipelines.model_nodes` in its own
namespace. S3Rec pre-trains once per fit (``s3rec_pretrained_valid`` on split_train,
``s3rec_pretrained_final`` on all interactions) and the models fine-tuned from it start
from that backbone.
"""

from kedro.pipeline import Node, Pipeline

from movie_rec.models.sequential.s3rec import PRETRAINED, SECTION
from movie_rec.pipelines.model_nodes import GPU_TAG, model_pipeline
from movie_rec.registry import models_of

from .nodes import pretrain_s3rec

SIDE_DATA = ["item_features", "item_directors", "item_writers"]


def create_pipeline(**kwargs) -> Pipeline:
    pretraining = [
        Node(
            pretrain_s3rec,
            [interactions, matrix, *SIDE_DATA, "params:sequential_rec", "params:runtime"],
            f"{PRETRAINED}_{fit}",
            name=f"{SECTION}_pretrain_{fit}",
            tags=GPU_TAG,
        )
        for fit, interactions, matrix in (
            ("valid", "split_train", "train_matrix_valid"),
            ("final", "interactions", "train_matrix_full"),
        )
    ]
    models = [model_pipeline(spec.name) for spec in models_of("sequential_rec")]
    return Pipeline([*pretraining, *models])

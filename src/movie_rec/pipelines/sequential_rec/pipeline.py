"""sequential_rec: GRU4Rec, SASRec, BERT4Rec, SRGNN and S3Rec-initialised SASRec/BERT4Rec.

Per model M: ``M_validate`` (fit on split_train, early stopping) → ``M_candidates_valid``,
``M_metrics``, ``M_best_epoch``; ``M_final`` (fit on all interactions for the best epoch
count) → ``M_candidates_final``. S3Rec pre-trains once per fit (``s3rec_pretrained_valid``
on split_train, ``s3rec_pretrained_final`` on all interactions) and both fine-tuning models
start from it.
"""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from movie_rec.models.sequential.fit import MODELS

from .nodes import fit_final, fit_validation, pretrain_s3rec

SETTINGS = ["params:sequential_rec", "params:runtime", "params:candidates"]
SIDE_DATA = ["item_features", "item_directors", "item_writers"]


def _for_model(func, name: str):
    """``func`` with the model name bound, keeping its name for Kedro's log lines."""
    return update_wrapper(partial(func, name), func)


def _model_nodes(name: str) -> list[Node]:
    pretrained = name.startswith("s3rec_")
    return [
        Node(
            _for_model(fit_validation, name),
            ["split_train", "valid_answers", "train_matrix_valid", *SETTINGS]
            + (["s3rec_pretrained_valid"] if pretrained else []),
            [f"{name}_candidates_valid", f"{name}_metrics", f"{name}_best_epoch"],
            name=f"{name}_validate",
        ),
        Node(
            _for_model(fit_final, name),
            ["interactions", "train_matrix_full", f"{name}_best_epoch", *SETTINGS]
            + (["s3rec_pretrained_final"] if pretrained else []),
            f"{name}_candidates_final",
            name=f"{name}_final",
        ),
    ]


def create_pipeline(**kwargs) -> Pipeline:
    pretraining = [
        Node(
            pretrain_s3rec,
            [interactions, matrix, *SIDE_DATA, "params:sequential_rec", "params:runtime"],
            f"s3rec_pretrained_{fit}",
            name=f"s3rec_pretrain_{fit}",
        )
        for fit, interactions, matrix in (
            ("valid", "split_train", "train_matrix_valid"),
            ("final", "interactions", "train_matrix_full"),
        )
    ]
    return Pipeline(pretraining + [node for name in MODELS for node in _model_nodes(name)])

"""Stand-in first-stage candidates for the tabular_rec pipeline tests.

These tests run only ``data_processing`` and ``tabular_rec``, so they write every
registered first-stage model's candidates themselves, at the places the catalog's dataset
factories give them: ``ease`` and ``multivae`` from stand-in scorers (item co-occurrence
and most-popular through ``top_k_unseen``), every other model empty (disabled).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import scipy.sparse as sp

from movie_rec.evaluation import empty_candidates, top_k_unseen
from movie_rec.models.baselines import ItemCooccurrence, MostPopular, PopularConfig
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.registry import first_stage_models, spec

STAND_INS = {
    "ease": ItemCooccurrence,
    "multivae": lambda matrix: fitted(MostPopular(PopularConfig()), TrainingData(matrix)),
}
SPLIT_MATRIX = {"valid": "train_matrix_valid", "final": "train_matrix_full"}


def stand_in_candidates(matrix: sp.csr_matrix, model: str, k: int = 100) -> pd.DataFrame:
    """What ``model`` would write, from its stand-in scorer fitted on ``matrix``."""
    return top_k_unseen(STAND_INS[model](matrix).score, matrix, k)


def write_first_stage(project: Path, empty: tuple[str, ...] = ()) -> None:
    """Candidates of every first-stage model into ``project`` (empty for the models in
    ``empty`` and for those without a stand-in), and each model's default hyperparameters
    (what its ``tune`` node writes untuned; the ranker's extra splits refit with them)."""
    output = project / "data" / "07_model_output"
    output.mkdir(parents=True, exist_ok=True)
    models = project / "data" / "06_models"
    models.mkdir(parents=True, exist_ok=True)
    for model in first_stage_models():
        defaults = spec(model).config().to_dict()
        (models / f"{model}_hyperparameters.json").write_text(json.dumps(defaults))
    for split, matrix_name in SPLIT_MATRIX.items():
        matrix = sp.load_npz(project / "data" / "05_model_input" / f"{matrix_name}.npz").tocsr()
        for model in first_stage_models():
            frame = empty_candidates()
            if model in STAND_INS and model not in empty:
                frame = stand_in_candidates(matrix, model)
            frame.to_parquet(output / f"{model}_candidates_{split}.parquet", index=False)

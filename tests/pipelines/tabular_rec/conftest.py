"""Stand-in first-stage candidates for the tabular_rec pipeline tests.

EASE and Multi-VAE live in general_rec; these tests run only ``data_processing`` and
``tabular_rec``, so they write ``ease_*`` / ``multivae_*`` candidates themselves (item
co-occurrence and most-popular scores through ``top_k_unseen``) and declare them in the
throw-away project's ``conf/local`` catalog, whatever general_rec's catalog holds.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import scipy.sparse as sp
import yaml

from movie_rec.evaluation import top_k_unseen
from movie_rec.models.baselines import ItemCooccurrence, MostPopular

STAND_INS = {"ease": ItemCooccurrence, "multivae": MostPopular}
SPLIT_MATRIX = {"valid": "train_matrix_valid", "final": "train_matrix_full"}


def stand_in_candidates(matrix: sp.csr_matrix, model: str, k: int = 100) -> pd.DataFrame:
    """What ``model`` would write, from its stand-in scorer fitted on ``matrix``."""
    return top_k_unseen(STAND_INS[model](matrix).score, matrix, k)


def write_first_stage(project: Path, empty: tuple[str, ...] = ()) -> None:
    """Candidates of every stand-in model (EMPTY for those in ``empty``) into ``project``."""
    catalog = {}
    for model in STAND_INS:
        for split, matrix_name in SPLIT_MATRIX.items():
            matrix = sp.load_npz(project / "data" / "05_model_input" / f"{matrix_name}.npz")
            frame = stand_in_candidates(matrix.tocsr(), model)
            if model in empty:
                frame = frame.iloc[:0]
            path = Path("data/07_model_output") / f"{model}_candidates_{split}.parquet"
            (project / path.parent).mkdir(parents=True, exist_ok=True)
            frame.to_parquet(project / path, index=False)
            catalog[f"{model}_candidates_{split}"] = {
                "type": "pandas.ParquetDataset",
                "filepath": str(path),
            }
    (project / "conf" / "local" / "catalog.yml").write_text(yaml.safe_dump(catalog))

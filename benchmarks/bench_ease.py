"""EASE's cost at the competition scale: the Gram matrix, the factorisation and the top-100
unseen items for every user, for movie_rec's EASE (float32 and float64 factorisation), its
user+item EASE, and RecBole 1.2.1's EASE.

Every variant runs in its own process (so peak RSS is its own) on the same users × items
matrix of all interactions. RecBole runs in the interpreter given by ``--recbole-python``
(a separate venv with ``recbole==1.2.1`` that can also import movie_rec): its
``EASE.__init__`` (scipy ``XᵀX``, dense ``np.linalg.inv`` in float32, ``B = P / −diag P``)
and its full-sort path (``full_sort_predict``: ``X[users] @ B``, history set to −inf,
``torch.topk``).

    python benchmarks/bench_ease.py --raw-dir /tmp/comp_ease
    python benchmarks/bench_ease.py --raw-dir /tmp/comp_ease \\
        --recbole-python /tmp/recbole-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from movie_rec.evaluation import top_k_unseen
from movie_rec.models.ease import EASE, EASEConfig
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.models.user_ease import UserItemEASE, UserItemEASEConfig
from movie_rec.pipelines.data_processing import nodes as dp
from movie_rec.synthetic import generate

K = 100
BATCH_USERS = 1024
ITEM_LAM, USER_LAM, USER_WEIGHT = 660.0, 4573.0, 0.5  # the competition's hybrid EASE
VARIANTS = ("float32", "float64", "user+item", "recbole")


def interaction_matrix(raw_dir: Path | None, seed: int) -> sp.csr_matrix:
    """All interactions of the competition preset (read from ``raw_dir`` or generated)."""
    if raw_dir is None:
        ratings = generate("competition", seed=seed)["train_ratings.csv"]
    else:
        ratings = pd.read_csv(raw_dir / "train_ratings.csv")
    ratings = dp.deduplicate_ratings(ratings)
    user_map, item_map = dp.build_id_maps(ratings)
    interactions = dp.index_interactions(ratings, user_map, item_map)
    return dp.interaction_matrix(interactions, user_map, item_map)


def run_movie_rec(matrix: sp.csr_matrix, variant: str, lam: float) -> dict[str, float]:
    start = time.perf_counter()
    data = TrainingData(matrix)
    data.gram(torch.device("cpu"))  # computed once here, read by the fit
    gram_done = time.perf_counter()
    if variant == "user+item":
        model = fitted(UserItemEASE(UserItemEASEConfig(ITEM_LAM, USER_LAM, USER_WEIGHT)), data)
    else:
        dtype = torch.float32 if variant == "float32" else torch.float64
        model = fitted(EASE(EASEConfig(lam=lam), dtype), data)
    fit_done = time.perf_counter()
    top_k_unseen(model.score, matrix, K, batch_size=BATCH_USERS)
    return phases(start, gram_done, fit_done, time.perf_counter())


class RecBoleConfig(dict):
    """The keys and the ``device`` attribute RecBole's EASE reads from its Config."""

    device = torch.device("cpu")


def run_recbole(matrix: sp.csr_matrix, lam: float) -> dict[str, float]:
    """RecBole's own EASE class on a stand-in config and dataset, then its full-sort steps.

    RecBole's ``__init__`` does the Gram and the inverse in one go; the Gram is timed again
    on its own, first, to split the two phases.
    """
    # only the --recbole-python interpreter has recbole
    from recbole.model.general_recommender.ease import EASE as RecBoleEASE  # noqa: PLC0415

    n_users, n_items = matrix.shape
    config = RecBoleConfig(USER_ID_FIELD="user", ITEM_ID_FIELD="item", NEG_PREFIX="neg_")
    config.update(reg_weight=lam, device=RecBoleConfig.device)
    dataset = SimpleNamespace(
        num=lambda field: n_users if field == "user" else n_items,
        inter_matrix=lambda form: matrix,
    )
    start = time.perf_counter()
    (matrix.T @ matrix).todense()
    gram_done = time.perf_counter()
    model = RecBoleEASE(config, dataset)
    fit_done = time.perf_counter()
    for first in range(0, n_users, BATCH_USERS):
        users = torch.arange(first, min(first + BATCH_USERS, n_users))
        scores = model.full_sort_predict({"user": users}).view(len(users), n_items)
        history = matrix[users.numpy()]
        rows = np.repeat(np.arange(len(users)), np.diff(history.indptr))
        scores[
            torch.from_numpy(rows), torch.from_numpy(history.indices.astype(np.int64))
        ] = -torch.inf
        torch.topk(scores, K, dim=1)
    result = phases(start, gram_done, fit_done, time.perf_counter())
    result["factorisation"] = fit_done - gram_done - result["gram"]  # __init__ redoes the Gram
    result["total"] = fit_done - gram_done + result["predict"]
    return result


def phases(start: float, gram_done: float, fit_done: float, end: float) -> dict[str, float]:
    return {
        "gram": gram_done - start,
        "factorisation": fit_done - gram_done,
        "predict": end - fit_done,
        "total": end - start,
    }


def worker(matrix_path: Path, variant: str, lam: float) -> None:
    """One variant in this process; prints its phases and peak RSS as one JSON line."""
    matrix = sp.load_npz(matrix_path).tocsr().astype(np.float32)
    if variant == "recbole":
        result = run_recbole(matrix, lam)
    else:
        result = run_movie_rec(matrix, variant, lam)
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(json.dumps(result))


def run_variant(python: str, matrix_path: Path, variant: str, lam: float) -> dict | None:
    command = [python, __file__, "--worker", variant, "--matrix", str(matrix_path)]
    done = subprocess.run(
        [*command, "--lam", str(lam)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(f"{variant}: failed\n{done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", type=Path, default=None, help="read train_ratings.csv here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lam", type=float, default=400.0)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--recbole-python", default=None, help="interpreter with recbole 1.2.1")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--matrix", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.matrix, args.worker, args.lam)
        return

    matrix = interaction_matrix(args.raw_dir, args.seed)
    print(
        f"{matrix.shape[0]:,} users × {matrix.shape[1]:,} items, {matrix.nnz:,} interactions; "
        f"top {K} unseen for every user; {torch.get_num_threads()} torch threads; λ={args.lam:g}"
        f" (user+item: item λ={ITEM_LAM:g}, user λ={USER_LAM:g}, w={USER_WEIGHT:g})"
    )
    print(f"{'variant':<10} {'gram':>7} {'factor':>7} {'predict':>8} {'total':>7}  peak RSS")
    with tempfile.TemporaryDirectory() as folder:
        matrix_path = Path(folder) / "matrix.npz"
        sp.save_npz(matrix_path, matrix)
        for variant in args.variants:
            python = args.recbole_python if variant == "recbole" else sys.executable
            if python is None:
                print(f"{variant:<10} skipped: pass --recbole-python")
                continue
            result = run_variant(python, matrix_path, variant, args.lam)
            if result is not None:
                print(
                    f"{variant:<10} {result['gram']:6.2f}s {result['factorisation']:6.2f}s "
                    f"{result['predict']:7.2f}s {result['total']:6.2f}s  "
                    f"{result['peak_rss_gb']:.2f} GB"
                )


if __name__ == "__main__":
    main()

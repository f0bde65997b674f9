"""Benchmark: the tabular_rec pipeline (LightGBM ranker) on the competition-scale preset.

Generates (once, cached) the ``competition`` synthetic preset, runs data_processing on it
in a scratch project, writes stand-in first-stage candidates in the ``ease`` and
``multivae`` slots (item co-occurrence and last-item transitions from
``movie_rec.models.baselines``, top 100 per user; the ranker takes the top 50 of each),
then runs the tabular_rec nodes on the scratch project's catalog in a child process and
prints the time of each phase, the child's peak RSS and Recall@10 of the ranker and of
the first stages. Target on a 2-core CPU: ≤ 5 minutes and ≤ 8 GB for tabular_rec.

    python benchmarks/bench_tabular_rec.py [--regenerate] [--raw-dir DIR] [--num-threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import scipy.sparse as sp
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from common import competition_data, scratch_project, timed_kedro_run
from movie_rec.evaluation import top_k_unseen
from movie_rec.models.baselines import ItemCooccurrence, LastItemTransition
from movie_rec.models.sequences import user_sequences
from movie_rec.pipelines.tabular_rec import nodes
from movie_rec.pipelines.tabular_rec.pipeline import FIRST_STAGE_MODELS

STAND_IN_K = 100


def write_stand_ins(project: Path) -> None:
    """``ease``/``multivae`` candidate files from the baselines, fitted per split."""
    inputs = project / "data" / "05_model_input"
    histories = {
        "valid": pd.read_parquet(inputs / "split_train.parquet"),
        "final": pd.read_parquet(project / "data" / "03_primary" / "interactions.parquet"),
    }
    out = project / "data" / "07_model_output"
    out.mkdir(parents=True, exist_ok=True)
    for split, matrix_name in (("valid", "train_matrix_valid"), ("final", "train_matrix_full")):
        matrix = sp.load_npz(inputs / f"{matrix_name}.npz").tocsr()
        sequences = user_sequences(histories[split], matrix.shape[0])
        scorers = {
            "ease": ItemCooccurrence(matrix).score,
            "multivae": LastItemTransition(sequences, matrix.shape[1]).score,
        }
        for model, score in scorers.items():
            candidates = top_k_unseen(score, matrix, STAND_IN_K)
            candidates.to_parquet(out / f"{model}_candidates_{split}.parquet", index=False)


def run_nodes(project: Path, num_threads: int) -> None:
    """Child process: the tabular_rec nodes on the project's catalog, timed phase by phase."""
    bootstrap_project(project)
    runtime_params = {"tabular_rec": {"num_threads": num_threads}}
    with KedroSession.create(project_path=project, runtime_params=runtime_params) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.params
        side = {
            name: catalog.load(name) for name in ("item_features", "item_directors", "item_writers")
        }
        answers = catalog.load("valid_answers")
        timings = {}
        started = time.perf_counter()
        features_valid = nodes.build_features_valid(
            catalog.load("split_train"), catalog.load("train_matrix_valid"), **side,
            valid_answers=answers, params=params["tabular_rec"],
            **{m: catalog.load(f"{m}_candidates_valid") for m in FIRST_STAGE_MODELS},
        )  # fmt: skip
        timings["candidates + features (validation fit)"] = time.perf_counter() - started
        started = time.perf_counter()
        features_final = nodes.build_features_final(
            catalog.load("interactions"), catalog.load("train_matrix_full"), **side,
            params=params["tabular_rec"],
            **{m: catalog.load(f"{m}_candidates_final") for m in FIRST_STAGE_MODELS},
        )  # fmt: skip
        timings["candidates + features (final fit)"] = time.perf_counter() - started
        started = time.perf_counter()
        _, _, metrics, importance = nodes.train_and_rank(
            features_valid, features_final, answers, params["tabular_rec"], params["runtime"],
            params["candidates"],
        )  # fmt: skip
        timings["train + rank"] = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rows": {"valid": len(features_valid), "final": len(features_final)},
                "timings": timings,
                "metrics": {k: metrics[k] for k in metrics if k != "hyperparameters"},
                "top_features": importance.head(10).to_dict("records"),
                "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
            }
        )
    )


def report(result: dict, num_threads: int) -> None:
    timings, metrics = result["timings"], result["metrics"]
    total = sum(timings.values())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"LightGBM threads: {num_threads}")
    print(
        f"candidate rows: {result['rows']['valid']:,} (validation), {result['rows']['final']:,} (final)"
    )
    for phase, seconds in timings.items():
        print(f"  {phase}: {seconds:.1f} s")
    print(f"  of which LightGBM training (5 folds + final): {metrics['fit_seconds']:.1f} s")
    print(f"tabular_rec total: {total:.1f} s (target ≤ 300 s)")
    print(f"tabular_rec peak RSS: {result['peak_rss_gb']:.2f} GB (target ≤ 8 GB)")
    print(f"fold rounds: {metrics['fold_rounds']}; final rounds: {metrics['epochs']}")
    print(f"candidate recall (answers inside the union): {metrics['candidate_recall']:.4f}")
    print(
        f"Recall@10 lgbm_ranker (out of fold): {metrics['recall@10']:.4f} "
        f"(last {metrics['recall@10_last']:.4f}, random {metrics['recall@10_random']:.4f})"
    )
    for name, recall in metrics["first_stage_recall@10"].items():
        print(f"Recall@10 first stage {name} (stand-in): {recall:.4f}")
    print("top features (gain): " + ", ".join(f["feature"] for f in result["top_features"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regenerate", action="store_true", help="regenerate the cached data")
    parser.add_argument("--raw-dir", type=Path, help="competition-format files to use instead")
    parser.add_argument("--num-threads", type=int, default=1, help="LightGBM threads (0 = all)")
    parser.add_argument("--run-nodes", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_nodes:
        run_nodes(args.run_nodes, args.num_threads)
        return
    raw_dir = args.raw_dir or competition_data(regenerate=args.regenerate)
    with tempfile.TemporaryDirectory() as root:
        project = scratch_project(Path(root))
        seconds, _ = timed_kedro_run(
            project, "--pipeline=data_processing", f"--params=raw_dir={raw_dir}"
        )
        print(f"data_processing: {seconds:.1f} s")
        started = time.perf_counter()
        write_stand_ins(project)
        print(f"stand-in first stages: {time.perf_counter() - started:.1f} s (not tabular_rec)")
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--run-nodes",
                str(project),
                "--num-threads",
                str(args.num_threads),
            ],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        )
    report(json.loads(child.stdout.strip().splitlines()[-1]), args.num_threads)


if __name__ == "__main__":
    main()

"""Benchmark: the LightGBM ranker's features and training on the competition-scale preset.

Generates (once, cached) the ``competition`` synthetic preset and runs data_processing on it
in a scratch project. A child process then loads its outputs, builds eight stand-in
first-stage candidate lists per split (top 100 per user: item co-occurrence, last-item
transitions, Markov chains voted by the last 1, 3 and 10 movies, and three jittered copies
of co-occurrence and Markov that agree only in part, as real models do), and runs the
second stage as tabular_rec does (``second_stage/features.py`` then ``second_stage/ranker.py``):
candidate union (each stand-in's ``tabular_rec.top_n`` + ``n_popular``), features for the
validation and the final fit, ``n_folds``-fold out-of-fold training, the final ranker and
the final ranking (the ranker's parameters: ``conf/base/parameters_tabular_rec.yml``).
Prints the seconds of each phase, the child's peak RSS and Recall@10 of the ranker and of
each stand-in. Target on a 2-core CPU: ≤ 8 GB.

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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from common import REPO_ROOT, cached_preset, scratch_project, timed_kedro_run
from movie_rec.evaluation import recall_at_k, top_k_unseen
from movie_rec.models.baselines import ItemCooccurrence
from movie_rec.models.markov import Markov, MarkovConfig
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.models.sequences import user_sequences
from movie_rec.parameters import TabularSettings
from movie_rec.second_stage import candidates as rc
from movie_rec.second_stage import features as rf
from movie_rec.second_stage import ranker

STAND_IN_K = 100
JITTER = 0.5  # log-normal noise on the scores of the jittered stand-ins


def jittered(candidates: pd.DataFrame, seed: int, keep: int) -> pd.DataFrame:
    """The ``keep`` best of ``candidates`` after multiplying each score by log-normal noise."""
    rng = np.random.default_rng(seed)
    noisy = candidates.assign(
        score=candidates["score"] * np.exp(JITTER * rng.standard_normal(len(candidates)))
    )
    noisy = noisy.sort_values(["user_idx", "score"], ascending=[True, False], kind="stable")
    noisy["rank"] = noisy.groupby("user_idx").cumcount() + 1
    return noisy[noisy["rank"] <= keep].reset_index(drop=True)


def stand_ins(history: pd.DataFrame, matrix: sp.csr_matrix) -> dict[str, pd.DataFrame]:
    """Eight first-stage candidate lists (top ``STAND_IN_K`` per user) fitted on one split."""
    sequences = user_sequences(history, matrix.shape[0])
    n_items = matrix.shape[1]
    scorers: dict[str, Callable] = {
        "cooc": ItemCooccurrence(matrix).score,
        "last_item": fitted(
            Markov(MarkovConfig(k=1, lags=1)), TrainingData.of_sequences(sequences, n_items)
        ).score,
        "markov_1": fitted(
            Markov(MarkovConfig(k=1)), TrainingData.of_sequences(sequences, n_items)
        ).score,
        "markov_3": fitted(
            Markov(MarkovConfig(k=3)), TrainingData.of_sequences(sequences, n_items)
        ).score,
        "markov_10": fitted(
            Markov(MarkovConfig(k=10, lags=5)), TrainingData.of_sequences(sequences, n_items)
        ).score,
    }
    deep = {name: top_k_unseen(score, matrix, 2 * STAND_IN_K) for name, score in scorers.items()}
    lists = {name: frame[frame["rank"] <= STAND_IN_K] for name, frame in deep.items()}
    lists["cooc_jitter_1"] = jittered(deep["cooc"], 1, STAND_IN_K)
    lists["cooc_jitter_2"] = jittered(deep["cooc"], 2, STAND_IN_K)
    lists["markov_jitter"] = jittered(deep["markov_3"], 3, STAND_IN_K)
    return lists


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run_phases(project: Path, num_threads: int) -> None:
    """Child process: the second stage on the project's data, timed phase by phase."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        catalog = session.load_context().catalog
        data = {
            name: catalog.load(name)
            for name in (
                "split_train", "interactions", "train_matrix_valid", "train_matrix_full",
                "valid_answers", "item_features", "item_directors", "item_writers",
            )
        }  # fmt: skip
    side = [data["item_features"], data["item_directors"], data["item_writers"]]
    answers = data["valid_answers"]
    answered = np.unique(answers["user_idx"].to_numpy())
    splits = {
        "valid": (data["split_train"], data["train_matrix_valid"].tocsr(), answered),
        "final": (data["interactions"], data["train_matrix_full"].tocsr(), None),
    }
    tabular = TabularSettings.from_params(
        yaml.safe_load((REPO_ROOT / "conf/base/parameters_tabular_rec.yml").read_text())[
            "tabular_rec"
        ]
    )
    top_n, n_folds = tabular.top_n, tabular.n_folds
    timings, rss, rows, features, first_recall = {}, {}, {}, {}, {}

    def phase(name: str, started: float) -> None:
        timings[name] = time.perf_counter() - started
        rss[name] = peak_rss_gb()

    for split, (history, matrix, users) in splits.items():
        started = time.perf_counter()
        first_stage = stand_ins(history, matrix)
        if users is not None:
            first_stage = {n: c[c["user_idx"].isin(users)] for n, c in first_stage.items()}
            first_recall = {n: recall_at_k(c, answers)["recall@10"] for n, c in first_stage.items()}
        phase(f"stand-in first stages ({split}; not tabular_rec)", started)
        started = time.perf_counter()
        popular = rc.popular_candidates(matrix, tabular.n_popular, users)
        pairs = rc.candidate_union(first_stage, popular, top_n, matrix, users)
        phase(f"candidate union ({split})", started)
        if users is not None:
            started = time.perf_counter()
            by_source = rc.candidate_recall_by_source(first_stage, popular, answers, top_n)
            phase("candidate recall by source", started)
        started = time.perf_counter()
        features[split] = rf.build_features(
            pairs, first_stage, history, matrix, *side, tabular.features()
        )
        phase(f"features ({split})", started)
        rows[split] = len(features[split])
        del first_stage, popular, pairs

    config = replace(tabular.ranker(seed=42), num_threads=num_threads)
    labels = rc.label_pairs(features["valid"], answers)
    started = time.perf_counter()
    oof = ranker.out_of_fold_scores(features["valid"], labels, n_folds, config)
    phase(f"out-of-fold training ({n_folds} folds x {config.bags} bags)", started)
    started = time.perf_counter()
    ranked_valid = ranker.rank_candidates(features["valid"], oof.scores, STAND_IN_K)
    ranker.rank_candidates(
        features["final"],
        ranker.mean_prediction(oof.final_models(), features["final"]),
        STAND_IN_K,
    )
    phase("predict + rank (final)", started)
    print(
        json.dumps(
            {
                "rows": rows,
                "columns": len(rf.feature_columns(features["valid"])),
                "timings": timings,
                "rss": rss,
                "fold_rounds": oof.best_iterations,
                "recall": recall_at_k(ranked_valid, answers),
                "first_stage_recall": first_recall,
                "by_source": by_source.to_dict("records"),
                "top_features": ranker.feature_importance(
                    [model.booster for bag in oof.models for model in bag]
                )["feature"]
                .head(12)
                .tolist(),
                "peak_rss_gb": peak_rss_gb(),
            }
        )
    )


def report(result: dict, num_threads: int) -> None:
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"LightGBM threads: {num_threads}")
    rows = result["rows"]
    print(
        f"candidate rows: {rows['valid']:,} (validation), {rows['final']:,} (final), "
        f"{result['columns']} feature columns"
    )
    second_stage = 0.0
    for phase, seconds in result["timings"].items():
        print(f"  {phase}: {seconds:.1f} s (peak RSS so far {result['rss'][phase]:.2f} GB)")
        second_stage += 0.0 if "not tabular_rec" in phase else seconds
    print(f"second stage total (no stand-ins): {second_stage:.1f} s")
    print(f"peak RSS: {result['peak_rss_gb']:.2f} GB (target ≤ 8 GB)")
    print(f"fold rounds: {result['fold_rounds']}")
    recall = result["recall"]
    print(
        f"Recall@10 lgbm_ranker (out of fold): {recall['recall@10']:.4f} "
        f"(last {recall['recall@10_last']:.4f}, random {recall['recall@10_random']:.4f})"
    )
    for name, value in result["first_stage_recall"].items():
        print(f"Recall@10 stand-in {name}: {value:.4f}")
    print("candidate recall by source (each model's top_n):")
    print(pd.DataFrame(result["by_source"]).round(4).to_string(index=False))
    print("top features (gain): " + ", ".join(result["top_features"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regenerate", action="store_true", help="regenerate the cached data")
    parser.add_argument("--raw-dir", type=Path, help="competition-format files to use instead")
    parser.add_argument("--num-threads", type=int, default=1, help="LightGBM threads (0 = all)")
    parser.add_argument("--run-phases", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_phases:
        run_phases(args.run_phases, args.num_threads)
        return
    raw_dir = args.raw_dir or cached_preset("competition", regenerate=args.regenerate)
    with tempfile.TemporaryDirectory() as root:
        project = scratch_project(Path(root))
        seconds, _ = timed_kedro_run(
            project, "--pipelines=data_processing", f"--params=raw_dir={raw_dir}"
        )
        print(f"data_processing: {seconds:.1f} s")
        child = subprocess.run(
            [sys.executable, __file__, "--run-phases", str(project),
             "--num-threads", str(args.num_threads)],
            check=True, capture_output=True, text=True,
            env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        )  # fmt: skip
    report(json.loads(child.stdout.strip().splitlines()[-1]), args.num_threads)


if __name__ == "__main__":
    main()

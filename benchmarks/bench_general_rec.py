"""Speed, memory and validation Recall@10 of EASE and Multi-VAE on a synthetic preset.

Prints, per model: fit seconds, predict seconds (top-100 unseen for every user), peak
resident memory during the model's phase (and peak GPU memory on CUDA) and validation
Recall@10 (overall, last, random). Targets on 2 CPU cores at the ``competition`` preset:
EASE fit + predict ≤ 60 s and ≤ 6 GB peak RSS; Multi-VAE ≤ 60 s per epoch.

    python benchmarks/bench_general_rec.py                       # competition preset, auto device
    python benchmarks/bench_general_rec.py --raw-dir /tmp/comp   # reuse generated raw files
    python benchmarks/bench_general_rec.py --preset sample --multivae-epochs 20
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import psutil
import torch

from movie_rec.evaluation import recall_at_k, top_k_unseen
from movie_rec.models.baselines import MostPopular
from movie_rec.models.ease import EASE
from movie_rec.models.multivae import MultiVAE, MultiVAEConfig
from movie_rec.models.training import TrainConfig
from movie_rec.models.tuning import validation_recall
from movie_rec.pipelines.data_processing import nodes as dp
from movie_rec.runtime import resolve_device
from movie_rec.synthetic import generate

SPLIT = {"n_last": 4, "n_random": 6, "min_history": 16, "seed": 42}
K = 100


@contextmanager
def peak_rss() -> Iterator[dict[str, float]]:
    """Peak resident memory (GB) of this process while the block runs, sampled every 20 ms."""
    process, result, done = psutil.Process(), {"gb": 0.0}, threading.Event()

    def sample() -> None:
        while not done.is_set():
            result["gb"] = max(result["gb"], process.memory_info().rss / 1e9)
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()
        result["gb"] = max(result["gb"], process.memory_info().rss / 1e9)


def load_ratings(preset: str, raw_dir: Path | None, seed: int) -> pd.DataFrame:
    if raw_dir is not None:
        return pd.read_csv(raw_dir / "train_ratings.csv")
    return generate(preset, seed=seed)["train_ratings.csv"]


def prepare(ratings: pd.DataFrame) -> dict:
    """The data_processing outputs this benchmark needs, computed in memory."""
    ratings = dp.deduplicate_ratings(ratings)
    user_map, item_map = dp.build_id_maps(ratings)
    interactions = dp.index_interactions(ratings, user_map, item_map)
    split_train, answers = dp.split_validation(interactions, SPLIT)
    return {
        "matrix": dp.interaction_matrix(split_train, user_map, item_map),
        "answers": answers,
    }


def gpu_peak_gb(device: torch.device) -> str:
    if device.type != "cuda":
        return "n/a"
    return f"{torch.cuda.max_memory_allocated(device) / 1e9:.2f}"


def reset_gpu_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def report(name: str, fit: float, predict: float, rss: float, gpu: str, metrics: dict) -> None:
    print(
        f"{name:<12} fit {fit:8.2f}s  predict {predict:7.2f}s  peak RSS {rss:5.2f} GB  "
        f"peak GPU {gpu} GB  recall@10 {metrics['recall@10']:.4f} "
        f"(last {metrics['recall@10_last']:.4f}, random {metrics['recall@10_random']:.4f})"
    )


def bench_ease(data: dict, lam: float, device: torch.device) -> None:
    matrix = data["matrix"]
    reset_gpu_peak(device)
    with peak_rss() as rss:
        start = time.perf_counter()
        model = EASE(lam, device).fit(matrix)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        candidates = top_k_unseen(model.score, matrix, K)
        predict = time.perf_counter() - start
    metrics = recall_at_k(candidates, data["answers"])
    report(f"ease λ={lam:g}", fit, predict, rss["gb"], gpu_peak_gb(device), metrics)
    print(f"{'':<12} EASE fit + predict for all users: {fit + predict:.2f}s (target ≤ 60 s on CPU)")


def bench_multivae(data: dict, epochs: int, device: torch.device, seed: int) -> None:
    matrix, answers = data["matrix"], data["answers"]
    users = answers["user_idx"].unique()
    model = MultiVAE(MultiVAEConfig(), device, seed)
    reset_gpu_peak(device)
    with peak_rss() as rss:
        result = model.fit(
            matrix,
            TrainConfig(max_epochs=epochs, patience=epochs, progress=False),
            lambda score_fn: validation_recall(score_fn, matrix, answers, users),
        )
        start = time.perf_counter()
        candidates = top_k_unseen(model.score, matrix, K)
        predict = time.perf_counter() - start
    metrics = recall_at_k(candidates, answers)
    report(f"multivae×{epochs}", result.seconds, predict, rss["gb"], gpu_peak_gb(device), metrics)
    for record in result.history:
        print(
            f"{'':<12} epoch {record['epoch']}: {record['seconds']:.2f}s (training + validation), "
            f"loss {record['loss']:.2f}, recall@10 {record['recall@10']:.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="competition")
    parser.add_argument("--raw-dir", type=Path, default=None, help="read train_ratings.csv here")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--lam", type=float, default=400.0)
    parser.add_argument("--multivae-epochs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["ease", "multivae"])
    args = parser.parse_args()

    device = resolve_device(args.device)
    start = time.perf_counter()
    data = prepare(load_ratings(args.preset, args.raw_dir, args.seed))
    matrix = data["matrix"]
    print(
        f"data: {matrix.shape[0]:,} users × {matrix.shape[1]:,} items, {matrix.nnz:,} training "
        f"interactions, prepared in {time.perf_counter() - start:.1f}s; device {device}, "
        f"{torch.get_num_threads()} torch threads"
    )
    popular = recall_at_k(top_k_unseen(MostPopular(matrix).score, matrix, 10), data["answers"])
    print(f"{'popular':<12} recall@10 {popular['recall@10']:.4f}")
    if "ease" in args.models:
        bench_ease(data, args.lam, device)
    if "multivae" in args.models:
        bench_multivae(data, args.multivae_epochs, device, args.seed)


if __name__ == "__main__":
    main()

"""Benchmark: the sequential models on the competition-scale preset (not a test).

Generates (once, cached) the ``competition`` synthetic preset, runs the data_processing
nodes in memory, then trains each model for a few epochs on split_train with the shared
loop and prints, per model: seconds of every epoch (training plus the validation pass),
peak memory (CUDA allocator peak on a GPU, process RSS on the CPU) and the validation
Recall@10 (overall, last, random) of the best epoch. Target on one H100-class GPU: SASRec
and BERT4Rec ≤ 10 s an epoch at max_len 200 over all 31,360 users.

    python benchmarks/bench_sequential_rec.py [--epochs 3] [--models sasrec bert4rec]
        [--device auto] [--max-len 200] [--users N] [--num-threads N]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd
import torch
import yaml

from common import RAW_FILES, REPO_ROOT, competition_data
from movie_rec.evaluation import recall_at_k
from movie_rec.models.sequences import user_sequences
from movie_rec.models.sequential import fit as seq
from movie_rec.models.sequential.s3rec import attribute_matrix
from movie_rec.pipelines.data_processing import nodes as dp
from movie_rec.pipelines.sequential_rec.nodes import model_settings
from movie_rec.runtime import resolve_device, seed_everything

SEED = 42


def processed(raw_dir, users: int | None) -> dict:
    """data_processing outputs in memory (optionally only the first ``users`` users)."""
    read = {
        name: pd.read_csv(raw_dir / name, sep="," if name.endswith(".csv") else "\t")
        for name in RAW_FILES
    }
    ratings = dp.deduplicate_ratings(read["train_ratings.csv"])
    if users:
        ratings = ratings[ratings["user"].isin(ratings["user"].drop_duplicates().head(users))]
    conf = yaml.safe_load((REPO_ROOT / "conf/base/parameters_data_processing.yml").read_text())
    conf = conf["data_processing"]
    user_map, item_map = dp.build_id_maps(ratings)
    interactions = dp.index_interactions(ratings, user_map, item_map)
    features = dp.build_item_features(
        item_map, interactions, read["titles.tsv"], read["years.tsv"], read["directors.tsv"],
        read["writers.tsv"], read["genres.tsv"], conf["preprocessing"],
    )  # fmt: skip
    split_train, answers = dp.split_validation(interactions, conf["split"])
    return {
        "split_train": split_train,
        "valid_answers": answers,
        "matrix": dp.interaction_matrix(split_train, user_map, item_map),
        "features": features,
    }


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1024**3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def bench_model(name: str, data: dict, params: dict, args, device: torch.device) -> None:
    settings = {**model_settings(params, name), "max_epochs": args.epochs, "patience": args.epochs}
    settings.update(progress=False, min_updates=0)
    if args.max_len and name != "srgnn":
        settings["max_len"] = args.max_len
    matrix = data["matrix"]
    sequences = user_sequences(data["split_train"], matrix.shape[0])
    seed_everything(SEED)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    pretrained = None
    if name.startswith("s3rec_"):
        pre = {**model_settings(params, "s3rec"), "pretrain_epochs": 1, "progress": False}
        pre["max_len"] = settings.get("max_len", pre["max_len"])
        attributes = attribute_matrix(*data["features"], matrix.shape[1], list(pre["attributes"]))
        started = time.perf_counter()
        pretrained, _ = seq.pretrain_s3rec(sequences, attributes, pre, device, SEED)
        print(f"{name}: S3Rec pre-training epoch {time.perf_counter() - started:.1f} s")
    model = seq.build_model(name, matrix.shape[1], settings, SEED, pretrained)
    evaluate = seq.evaluator(model, sequences, matrix, data["valid_answers"], device)
    result = seq.fit(model, sequences, settings, device, SEED, name, evaluate)
    epochs = ", ".join(f"{row['seconds']:.1f}" for row in result.history)
    candidates = seq.predict(model, sequences, matrix, 10, device)
    recall = recall_at_k(candidates, data["valid_answers"])
    print(
        f"{name:15s} epoch seconds [{epochs}]  peak memory {peak_memory_gb(device):.2f} GB  "
        f"recall@10 {recall['recall@10']:.4f} last {recall['recall@10_last']:.4f} "
        f"random {recall['recall@10_random']:.4f}  (best epoch {result.best_epoch})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(seq.MODELS), choices=seq.MODELS)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--max-len", type=int, default=None, help="override every max_len but SRGNN's"
    )
    parser.add_argument("--users", type=int, default=None, help="only the first N users")
    parser.add_argument("--num-threads", type=int, default=None)
    args = parser.parse_args()
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    device = resolve_device(args.device)
    params = yaml.safe_load((REPO_ROOT / "conf/base/parameters_sequential_rec.yml").read_text())
    started = time.perf_counter()
    data = processed(competition_data(), args.users)
    n_users, n_items = data["matrix"].shape
    lengths = np.diff(data["matrix"].indptr)
    print(
        f"data: {n_users} users, {n_items} items, {data['matrix'].nnz} training interactions "
        f"(mean history {lengths.mean():.0f}), prepared in {time.perf_counter() - started:.1f} s; "
        f"device {device}, torch threads {torch.get_num_threads()}"
    )
    for name in args.models:
        bench_model(name, data, params["sequential_rec"], args, device)


if __name__ == "__main__":
    main()

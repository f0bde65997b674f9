"""Benchmark: speed and learning of the sequential models (not a test).

Three measurements, each printed as a table row:

* ``speed``: optimizer updates per second of every sequential model (the configured
  defaults, ``progress`` off) over ``--updates`` updates after two warm-up updates, on the
  competition-scale preset (generated once and cached, see ``common.cached_preset``)
  or the shipped sample; plus the windows and updates one pass over every history takes,
  and what a pass of SASRec costs in seconds at that rate.
* ``pass``: seconds of one real pass of SASRec over every training window (no estimate).
* ``losses``: SASRec with the full softmax (``loss: ce``) against the sampled softmax
  (``loss: sampled``) on the same data and budget: updates per second and validation
  Recall@10 overall / last / random with early stopping on the configured signal.
* ``configs``: any list of configurations (``--configs sasrec:hidden=128,lr=0.003 ...``;
  by default the grid behind the current defaults) trained the same way, ``--jobs`` at a
  time: how the defaults in ``parameters_sequential_rec.yml`` were chosen; ``--curves``
  also prints each run's validation recall at every evaluation.

    python benchmarks/bench_sequential_rec.py speed [--data competition|sample] [--updates 20]
    python benchmarks/bench_sequential_rec.py pass [--data competition]
    python benchmarks/bench_sequential_rec.py losses [--data sample] [--max-updates 2000]
    python benchmarks/bench_sequential_rec.py pass --raw-dir DIR   # the raw files of DIR
    python benchmarks/bench_sequential_rec.py configs --data sample --device cuda --jobs 14
    python benchmarks/bench_sequential_rec.py configs --data sample --curves \
        --configs bert4rec --set eval_every=200 patience=10 max_updates=8000

Common options: ``--device auto``, ``--num-threads N``, ``--models ...``, ``--users N``
(only the first N users), ``--set key=value`` (override a hyperparameter or train key).
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from common import RAW_FILES, REPO_ROOT, cached_preset
from movie_rec.evaluation import recall_at_k, top_k_unseen
from movie_rec.models.sequences import user_sequences
from movie_rec.models.sequential import fit as seq
from movie_rec.models.sequential.s3rec import PRETRAINED, SECTION, S3RecConfig, attribute_matrix
from movie_rec.models.training import TrainConfig, train
from movie_rec.parameters import PreprocessingSettings, model_source
from movie_rec.pipelines.data_processing import nodes as dp
from movie_rec.registry import MODELS, spec
from movie_rec.runtime import resolve_device, seed_everything
from movie_rec.splits import SplitSettings

SEED = 42
NEURAL = tuple(name for name, entry in MODELS.items() if isinstance(entry.model, seq.Neural))
# The grid behind the current defaults (docs/results.md, "The sequence models' defaults").
DEFAULT_CONFIGS = (
    "sasrec", "sasrec:layers=2", "sasrec:hidden=128", "sasrec:hidden=128,batch_size=512",
    "sasrec:dropout=0.3", "sasrec:max_len=100", "sasrec:horizon=1", "sasrec:horizon_decay=0.7",
    "sasrec:batch_size=256,lr=0.003", "gru4rec", "gru4rec:dropout=0.2,horizon=1",
    "gru4rec:hidden=128", "bert4rec", "bert4rec:hidden=128",
)  # fmt: skip


def processed(raw_dir: Path, users: int | None, split_seed: int | None = None) -> dict[str, Any]:
    """data_processing outputs in memory (optionally only the first ``users`` users; the
    split's seed from the parameters unless ``split_seed``)."""
    read = {
        name: pd.read_csv(
            raw_dir / name,
            sep="," if name.endswith(".csv") else "\t",
            **({} if name.endswith(".csv") else {"quoting": 3, "keep_default_na": False}),
        )
        for name in RAW_FILES
    }
    ratings = dp.deduplicate_ratings(read["train_ratings.csv"])
    if users:
        ratings = ratings[ratings["user"].isin(ratings["user"].drop_duplicates().head(users))]
    conf = yaml.safe_load((REPO_ROOT / "conf/base/parameters_data_processing.yml").read_text())
    conf = conf["data_processing"]
    user_map, item_map = dp.build_id_maps(ratings)
    interactions = dp.index_interactions(ratings, user_map, item_map)
    split = conf["split"] if split_seed is None else {**conf["split"], "seed": split_seed}
    split_train, answers = dp.split_validation(interactions, SplitSettings.from_params(split))
    directors, writers = dp.build_item_people(item_map, read["directors.tsv"], read["writers.tsv"])
    features = dp.build_item_features(
        item_map, split_train, read["titles.tsv"], read["years.tsv"], directors, writers,
        read["genres.tsv"], PreprocessingSettings.from_params(conf["preprocessing"]),
    )  # fmt: skip
    matrix = dp.interaction_matrix(split_train, user_map, item_map)
    return {
        "sequences": user_sequences(split_train, matrix.shape[0]),
        "answers": answers,
        "matrix": matrix,
        "people": (features, directors, writers),
    }


def sequential_params() -> dict[str, Any]:
    """The ``sequential_rec`` section of ``conf/base/parameters_sequential_rec.yml``."""
    path = REPO_ROOT / "conf/base/parameters_sequential_rec.yml"
    return yaml.safe_load(path.read_text())["sequential_rec"]


def settings_of(
    params: dict[str, Any], name: str, config: type, overrides: list[str]
) -> dict[str, Any]:
    """A model's resolved hyperparameters and train keys, flat, with overrides."""
    settings = model_source("sequential_rec", name, params).settings(config)
    flat = {**settings.hyperparameters.to_dict(), **settings.train.to_dict()}
    flat["stop_on"] = settings.stop_on
    flat["progress"] = False
    for item in overrides:
        key, value = item.split("=", 1)
        flat[key] = yaml.safe_load(value)
    return flat


def built(name: str, data: dict, params: dict, args: argparse.Namespace, device: torch.device):
    """The model ``name`` (S3Rec models on a backbone pre-trained for 10 updates) and its
    flat settings (its config holds the hyperparameters)."""
    entry = spec(name)
    settings = settings_of(params, name, entry.config, args.set)
    seed_everything(SEED)
    pretrained = None
    n_items = data["matrix"].shape[1]
    if PRETRAINED in entry.extra_inputs:
        pre = {**settings_of(params, SECTION, S3RecConfig, args.set), "pretrain_updates": 10}
        s3rec = S3RecConfig.from_params(pre)
        attributes = attribute_matrix(*data["people"], n_items, list(s3rec.attributes))
        train_config = TrainConfig.from_params(pre)
        pretrained, _ = seq.pretrain_s3rec(
            data["sequences"], attributes, s3rec, train_config, device, SEED
        )
    config = entry.config.from_params(settings)
    model = entry.model(config).build(n_items, SEED, pretrained)
    return model.to(device), settings


def updates_per_second(
    model: torch.nn.Module, data: dict, updates: int, device: torch.device
) -> tuple[float, int, int]:
    """Rate over ``updates`` timed updates (after 2 untimed); windows and updates a pass."""
    examples = model.build_examples(data["sequences"], device)
    batches = examples.batches(model.config.batch_size, SEED)
    optimizer = torch.optim.Adam(model.parameters(), lr=model.config.lr)
    config = TrainConfig(max_updates=updates + 2, eval_every=updates + 2, progress=False)
    train(model, optimizer, batches, model.loss, None, config, device, "warm-up", stop_at=2)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    train(model, optimizer, batches, model.loss, None, replace(config, max_updates=updates),
          device, "timed")  # fmt: skip
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    rate = updates / (time.perf_counter() - started)
    return rate, len(examples), int(np.ceil(len(examples) / model.config.batch_size))


def speed(data: dict, params: dict, args: argparse.Namespace, device: torch.device) -> None:
    print(f"{'model':15s} {'updates/s':>10s} {'examples':>9s} {'updates/pass':>13s} "
          f"{'s/pass':>8s}")  # fmt: skip
    for name in args.models:
        model, _ = built(name, data, params, args, device)
        rate, examples, per_pass = updates_per_second(model, data, args.updates, device)
        print(f"{name:15s} {rate:10.2f} {examples:9d} {per_pass:13d} {per_pass / rate:8.1f}")


def one_pass(data: dict, params: dict, args: argparse.Namespace, device: torch.device) -> None:
    model, _ = built("sasrec", data, params, args, device)
    hyperparameters = model.config
    examples = model.build_examples(data["sequences"], device)
    per_pass = int(np.ceil(len(examples) / hyperparameters.batch_size))
    optimizer = torch.optim.Adam(model.parameters(), lr=hyperparameters.lr)
    config = TrainConfig(max_updates=per_pass, eval_every=per_pass, progress=True)
    started = time.perf_counter()
    result = train(model, optimizer, examples.batches(hyperparameters.batch_size, SEED),
                   model.loss, None, config, device, "sasrec pass")  # fmt: skip
    seconds = time.perf_counter() - started
    print(f"sasrec: one pass = {result.updates} updates over {len(examples)} windows "
          f"(max_len {hyperparameters.max_len}, loss {hyperparameters.loss}) in {seconds:.1f} s "
          f"({result.updates / seconds:.2f} updates/s)")  # fmt: skip


def trained_recall(
    name: str,
    data: dict,
    params: dict,
    overrides: list[str],
    device: torch.device,
    max_updates: int | None = None,
) -> dict[str, float]:
    """Train ``name`` with ``overrides`` and early stopping on its ``stop_on`` answers, as
    the pipeline's validation fit does; its speed, best update and validation Recall@10."""
    # imported here: `speed` and `pass` need only torch, numpy and pandas (no Kedro), so
    # they run on a GPU machine that has nothing else installed
    from movie_rec.pipelines.model_nodes import Validation  # noqa: PLC0415

    model, settings = built(name, data, params, argparse.Namespace(set=overrides), device)
    config = TrainConfig.from_params(settings)
    if max_updates is not None:
        config = replace(config, max_updates=max_updates)
    scorer = seq.SequenceScorer(model, data["sequences"], device)
    validation = Validation.on(data["answers"], data["matrix"], settings["stop_on"], 1024)
    started = time.perf_counter()
    evaluate = partial(validation.recall, scorer.score)
    result = seq.train_network(model, data["sequences"], config, device, SEED, name, evaluate)
    seconds = time.perf_counter() - started
    recall = recall_at_k(top_k_unseen(scorer.score, data["matrix"], 10), data["answers"])
    return {
        "updates/s": result.updates / seconds,
        "best": result.best_update,
        "updates": result.updates,
        "seconds": seconds,
        **{key: value for key, value in recall.items() if key.startswith("recall")},
        "curve": [(int(record["update"]), record["recall@10"]) for record in result.history],
    }


ROW = "{:34s} {:>9s} {:>6s} {:>8s} {:>8s} {:>10s} {:>7s} {:>7s}"


def print_row(label: str, row: dict[str, Any], curve: bool = False) -> None:
    """One table row; with ``curve``, then the validation recall it stopped on at every
    evaluation (``update:recall``)."""
    print(
        ROW.format(
            label, f"{row['updates/s']:.2f}", str(row["best"]), str(row["updates"]),
            f"{row['seconds']:.0f}", f"{row['recall@10']:.4f}", f"{row['recall@10_last']:.4f}",
            f"{row['recall@10_random']:.4f}",
        ),
        flush=True,
    )  # fmt: skip
    if curve:
        print("  " + " ".join(f"{update}:{recall:.4f}" for update, recall in row["curve"]))


def print_header(first: str) -> None:
    print(ROW.format(first, "updates/s", "best", "updates", "seconds", "recall@10", "last",
                     "random"))  # fmt: skip


def losses(data: dict, params: dict, args: argparse.Namespace, device: torch.device) -> None:
    print_header("loss")
    for loss in ("ce", "sampled"):
        overrides = [*args.set, f"loss={loss}"]
        print_row(loss, trained_recall("sasrec", data, params, overrides, device, args.max_updates))


def config_recall(
    spec: str, data: dict, params: dict, base: list[str], device: torch.device
) -> dict[str, float]:
    """``trained_recall`` of one ``configs`` entry, ``model`` or ``model:key=value,...``."""
    name, _, overrides = spec.partition(":")
    extra = [*base, *filter(None, overrides.split(","))]
    return trained_recall(name, data, params, extra, device)


def _config_job(job: tuple[Path, int | None, int | None, str, list[str], str]) -> tuple[str, dict]:
    """One ``configs`` entry in a worker process: its own data, one torch thread."""
    raw_dir, users, split_seed, spec, base, device = job
    torch.set_num_threads(1)
    data = processed(raw_dir, users, split_seed)
    return spec, config_recall(spec, data, sequential_params(), base, resolve_device(device))


def configs(data: dict, params: dict, args: argparse.Namespace, device: torch.device) -> None:
    """Every ``--configs`` entry (``model`` or ``model:key=value,key=value``) trained as the
    validation fit is, ``--jobs`` at a time (each in its own process with one thread)."""
    print_header("configuration")
    if args.jobs <= 1:
        for spec in args.configs:
            print_row(spec, config_recall(spec, data, params, args.set, device), args.curves)
        return
    jobs = [
        (args.raw_dir, args.users, args.split_seed, spec, args.set, str(device))
        for spec in args.configs
    ]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        for spec, row in pool.map(_config_job, jobs):
            print_row(spec, row, args.curves)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["speed", "pass", "losses", "configs"])
    parser.add_argument("--data", choices=["competition", "sample"], default="competition")
    parser.add_argument("--models", nargs="+", default=list(NEURAL), choices=NEURAL)
    parser.add_argument("--updates", type=int, default=20, help="timed updates (speed)")
    parser.add_argument("--max-updates", type=int, default=2000, help="budget (losses)")
    parser.add_argument("--raw-dir", type=Path, default=None, help="raw files (overrides --data)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--users", type=int, default=None, help="only the first N users")
    parser.add_argument("--split-seed", type=int, default=None, help="the validation split's seed")
    parser.add_argument("--num-threads", type=int, default=None)
    parser.add_argument("--set", nargs="*", default=[], help="key=value overrides")
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS),
                        help="model or model:key=value,... (configs)")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1, help="configurations at once (configs)")
    parser.add_argument("--curves", action="store_true", help="print each recall curve (configs)")
    args = parser.parse_args()
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    device = resolve_device(args.device)
    args.raw_dir = args.raw_dir or (
        cached_preset("competition")
        if args.data == "competition"
        else REPO_ROOT / "data" / "01_raw"
    )
    started = time.perf_counter()
    data = processed(args.raw_dir, args.users, args.split_seed)
    lengths = np.diff(data["matrix"].indptr)
    print(
        f"{args.data}: {data['matrix'].shape[0]} users, {data['matrix'].shape[1]} items, "
        f"{data['matrix'].nnz} training interactions (mean history {lengths.mean():.0f}), "
        f"prepared in {time.perf_counter() - started:.1f} s; device {device}, "
        f"torch threads {torch.get_num_threads()}"
    )
    {"speed": speed, "pass": one_pass, "losses": losses, "configs": configs}[args.what](
        data, sequential_params(), args, device
    )


if __name__ == "__main__":
    main()

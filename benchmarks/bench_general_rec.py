"""The general (order-free) models beside EASE: validation Recall@10 across split seeds, fit
seconds and peak memory, on the shipped sample and at the competition preset.

Models: EASE (Steck 2019), EASE with EDLAE's emphasis ``p`` (Steck 2020), user+item EASE,
ADMM SLIM (Steck et al. 2020), Multi-VAE (Liang et al. 2018) and RecVAE (Shenbin et al.
2020), each built from its module under ``movie_rec.models``.

Protocol (on the sample):

1. Hyperparameters are chosen on split seed 42 alone, on overall Recall@10, from small
   grids: EASE λ ∈ {25, 50, 100, 200, 400}; EDLAE p ∈ {0.1, 0.25, 0.33, 0.5} at EASE's λ;
   user+item EASE with EASE's λ for the items, user λ ∈ {500, 2000, 8000} and user weight
   ∈ {0.25, 0.5}; ADMM SLIM's defaults with l2 ∈ {50, 200, 800}. Multi-VAE and RecVAE keep
   their config defaults (RecVAE alternates 12 encoder / 4 decoder updates: the sample has
   4 batches a pass) and train with early stopping on validation Recall@10.
2. The chosen settings are refitted on every split seed (n_last 4, n_random 6, min_history
   16); each (model, seed) runs in its own process, so its peak RSS (``ru_maxrss``,
   interpreter and data included; ``base`` is the RSS before the fit) is its own. A trained
   model's fit seconds include its validation evaluations (every ``eval_every`` updates).
3. Per model: mean ± standard error across seeds of Recall@10 overall / last / random, and
   the paired difference to EASE on random (per seed, then mean ± standard error).

At the competition preset (``data/benchmarks/competition``, generated once by
``common.cached_preset``) EASE, EDLAE and user+item EASE are fitted on split seed 42
with the project's configured λs (``conf/base/parameters_general_rec.yml``) and EDLAE's p
from the sample, and timed for the fit plus the top-100 unseen items of every user. ADMM
SLIM, Multi-VAE and RecVAE are skipped there on a CPU; the script prints their estimated
cost from a timed items×items product and a few timed training updates.

    python benchmarks/bench_general_rec.py                              # sample, all models
    python benchmarks/bench_general_rec.py --models ease edlae --seeds 42 1
    python benchmarks/bench_general_rec.py --competition                # also the competition
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bench_sample_order import read_raw
from common import REPO_ROOT, cached_preset
from movie_rec.evaluation import recall_at_k, top_k_unseen
from movie_rec.models.ease import regularised_inverse
from movie_rec.models.matrices import gram_matrix
from movie_rec.models.protocol import FitRun, TrainingData
from movie_rec.models.training import TrainConfig
from movie_rec.pipelines.data_processing import nodes as dp
from movie_rec.registry import models_of, spec
from movie_rec.splits import SplitSettings
from movie_rec.tuning.studies import validation_recall

SPLIT = {"n_last": 4, "n_random": 6, "min_history": 16}
TUNING_SEED = 42
REGISTERED = {"edlae": "ease"}  # EDLAE is EASE with its emphasis p
MODELS = (
    "ease",
    "edlae",
    *(entry.name for entry in models_of("general_rec") if entry.name not in ("popular", "ease")),
)
LABELS = {
    "ease": "EASE",
    "edlae": "EDLAE",
    "user_ease": "user+item EASE",
    "admm_slim": "ADMM-SLIM",
    "multivae": "Multi-VAE",
    "recvae": "RecVAE",
}
CHALLENGERS = ("edlae", "user_ease", "recvae", "admm_slim")  # the Must-show line's four
EASE_LAMBDAS = (25.0, 50.0, 100.0, 200.0, 400.0)
EDLAE_PS = (0.1, 0.25, 0.33, 0.5)
USER_LAMBDAS = (500.0, 2000.0, 8000.0)
USER_WEIGHTS = (0.25, 0.5)
ADMM_L2S = (50.0, 200.0, 800.0)
RECVAE_SAMPLE = {"encoder_updates": 12, "decoder_updates": 4}
COMPETITION_EASE_LAM = 400.0  # conf/base/parameters_general_rec.yml
COMPETITION_USER_EASE = {"item_lam": 400.0, "user_lam": 4500.0, "user_weight": 0.5}
COMPETITION_K = 100
CPU = torch.device("cpu")


def split_data(raw_dir: Path, seed: int) -> dict[str, Any]:
    """The validation matrix and answers of one split seed, by the data_processing nodes."""
    ratings = dp.deduplicate_ratings(read_raw(raw_dir)["train_ratings.csv"])
    user_map, item_map = dp.build_id_maps(ratings)
    interactions = dp.index_interactions(ratings, user_map, item_map)
    split_train, answers = dp.split_validation(interactions, SplitSettings(**SPLIT, seed=seed))
    matrix = dp.interaction_matrix(split_train, user_map, item_map)
    return {"matrix": matrix, "answers": answers, "users": np.sort(answers["user_idx"].unique())}


def validation_metrics(score_fn, data: dict[str, Any]) -> dict[str, float]:
    candidates = top_k_unseen(score_fn, data["matrix"], 10, users=data["users"])
    return recall_at_k(candidates, data["answers"])


def train_config(settings: dict[str, Any]) -> TrainConfig:
    """The update budget of an iterative model (grad_clip 0 as in the project's conf)."""
    return TrainConfig(
        max_updates=settings["max_updates"],
        eval_every=settings["eval_every"],
        patience=settings["patience"],
        grad_clip=0.0,
        progress=False,
    )


def build_model(model: str, settings: dict[str, Any]):
    hyper = {
        k: v for k, v in settings.items() if k not in ("max_updates", "eval_every", "patience")
    }
    return spec(REGISTERED.get(model, model)).build(hyper)


def fit(
    model: str,
    settings: dict[str, Any],
    data: dict[str, Any],
    seed: int,
    training: TrainingData | None = None,
):
    """The fitted model and what the fit reports (best update for the trained ones);
    ``training`` shares one Gram matrix between fits."""
    estimator = build_model(model, settings)
    training = training or TrainingData(data["matrix"])
    if model in ("multivae", "recvae"):
        matrix, answers, users = data["matrix"], data["answers"], data["users"]
        run = FitRun(
            seed=seed,
            train=train_config(settings),
            evaluate=lambda score_fn: validation_recall(score_fn, matrix, answers, users),
        )
        result = estimator.fit(training, run)
        return estimator, {"best_update": result.best_update, "updates": result.updates}
    estimator.fit(training, FitRun(seed=seed))
    return estimator, {}


def grid_worker(model: str, grid: list[dict[str, Any]], raw_dir: Path) -> dict[str, Any]:
    """Overall/last/random Recall@10 of every setting of ``grid`` on the tuning seed."""
    data = split_data(raw_dir, TUNING_SEED)
    training = TrainingData(data["matrix"])
    rows = []
    for settings in grid:
        estimator, _ = fit(model, settings, data, TUNING_SEED, training)
        rows.append({"settings": settings, **validation_metrics(estimator.score, data)})
    return {"rows": rows}


def eval_worker(model: str, settings: dict[str, Any], raw_dir: Path, seed: int) -> dict:
    """One model on one split seed: Recall@10, fit seconds, RSS before the fit and peak."""
    data = split_data(raw_dir, seed)
    base_gb = max_rss_gb()
    started = time.perf_counter()
    estimator, details = fit(model, settings, data, seed)
    seconds = time.perf_counter() - started
    metrics = validation_metrics(estimator.score, data)
    return {**metrics, **details, "fit_s": seconds, "base_gb": base_gb, "peak_gb": max_rss_gb()}


def competition_worker(model: str, settings: dict[str, Any], raw_dir: Path) -> dict:
    """Fit on split seed 42 of the competition preset, then the top 100 for every user."""
    data = split_data(raw_dir, TUNING_SEED)
    base_gb = max_rss_gb()
    started = time.perf_counter()
    estimator, _ = fit(model, settings, data, TUNING_SEED)
    fitted = time.perf_counter()
    candidates = top_k_unseen(estimator.score, data["matrix"], COMPETITION_K)
    done = time.perf_counter()
    metrics = recall_at_k(candidates, data["answers"])
    return {
        **metrics,
        "shape": list(data["matrix"].shape),
        "nnz": int(data["matrix"].nnz),
        "fit_s": fitted - started,
        "top100_s": done - fitted,
        "base_gb": base_gb,
        "peak_gb": max_rss_gb(),
    }


def estimate_worker(raw_dir: Path, sample_settings: dict[str, dict]) -> dict[str, float]:
    """What ADMM SLIM and the two VAEs would cost at the competition preset on this CPU."""
    data = split_data(raw_dir, TUNING_SEED)
    n_items = data["matrix"].shape[1]
    admm = spec("admm_slim").config()
    gram = gram_matrix(data["matrix"], CPU)
    started = time.perf_counter()
    regularised_inverse(gram, admm.l2 + admm.rho, torch.float64)
    factor_s = time.perf_counter() - started
    square = torch.rand(n_items, n_items)
    started = time.perf_counter()
    torch.mm(square, square)
    product_s = time.perf_counter() - started
    estimates = {
        "n_items": n_items,
        "admm_factor_s": factor_s,
        "admm_product_s": product_s,
        # per iteration: the ridge product and the objective's G·C (two items³ products)
        "admm_fit_s": factor_s + admm.iterations * 2 * product_s,
        "admm_iterations": admm.iterations,
    }
    probe_updates = 6
    for model, conf_budget in (("multivae", 5000), ("recvae", 3000)):
        settings = {**sample_settings[model], "max_updates": probe_updates}
        settings["eval_every"] = probe_updates
        started = time.perf_counter()
        run = FitRun(seed=TUNING_SEED, train=train_config(settings))
        build_model(model, settings).fit(TrainingData(data["matrix"]), run)
        per_update = (time.perf_counter() - started) / probe_updates
        estimates[f"{model}_update_s"] = per_update
        estimates[f"{model}_budget"] = conf_budget
        estimates[f"{model}_fit_s"] = per_update * conf_budget
    return estimates


def max_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def in_subprocess(task: dict[str, Any]) -> dict[str, Any]:
    """Run one worker task in a fresh interpreter (its own peak RSS); its JSON result."""
    command = [sys.executable, __file__, "--worker", json.dumps(task)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {task['task']} {task.get('model')} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_worker(task: dict[str, Any]) -> dict[str, Any]:
    raw_dir = Path(task["raw_dir"])
    if task["task"] == "grid":
        return grid_worker(task["model"], task["grid"], raw_dir)
    if task["task"] == "eval":
        return eval_worker(task["model"], task["settings"], raw_dir, task["seed"])
    if task["task"] == "competition":
        return competition_worker(task["model"], task["settings"], raw_dir)
    return estimate_worker(raw_dir, task["sample_settings"])


def best_of_grid(model: str, grid: list[dict[str, Any]], raw_dir: Path) -> dict[str, Any]:
    """The setting of ``grid`` with the best overall Recall@10 on the tuning seed (printed)."""
    rows = in_subprocess({"task": "grid", "model": model, "grid": grid, "raw_dir": str(raw_dir)})
    for row in rows["rows"]:
        print(
            f"  {LABELS[model]:<15} {format_settings(row['settings']):<42} "
            f"overall {row['recall@10']:.4f}  last {row['recall@10_last']:.4f}  "
            f"random {row['recall@10_random']:.4f}"
        )
    return max(rows["rows"], key=lambda row: row["recall@10"])["settings"]


def choose_settings(
    models: list[str], raw_dir: Path, trained: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each model's setting chosen on split seed 42 (EASE's λ anchors EDLAE and user+item)."""
    print(f"hyperparameter grids on split seed {TUNING_SEED} (chosen on overall Recall@10):")
    chosen: dict[str, dict[str, Any]] = {}
    needs_lam = {"ease", "edlae", "user_ease"} & set(models)
    if needs_lam:
        chosen["ease"] = best_of_grid("ease", [{"lam": lam} for lam in EASE_LAMBDAS], raw_dir)
    lam = chosen.get("ease", {}).get("lam")
    if "edlae" in models:
        grid = [{"lam": lam, "p": p} for p in EDLAE_PS]
        chosen["edlae"] = best_of_grid("edlae", grid, raw_dir)
    if "user_ease" in models:
        grid = [
            {"item_lam": lam, "user_lam": user_lam, "user_weight": weight}
            for user_lam in USER_LAMBDAS
            for weight in USER_WEIGHTS
        ]
        chosen["user_ease"] = best_of_grid("user_ease", grid, raw_dir)
    if "admm_slim" in models:
        grid = [replace(spec("admm_slim").config(), l2=l2).to_dict() for l2 in ADMM_L2S]
        chosen["admm_slim"] = best_of_grid("admm_slim", grid, raw_dir)
    for model in ("multivae", "recvae"):
        if model in models:
            chosen[model] = trained[model]
            print(f"  {LABELS[model]:<15} {format_settings(trained[model])} (no grid)")
    return chosen


def format_settings(settings: dict[str, Any]) -> str:
    return " ".join(f"{key}={value:g}" for key, value in settings.items())


def mean_and_error(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (NaN error for a single value)."""
    array = np.asarray(values, dtype=float)
    error = array.std(ddof=1) / np.sqrt(len(array)) if len(array) > 1 else float("nan")
    return float(array.mean()), float(error)


def seed_table(results: dict[str, dict[int, dict]], seeds: list[int]) -> pd.DataFrame:
    """One row per model: mean ± SE per kind, the paired random gap to EASE, time, memory."""
    rows = []
    for model, per_seed in results.items():
        row = {"model": LABELS[model]}
        for column, key in (("overall", "recall@10"), ("last", "recall@10_last")):
            row[column] = "{:.4f} ± {:.4f}".format(
                *mean_and_error([per_seed[s][key] for s in seeds])
            )
        row["random"] = "{:.4f} ± {:.4f}".format(
            *mean_and_error([per_seed[s]["recall@10_random"] for s in seeds])
        )
        if "ease" in results and model != "ease":
            gaps = [
                per_seed[s]["recall@10_random"] - results["ease"][s]["recall@10_random"]
                for s in seeds
            ]
            row["random − EASE"] = "{:+.4f} ± {:.4f}".format(*mean_and_error(gaps))
        else:
            row["random − EASE"] = ""
        row["fit s"] = f"{np.mean([per_seed[s]['fit_s'] for s in seeds]):.1f}"
        row["base GB"] = f"{max(per_seed[s]['base_gb'] for s in seeds):.2f}"
        row["peak GB"] = f"{max(per_seed[s]['peak_gb'] for s in seeds):.2f}"
        if "best_update" in per_seed[seeds[0]]:
            row["best update"] = "/".join(str(per_seed[s]["best_update"]) for s in seeds)
        else:
            row["best update"] = ""
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def must_show_line(results: dict[str, dict[int, dict]], seeds: list[int]) -> str:
    """Which of the four challengers beat EASE on random by more than the gap's standard error."""
    if "ease" not in results or len(seeds) < 2:
        return "Must-show: needs EASE and at least two split seeds"
    verdicts = []
    for model in CHALLENGERS:
        if model not in results:
            continue
        gaps = [
            results[model][s]["recall@10_random"] - results["ease"][s]["recall@10_random"]
            for s in seeds
        ]
        mean, error = mean_and_error(gaps)
        verdicts.append((model, mean, error, mean > error))
    winners = [f"{LABELS[m]} ({mean:+.4f} > SE {err:.4f})" for m, mean, err, won in verdicts if won]
    if winners:
        return "Must-show: beats EASE on random by more than its SE: " + ", ".join(winners)
    shown = ", ".join(f"{LABELS[m]} {mean:+.4f} ± {err:.4f}" for m, mean, err, _ in verdicts)
    return f"Must-show: NONE of the four beats EASE on random by more than its SE ({shown})"


def run_sample(args: argparse.Namespace, trained: dict[str, dict[str, Any]]) -> dict:
    models = [m for m in MODELS if m in args.models]
    chosen = choose_settings(models, args.raw_dir, trained)
    results: dict[str, dict[int, dict]] = {}
    for model in models:
        results[model] = {}
        for seed in args.seeds:
            task = {
                "task": "eval",
                "model": model,
                "settings": chosen[model],
                "seed": seed,
                "raw_dir": str(args.raw_dir),
            }
            results[model][seed] = result = in_subprocess(task)
            print(
                f"  {LABELS[model]:<15} seed {seed:>2}: overall {result['recall@10']:.4f} "
                f"last {result['recall@10_last']:.4f} random {result['recall@10_random']:.4f} "
                f"fit {result['fit_s']:.1f}s peak {result['peak_gb']:.2f} GB",
                flush=True,
            )
    print(f"\nsample ({args.raw_dir}), split seeds {args.seeds}: mean ± standard error")
    print(seed_table(results, args.seeds).to_string())
    print(must_show_line(results, args.seeds))
    return chosen


def run_competition(chosen: dict, trained: dict) -> None:
    folder = cached_preset("competition")
    p = chosen.get("edlae", {}).get("p", 0.25)
    settings = {
        "ease": {"lam": COMPETITION_EASE_LAM},
        "edlae": {"lam": COMPETITION_EASE_LAM, "p": p},
        "user_ease": COMPETITION_USER_EASE,
    }
    print(f"\ncompetition preset ({folder}), split seed {TUNING_SEED}, top {COMPETITION_K}:")
    header = f"  {'model':<15} {'settings':<42} {'fit s':>7} {'top100 s':>9} {'total s':>8}"
    print(header + "  base GB  peak GB  overall   last  random")
    for model, values in settings.items():
        task = {"task": "competition", "model": model, "settings": values, "raw_dir": str(folder)}
        r = in_subprocess(task)
        print(
            f"  {LABELS[model]:<15} {format_settings(values):<42} {r['fit_s']:7.1f} "
            f"{r['top100_s']:9.1f} {r['fit_s'] + r['top100_s']:8.1f}  {r['base_gb']:7.2f}  "
            f"{r['peak_gb']:7.2f}  {r['recall@10']:.4f} {r['recall@10_last']:.4f} "
            f"{r['recall@10_random']:.4f}",
            flush=True,
        )
    task = {"task": "estimate", "raw_dir": str(folder), "sample_settings": trained}
    e = in_subprocess(task)
    print(
        f"  skipped on this CPU (estimates at {e['n_items']:,} items):\n"
        f"    ADMM-SLIM: float64 factorisation {e['admm_factor_s']:.1f}s + "
        f"{e['admm_iterations']} iterations × 2 items³ products × {e['admm_product_s']:.1f}s "
        f"≈ {e['admm_fit_s'] / 60:.0f} min a fit\n"
        f"    Multi-VAE: {e['multivae_update_s']:.2f}s an update × {e['multivae_budget']} "
        f"(conf budget) ≈ {e['multivae_fit_s'] / 60:.0f} min a fit, before validation\n"
        f"    RecVAE:    {e['recvae_update_s']:.2f}s an update × {e['recvae_budget']} "
        f"(conf budget) ≈ {e['recvae_fit_s'] / 60:.0f} min a fit, before validation"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", type=Path, default=REPO_ROOT / "data" / "01_raw")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--competition", action="store_true", help="also the competition preset")
    parser.add_argument("--multivae-max-updates", type=int, default=2000)
    parser.add_argument(
        "--recvae-max-updates", type=int, default=2000, help="about 0.5 s an update on 2 cores"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return
    trained = {
        "multivae": {
            **spec("multivae").config().to_dict(),
            "max_updates": args.multivae_max_updates,
            "eval_every": 25,
            "patience": 8,
        },
        "recvae": {
            **spec("recvae").config(**RECVAE_SAMPLE).to_dict(),
            "max_updates": args.recvae_max_updates,
            "eval_every": 50,
            "patience": 8,
        },
    }
    print(f"{torch.get_num_threads()} torch threads; split {SPLIT}")
    started = time.perf_counter()
    chosen = run_sample(args, trained)
    print(f"sample done in {time.perf_counter() - started:.0f}s")
    if args.competition:
        run_competition(chosen, trained)


if __name__ == "__main__":
    main()

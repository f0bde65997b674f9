"""Benchmark: the whole default pipeline (``kedro run``), pipeline by pipeline, on a preset.

Runs the six pipelines of ``__default__`` in order, each as its own ``kedro run
--pipelines=NAME`` child in one scratch project (every output persists under its ``data/``,
so each pipeline reads what the previous ones wrote), and prints:

* per pipeline: wall seconds, the child's own peak RSS and the node at that peak (the
  project's hooks log each node's seconds and peak RSS); the nodes of the largest peaks;
* per model: tuning seconds (the sum of its Optuna trials' durations), validation fit, final
  fit and prediction seconds, and validation Recall@10 overall / last / random (the model's
  ``data/08_reporting/M_metrics.json``); the ranker's figures; every ensemble method's
  Recall@10 on the held-out half of the validation users (``ensemble_metrics.json``), the
  submission's method marked;
* the total, the largest peak RSS and a verdict against the targets: ≤ 20 min and ≤ 6 GB
  on the CPU, ≤ 15 min on a GPU (the targets are for the competition preset).

``--raw-dir`` runs on a raw folder of your own (real data) instead of a preset.
``tiny`` and ``sample`` are generated into the scratch project's ``data/01_raw``;
``medium`` and ``competition`` are generated once and cached (``common.cached_preset``) and
passed as ``raw_dir``. ``--seed`` is the data's seed; the run's own seed is a parameter
(``--params runtime.seed=7``). The figures are also written as JSON and CSV under the
scratch folder; without ``--keep`` only those and the pipelines' logs are kept there.

    python benchmarks/bench_pipeline.py [--preset tiny|sample|medium|competition | --raw-dir DIR]
        [--seed S] [--keep DIR] [--params KEY=VALUE ...] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from common import (
    CACHED_PRESETS,
    ChildRun,
    cached_preset,
    kedro_command,
    kedro_env,
    measured_run,
    scratch_project,
)
from movie_rec.records import Skipped
from movie_rec.registry import MODELS
from movie_rec.runtime import resolve_device
from movie_rec.synthetic import PRESETS, generate, write_raw

PIPELINES = (  # the order of __default__ (src/movie_rec/pipeline_registry.py)
    "data_processing",
    "general_rec",
    "sequential_rec",
    "tabular_rec",
    "ensembling",
    "reporting",
)
TARGET_SECONDS = {"cpu": 20 * 60, "cuda": 15 * 60}
TARGET_RSS_GB = {"cpu": 6.0, "cuda": None}
RESULTS = ("bench_pipeline.json", "pipelines.csv", "models.csv")
LOG_TAIL_LINES = 30
TOP_NODES = 8
NODE_LINE = re.compile(  # hooks.NodeMemoryHooks: "node NAME: S s, peak RSS G GB"
    r"\bnode (?P<node>.+?): (?P<seconds>[\d.]+) s, peak RSS (?P<peak_rss_gb>[\d.]+) GB"
)
RECALL_KEYS = ("recall@10", "recall@10_last", "recall@10_random")

PIPELINE_COLUMNS = {
    "pipeline": "pipeline",
    "seconds": "wall s",
    "peak_rss_gb": "peak RSS GB",
    "node_at_peak": "node at the peak",
}
NODE_COLUMNS = {"node": "node", "seconds": "s", "peak_rss_gb": "peak RSS GB"}
MODEL_COLUMNS = {
    "model": "model",
    "pipeline": "pipeline",
    "tune_seconds": "tune s",
    "trials": "trials",
    "fit_valid_seconds": "fit valid s",
    "fit_final_seconds": "fit final s",
    "predict_seconds": "predict s",
    "recall@10": "R@10",
    "recall@10_last": "last",
    "recall@10_random": "random",
    "scored_on": "scored on",
}


def machine() -> dict[str, Any]:
    """CPU count, the torch device ``runtime.device: auto`` resolves to and the GPU's name."""
    device = resolve_device("auto")
    return {
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "device": device.type,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
    }


def prepare_project(root: Path, preset: str, seed: int) -> tuple[Path, dict[str, str]]:
    """The scratch project with the preset's raw files, and the run parameters it needs."""
    project = scratch_project(root)
    if preset in CACHED_PRESETS:
        return project, {"raw_dir": str(cached_preset(preset, seed=seed))}
    write_raw(generate(preset, seed=seed), project / "data" / "01_raw")
    return project, {}


def params_option(params: dict[str, str]) -> list[str]:
    """``--params=k1=v1,k2=v2`` (Kedro splits on commas: values cannot hold one)."""
    if not params:
        return []
    return ["--params=" + ",".join(f"{key}={value}" for key, value in params.items())]


def node_rows(log_text: str) -> list[dict[str, Any]]:
    """One row per node line of a ``kedro run`` log: node name, seconds and peak RSS GB."""
    return [
        {
            "node": found["node"],
            "seconds": float(found["seconds"]),
            "peak_rss_gb": float(found["peak_rss_gb"]),
        }
        for found in NODE_LINE.finditer(log_text)
    ]


def node_at_peak(nodes: Sequence[dict[str, Any]]) -> str | None:
    """The name of the node of the largest peak RSS (None without node lines)."""
    return max(nodes, key=lambda row: row["peak_rss_gb"])["node"] if nodes else None


def run_pipelines(
    project: Path, params: dict[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Each pipeline in its own measured ``kedro run``; stops at the first that fails.

    Returns one row per pipeline that ran, one per node they ran and the failed one's exit
    status (0 if none).
    """
    logs = project / "logs"
    logs.mkdir(exist_ok=True)
    rows, nodes = [], []
    for name in PIPELINES:
        log = logs / f"{name}.log"
        print(f"running {name} (log: {log}) ...", flush=True)
        with log.open("w") as output:
            command = kedro_command(f"--pipelines={name}", *params_option(params))
            run: ChildRun = measured_run(command, project, kedro_env(), output)
        ran = [{"pipeline": name, **row} for row in node_rows(run.log)]
        nodes.extend(ran)
        rows.append(
            {
                "pipeline": name,
                "seconds": run.seconds,
                "peak_rss_gb": run.peak_rss_gb,
                "node_at_peak": node_at_peak(ran),
            }
        )
        print(f"  {name}: {run.seconds:.1f} s, peak RSS {run.peak_rss_gb:.2f} GB", flush=True)
        if run.returncode != 0:
            lines = run.log.splitlines()[-LOG_TAIL_LINES:]
            print(f"{name} failed (exit status {run.returncode}); the end of its log:")
            print("\n".join(lines))
            return rows, nodes, run.returncode
    return rows, nodes, 0


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def tuning_seconds(trials_csv: Path) -> float | None:
    """Seconds of the model's Optuna trials (None when it was not tuned)."""
    if not trials_csv.exists() or trials_csv.stat().st_size == 0:
        return None
    trials = pd.read_csv(trials_csv)
    if trials.empty or "duration_seconds" not in trials:
        return None
    return float(trials["duration_seconds"].sum())


def model_rows(project: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per enabled registered model whose metrics exist, and the disabled models."""
    reporting = project / "data" / "08_reporting"
    rows, disabled = [], []
    for name, entry in MODELS.items():
        metrics = read_json(reporting / f"{name}_metrics.json")
        if metrics is None:
            continue
        if Skipped.marks(metrics):
            disabled.append(name)
            continue
        predict = [metrics.get("predict_seconds"), metrics.get("final_predict_seconds")]
        rows.append(
            {
                "model": name,
                "pipeline": entry.pipeline,
                "tune_seconds": tuning_seconds(reporting / f"{name}_optuna_trials.csv"),
                "trials": metrics.get("tuning_trials"),
                "fit_valid_seconds": metrics.get("fit_seconds"),
                "fit_final_seconds": metrics.get("final_fit_seconds"),
                "predict_seconds": sum(value for value in predict if value is not None),
                **{key: metrics.get(key) for key in RECALL_KEYS},
                "scored_on": "validation",
            }
        )
    return rows, disabled


def ensemble_rows(project: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One row per fusion method (held-out half), and the submission's summary."""
    metrics = read_json(project / "data" / "08_reporting" / "ensemble_metrics.json")
    weights = read_json(project / "data" / "07_model_output" / "ensemble_weights.json")
    if metrics is None or weights is None:
        return [], None
    chosen = weights["method"]
    rows = []
    for method, figures in metrics["ensembles"].items():
        holdout = figures["holdout"]
        rows.append(
            {
                "model": f"ensemble_{method}" + (" (submission)" if method == chosen else ""),
                "pipeline": "ensembling",
                "tune_seconds": figures.get("fit_seconds"),
                "trials": metrics.get("trials") if method == "weighted_rank" else None,
                "predict_seconds": figures.get("predict_seconds"),
                **{key: holdout.get(key) for key in RECALL_KEYS},
                "scored_on": "holdout half",
            }
        )
    single = {name: halves["holdout"]["recall@10"] for name, halves in metrics["models"].items()}
    best = max(single, key=single.get) if single else None
    submission = {
        "method": chosen,
        "holdout": metrics["ensembles"][chosen]["holdout"],
        "best_single_model": best,
        "best_single_holdout_recall@10": single.get(best),
        "holdout_users": metrics.get("holdout_users"),
    }
    return rows, submission


def verdict(device: str, total_seconds: float, peak_gb: float, preset: str) -> str:
    """Within or over the targets of ``device``; a reminder when the preset is not the target's."""
    limit_s, limit_gb = TARGET_SECONDS[device], TARGET_RSS_GB[device]
    checks = [f"{total_seconds / 60:.1f} min ≤ {limit_s / 60:.0f} min: {total_seconds <= limit_s}"]
    within = total_seconds <= limit_s
    if limit_gb is not None:
        checks.append(f"{peak_gb:.2f} GB ≤ {limit_gb:.0f} GB: {peak_gb <= limit_gb}")
        within = within and peak_gb <= limit_gb
    note = "" if preset == "competition" else " (the targets are for the competition preset)"
    return (
        f"verdict on {device}: {'WITHIN' if within else 'OVER'} target ({'; '.join(checks)}){note}"
    )


def cell(value: Any, column: str) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        if column.startswith("recall"):
            return f"{value:.4f}"
        return f"{value:.2f}" if column == "peak_rss_gb" else f"{value:.1f}"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: dict[str, str], markdown: bool) -> str:
    """``rows`` as an aligned text table, or a Markdown one."""
    header = list(columns.values())
    body = [[cell(row.get(key), key) for key in columns] for row in rows]
    return layout(header, body, markdown)


def layout(header: list[str], body: list[list[str]], markdown: bool) -> str:
    """Rows of text cells under ``header``: aligned (text left, figures right) or Markdown."""
    if markdown:
        lines = [header, ["---"] * len(header), *body]
        return "\n".join("| " + " | ".join(line) + " |" for line in lines)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(text.rjust(width) if i else text.ljust(width) for i, (text, width) in
                  enumerate(zip(line, widths, strict=True)))
        for line in [header, *body]
    )  # fmt: skip


def write_results(folder: Path, record: dict[str, Any]) -> None:
    (folder / "bench_pipeline.json").write_text(json.dumps(record, indent=2))
    pd.DataFrame(record["pipelines"]).to_csv(folder / "pipelines.csv", index=False)
    pd.DataFrame(record["models"]).to_csv(folder / "models.csv", index=False)


def keep_only_results(root: Path) -> None:
    """Remove the scratch project but its results and the pipelines' logs."""
    for path in root.iterdir():
        if path.name in RESULTS or path.name == "logs":
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def report(record: dict[str, Any], markdown: bool) -> None:
    info = record["machine"]
    gpu = f", GPU {info['gpu']}" if info["gpu"] else ""
    print(
        f"\nmachine: {info['processor']}, {info['cpu_count']} CPUs ({info['cpus_usable']} usable),"
        f" torch device {info['device']}{gpu}; preset {record['preset']}, seed {record['seed']}"
    )
    if record["params"]:
        print("params: " + ", ".join(f"{k}={v}" for k, v in record["params"].items()))
    print()
    total = {
        "pipeline": "total",
        "seconds": record["total_seconds"],
        "peak_rss_gb": record["max_peak_rss_gb"],
    }
    print(table([*record["pipelines"], total], PIPELINE_COLUMNS, markdown))
    if record["nodes"]:
        top = sorted(record["nodes"], key=lambda row: row["peak_rss_gb"], reverse=True)
        print(f"\nthe {TOP_NODES} nodes of the largest peak RSS:")
        print(table(top[:TOP_NODES], NODE_COLUMNS, markdown))
    if record["models"]:
        print()
        print(table(record["models"], MODEL_COLUMNS, markdown))
    if record["disabled"]:
        print(f"\ndisabled: {', '.join(record['disabled'])}")
    submission = record["submission"]
    if submission:
        print(
            f"submission: {submission['method']}, Recall@10 {submission['holdout']['recall@10']:.4f}"
            f" on the held-out half ({submission['holdout_users']} users); best single model"
            f" there: {submission['best_single_model']}"
            f" {submission['best_single_holdout_recall@10']:.4f}"
        )
    print(
        f"\ntotal: {record['total_seconds']:.1f} s ({record['total_seconds'] / 60:.1f} min), "
        f"largest peak RSS {record['max_peak_rss_gb']:.2f} GB"
    )
    print(record["verdict"])


def parse_params(items: Sequence[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--params expects KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def scratch_root(keep: Path | None) -> Path:
    if keep is None:
        return Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    if keep.exists() and any(keep.iterdir()):
        raise SystemExit(f"--keep {keep}: the folder is not empty")
    keep.mkdir(parents=True, exist_ok=True)
    return keep.resolve()


def record_source(args: argparse.Namespace) -> str:
    return args.preset if args.raw_dir is None else str(args.raw_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS), default="competition")
    source.add_argument("--raw-dir", type=Path, help="a raw folder in the competition's format")
    parser.add_argument("--seed", type=int, default=42, help="the synthetic data's seed")
    parser.add_argument("--keep", type=Path, help="keep the scratch project in this new folder")
    parser.add_argument(
        "--params", nargs="+", default=[], metavar="KEY=VALUE", help="kedro run --params overrides"
    )
    parser.add_argument("--markdown", action="store_true", help="print the tables in Markdown")
    args = parser.parse_args()
    overrides = parse_params(args.params)
    root = scratch_root(args.keep)
    if args.raw_dir is None:
        project, run_params = prepare_project(root, args.preset, args.seed)
    else:
        project, run_params = scratch_project(root), {"raw_dir": str(args.raw_dir.resolve())}
    params = {**run_params, **overrides}
    pipelines, nodes, status = run_pipelines(project, params)
    models, disabled = model_rows(project)
    ensembles, submission = ensemble_rows(project)
    info = machine()
    total = sum(row["seconds"] for row in pipelines)
    peak = max(row["peak_rss_gb"] for row in pipelines)
    record = {
        "preset": record_source(args),
        "seed": args.seed,
        "params": overrides,
        "machine": info,
        "pipelines": pipelines,
        "nodes": nodes,
        "models": models + ensembles,
        "disabled": disabled,
        "submission": submission,
        "total_seconds": total,
        "max_peak_rss_gb": peak,
        "completed": status == 0,
        "verdict": verdict(info["device"], total, peak, record_source(args))
        if status == 0
        else f"incomplete: {pipelines[-1]['pipeline']} failed",
    }
    write_results(root, record)
    if args.keep is None:
        keep_only_results(root)
    report(record, args.markdown)
    print(f"\nresults: {root / 'bench_pipeline.json'} (and pipelines.csv, models.csv)")
    sys.exit(status)


if __name__ == "__main__":
    main()

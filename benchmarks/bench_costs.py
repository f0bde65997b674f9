"""Benchmark: what ``enabled: auto`` decides, by estimate, for each data size and device.

For every first-stage model of the registry with the shipped parameters (``conf/base``,
``--params KEY=VALUE`` over them): its estimated run (tuning trials and both fits,
:mod:`movie_rec.models.cost`) in minutes on the CPU and on a GPU, and whether ``auto``
turns it on within ``runtime.auto_max_minutes``. The shape is the validation fit's: the
preset's users and movies and its interactions less the ``n_last + n_random`` answers a user.
With ``--measured DIR`` (a project after ``kedro run``) a table for that project's own data
puts each model's measured seconds (its trials, both fits and their predictions) beside the
estimate.

    python benchmarks/bench_costs.py [--presets sample medium competition] [--raw-dir DIR]
        [--measured PROJECT] [--params runtime.auto_max_minutes.cpu=5] [--markdown]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd
import scipy.sparse as sp
import yaml

from bench_pipeline import parse_params, table
from movie_rec.models.cost import DataShape
from movie_rec.parameters import run_plan, runtime_settings
from movie_rec.splits import SplitSettings
from movie_rec.synthetic import PRESETS

REPO_ROOT = Path(__file__).resolve().parents[1]
DEVICES = ("cpu", "cuda")


def shipped_parameters(overrides: dict[str, str]) -> dict[str, Any]:
    """Every ``conf/base/parameters*.yml`` merged, with ``KEY=VALUE`` overrides (YAML values)."""
    params: dict[str, Any] = {}
    for path in sorted((REPO_ROOT / "conf" / "base").glob("parameters*.yml")):
        params.update(yaml.safe_load(path.read_text()) or {})
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return params


def answers_per_user(params: dict[str, Any]) -> int:
    split = SplitSettings.from_params(params["data_processing"]["split"])
    return split.n_last + split.n_random


def preset_shape(name: str, held_out: int) -> DataShape:
    preset = PRESETS[name]
    return DataShape(
        preset.n_users, preset.n_items, round(preset.n_users * (preset.mean_history - held_out))
    )


def raw_shape(raw_dir: Path, held_out: int) -> DataShape:
    ratings = pd.read_csv(raw_dir / "train_ratings.csv", usecols=["user", "item"])
    users, items = ratings["user"].nunique(), ratings["item"].nunique()
    return DataShape(users, items, len(ratings) - held_out * users)


def auto_table(shape: DataShape, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Per model: its switch, and per device its estimated minutes and whether it runs."""
    plans = {device: run_plan(params, shape, device) for device in DEVICES}
    rows = []
    for lines in zip(*plans.values(), strict=True):
        row: dict[str, Any] = {"model": lines[0].model, "enabled": lines[0].enabled}
        for device, line in zip(DEVICES, lines, strict=True):
            row[f"{device} trials"] = line.trials
            row[f"{device} min"] = round(line.minutes, 2)
            row[f"{device} runs"] = "on" if line.runs else "off"
        rows.append(row)
    return rows


def measured_seconds(project: Path) -> dict[str, dict[str, float]]:
    """Per model, the seconds its metrics record: tuning, fits and predictions."""
    measured = {}
    for path in (project / "data" / "08_reporting").glob("*_metrics.json"):
        metrics = json.loads(path.read_text())
        if "fit_seconds" not in metrics:
            continue
        parts = ("fit_seconds", "final_fit_seconds", "predict_seconds", "final_predict_seconds")
        seconds = sum(float(metrics.get(key) or 0) for key in parts)
        trials = path.with_name(f"{metrics['model']}_optuna_trials.csv")
        if trials.exists():
            seconds += float(pd.read_csv(trials).get("duration_seconds", pd.Series()).sum())
        measured[metrics["model"]] = {
            "measured s": round(seconds, 1),
            "recall@10": round(float(metrics["recall@10"]), 4),
        }
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", default=["sample", "medium", "competition"])
    parser.add_argument("--raw-dir", type=Path, help="also the shape of this raw folder")
    parser.add_argument("--measured", type=Path, help="a project after kedro run")
    parser.add_argument("--params", nargs="*", default=[], help="KEY=VALUE overrides")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    params = shipped_parameters(parse_params(args.params))
    held_out = answers_per_user(params)
    shapes = {name: preset_shape(name, held_out) for name in args.presets}
    if args.raw_dir:
        shapes[str(args.raw_dir)] = raw_shape(args.raw_dir, held_out)
    if args.measured:
        matrix = sp.load_npz(args.measured / "data" / "05_model_input" / "train_matrix_valid.npz")
        shapes[str(args.measured)] = DataShape.of(matrix)
    budget = runtime_settings(params).auto_max_minutes  # per device
    for label, shape in shapes.items():
        print(f"\n{label}: {shape.users:,} users x {shape.items:,} movies, "
              f"{shape.interactions:,} training interactions; auto_max_minutes = {budget}")  # fmt: skip
        measured = measured_seconds(args.measured) if label == str(args.measured) else {}
        rows = [{**row, **measured.get(row["model"], {})} for row in auto_table(shape, params)]
        columns = {key: key for key in rows[0]} | {
            key: key for key in ("measured s", "recall@10") if measured
        }
        print(table(rows, columns, args.markdown))


if __name__ == "__main__":
    main()

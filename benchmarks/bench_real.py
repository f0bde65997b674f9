"""Benchmark: every list's Recall@10 on a raw folder over several split seeds, with standard errors.

Quality decisions are judged here on real viewing histories (a user's own raw folder in the
competition's format) as well as on the synthetic presets. For each split seed the default
pipeline runs in its own scratch project (``data_processing.split.seed=S``) up to the
ensemble; then, per list (every enabled model, every fusion method, the submission), the
Recall@10 on the held-out half of the validation users (``ensemble_metrics.json``: overall,
last, random and per last/random mix) is averaged over the seeds and printed with its
standard error across seeds, and its ratio to a reference list (``--reference``, EASE).

With ``--keep DIR`` each seed's project stays under ``DIR/seed_S``; ``--reuse DIR`` then
reruns only ``--pipelines`` there (say ``tabular_rec ensembling``) with other ``--params``,
which is how a second-stage change is judged without refitting the first stages.

    python benchmarks/bench_real.py --raw-dir DIR [--preset sample] [--split-seeds 42 1 2]
        [--pipelines ...] [--params KEY=VALUE ...] [--keep DIR | --reuse DIR] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench_pipeline import (
    PIPELINES,
    layout,
    params_option,
    parse_params,
    prepare_project,
    read_json,
)
from common import kedro_command, kedro_env, measured_run, scratch_project

RUN_PIPELINES = PIPELINES[:-1]  # reporting is not needed for the figures
COLUMNS = ("recall@10", "recall@10_last", "recall@10_random")
LABELS = {"recall@10": "overall", "recall@10_last": "last", "recall@10_random": "random"}


def run_seed(project: Path, pipelines: Sequence[str], params: dict[str, str]) -> float:
    """The pipelines, one ``kedro run`` each, in ``project``; returns the wall seconds."""
    logs = project / "logs"
    logs.mkdir(exist_ok=True)
    seconds = 0.0
    for name in pipelines:
        log = logs / f"{name}.log"
        with log.open("w") as output:
            command = kedro_command(f"--pipelines={name}", *params_option(params))
            run = measured_run(command, project, kedro_env(), output)
        seconds += run.seconds
        print(f"  {name}: {run.seconds:.1f} s", flush=True)
        if run.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise SystemExit(f"{name} failed in {project} (exit {run.returncode}):\n{tail}")
    return seconds


def holdout_figures(project: Path) -> dict[str, dict[str, float]]:
    """Per list: the holdout half's Recall@10 overall / last / random and per mix."""
    reporting = project / "data" / "08_reporting"
    metrics = read_json(reporting / "ensemble_metrics.json")
    weights = read_json(project / "data" / "07_model_output" / "ensemble_weights.json")
    if metrics is None or weights is None:
        raise SystemExit(f"{project}: no ensemble outputs; run the pipelines first")
    lists = {name: halves["holdout"] for name, halves in metrics["models"].items()}
    lists |= {f"ensemble_{m}": figures["holdout"] for m, figures in metrics["ensembles"].items()}
    lists["submission"] = lists[f"ensemble_{weights['method']}"]
    rows = {}
    for name, figures in lists.items():
        by_mix = metrics["by_mix"].get(name if name != "submission" else
                                       f"ensemble_{weights['method']}", {})  # fmt: skip
        rows[name] = {key: figures[key] for key in COLUMNS} | {
            mix: value for mix, value in by_mix.items() if mix not in ("mean", "worst")
        }
    return rows


def summarise(per_seed: list[dict[str, dict[str, float]]], reference: str) -> list[dict[str, Any]]:
    """Mean and standard error over seeds of each figure, and of the ratio to ``reference``."""
    names = [name for name in per_seed[0] if all(name in seed for seed in per_seed)]
    rows = []
    for name in names:
        row: dict[str, Any] = {"list": name}
        for key in per_seed[0][name]:
            values = np.array([seed[name][key] for seed in per_seed], dtype=float)
            row[key] = (values.mean(), standard_error(values))
        if reference in names:
            ratios = np.array(
                [seed[name]["recall@10"] / seed[reference]["recall@10"] for seed in per_seed]
            )
            row["ratio"] = (ratios.mean(), standard_error(ratios))
        rows.append(row)
    return sorted(rows, key=lambda row: -row["recall@10"][0])


def standard_error(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def render(rows: list[dict[str, Any]], markdown: bool) -> str:
    keys = [key for key in rows[0] if key != "list"]
    header = ["list", *(LABELS.get(key, key if key != "ratio" else "× reference") for key in keys)]
    body = [[row["list"], *(f"{row[k][0]:.4f} ± {row[k][1]:.4f}" for k in keys)] for row in rows]
    return layout(header, body, markdown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--raw-dir", type=Path, help="a raw folder in the competition's format")
    source.add_argument("--preset", help="a synthetic preset generated into each project")
    parser.add_argument("--split-seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--pipelines", nargs="+", default=list(RUN_PIPELINES))
    parser.add_argument("--params", nargs="+", default=[], metavar="KEY=VALUE")
    parser.add_argument("--reference", default="ease", help="the list ratios are taken to")
    folders = parser.add_mutually_exclusive_group()
    folders.add_argument("--keep", type=Path, help="keep each seed's project in DIR/seed_S")
    folders.add_argument("--reuse", type=Path, help="rerun --pipelines in DIR/seed_S")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    overrides = parse_params(args.params)
    root = args.reuse or args.keep or Path(tempfile.mkdtemp(prefix="bench_real_"))
    per_seed = []
    for seed in args.split_seeds:
        project = root.resolve() / f"seed_{seed}"
        params = {"data_processing.split.seed": str(seed), **overrides}
        if args.raw_dir is not None:
            params["raw_dir"] = str(args.raw_dir.resolve())
        if args.reuse is None:
            project.mkdir(parents=True)
            if args.raw_dir is None:
                project, run_params = prepare_project(project, args.preset, 42)
                params = run_params | params
            else:
                scratch_project(project)
        print(f"split seed {seed} ({project}):", flush=True)
        seconds = run_seed(project, args.pipelines, params)
        print(f"  {seconds:.1f} s in all", flush=True)
        per_seed.append(holdout_figures(project))
    rows = summarise(per_seed, args.reference)
    (root / "bench_real.json").write_text(json.dumps({"seeds": args.split_seeds,
                                                      "per_seed": per_seed}, indent=2))  # fmt: skip
    source = args.raw_dir or f"preset {args.preset}"
    print(f"\n{source}, split seeds {args.split_seeds}, held-out half of the validation users;")
    print(f"mean ± standard error over the seeds; ratio to {args.reference} per seed\n")
    print(render(rows, args.markdown))


if __name__ == "__main__":
    main()

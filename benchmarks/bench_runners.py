"""Benchmark: the default ``kedro run`` with the sequential runner and with the Dask runner.

Runs the whole default pipeline twice on a preset, each time in a fresh scratch project (its
own ``data/`` and Optuna studies): once as a plain ``kedro run``, once as ``kedro run
--runner=movie_rec.runners.DaskRunner`` on a local cluster of ``--workers`` single-threaded
worker processes (``runtime.dask_workers``). Prints the wall seconds side by side, the
machine, whether the two submissions are the same file byte for byte (on the CPU they must
be), and the sequential run's seconds per model. The scratch projects stay in a temporary
folder, which it names.

The sequential run's torch uses every core (its default); a Dask worker process starts with
``OMP_NUM_THREADS=1``, so the cluster's workers share the cores between them instead.

    python benchmarks/bench_runners.py [--preset tiny|sample] [--seed S] [--workers N]
        [--params KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_pipeline import (
    MODEL_COLUMNS,
    machine,
    model_rows,
    params_option,
    parse_params,
    prepare_project,
    table,
)
from common import kedro_command, kedro_env, measured_run
from movie_rec.synthetic import PRESETS

SUBMISSION = Path("data/07_model_output/submission.csv")


def timed_default_run(project: Path, params: dict[str, str], *options: str) -> float:
    """Wall seconds of ``kedro run OPTIONS`` in ``project`` (its log beside its data)."""
    with (project / "kedro_run.log").open("w") as log:
        run = measured_run(
            kedro_command(*options, *params_option(params)), project, kedro_env(), log
        )
    if run.returncode != 0:
        raise SystemExit(f"kedro run failed in {project}; see {project / 'kedro_run.log'}")
    return run.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--preset", choices=sorted(set(PRESETS) - {"competition"}), default="sample"
    )
    parser.add_argument("--seed", type=int, default=42, help="the synthetic data's seed")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the cluster")
    parser.add_argument(
        "--params", nargs="+", default=[], metavar="KEY=VALUE", help="kedro run --params overrides"
    )
    args = parser.parse_args()
    params = parse_params(args.params)
    root = Path(tempfile.mkdtemp(prefix="bench_runners_"))
    runs = {
        "sequential": ([], {}),
        f"Dask, local cluster of {args.workers}": (
            ["--runner=movie_rec.runners.DaskRunner"],
            {"runtime.dask_workers": str(args.workers)},
        ),
    }
    seconds, submissions, projects = {}, {}, {}
    for label, (options, extra) in runs.items():
        project, _ = prepare_project(root / label.split(",")[0].lower(), args.preset, args.seed)
        projects[label] = project
        print(f"running the default pipeline, {label} runner, in {project} ...", flush=True)
        seconds[label] = timed_default_run(project, {**params, **extra}, *options)
        submissions[label] = (project / SUBMISSION).read_bytes()
        print(f"  {seconds[label]:.1f} s", flush=True)

    info = machine()
    print(
        f"\nmachine: {info['processor']}, {info['cpu_count']} CPUs ({info['cpus_usable']} usable),"
        f" torch device {info['device']}; preset {args.preset}, seed {args.seed}"
    )
    print("\n| runner | wall s | wall min |\n|---|---|---|")
    for label, value in seconds.items():
        print(f"| {label} | {value:.1f} | {value / 60:.1f} |")
    same = len(set(submissions.values())) == 1
    print(f"\nsubmissions byte for byte the same: {same}")
    sequential = projects["sequential"]
    print(f"\nthe sequential run's models ({sequential}):\n")
    print(table(model_rows(sequential)[0], MODEL_COLUMNS, markdown=True))
    print(f"\nthe projects and their logs: {root}")


if __name__ == "__main__":
    main()

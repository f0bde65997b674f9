"""Helpers the benchmark scripts share: competition-scale data and timed Kedro runs.

A benchmark runs ``kedro run`` in a scratch copy of the project (``conf/`` and
``pyproject.toml``), so it never overwrites the outputs under this checkout's ``data/``.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from movie_rec.synthetic import describe, generate, write_raw

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO_ROOT / "data" / "benchmarks" / "competition"
RAW_FILES = (
    "train_ratings.csv",
    "titles.tsv",
    "years.tsv",
    "directors.tsv",
    "writers.tsv",
    "genres.tsv",
)


def competition_data(cache: Path = DEFAULT_CACHE, regenerate: bool = False, seed: int = 42) -> Path:
    """The folder holding the ``competition`` preset, generated once and then reused."""
    if regenerate or not all((cache / name).exists() for name in RAW_FILES):
        started = time.perf_counter()
        tables = generate("competition", seed=seed)
        write_raw(tables, cache)
        print(f"generated the competition preset in {time.perf_counter() - started:.1f} s")
        print(describe(tables))
    return cache


def scratch_project(root: Path) -> Path:
    """A throw-away copy of the project (configuration only; the package is installed)."""
    shutil.copytree(REPO_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir(exist_ok=True)
    (root / "src").mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def timed_kedro_run(project: Path, *args: str) -> tuple[float, float]:
    """Run ``kedro run ARGS`` in ``project``; return (wall seconds, peak RSS of the run in GB)."""
    kedro = Path(sys.executable).with_name("kedro")
    started = time.perf_counter()
    subprocess.run(
        [str(kedro), "run", *args],
        cwd=project,
        check=True,
        env={"KEDRO_DISABLE_TELEMETRY": "1", "PATH": str(kedro.parent) + ":/usr/bin:/bin"},
    )
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak_kb / 1024**2

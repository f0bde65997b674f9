"""Helpers the benchmark scripts share: cached large presets and timed Kedro runs.

A benchmark runs ``kedro run`` in a scratch copy of the project (``conf/`` and
``pyproject.toml``), so it never overwrites the outputs under this checkout's ``data/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from movie_rec.synthetic import describe, generate, write_raw

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_ROOT = REPO_ROOT / "data" / "benchmarks"
CACHED_PRESETS = ("medium", "competition")  # generated once into CACHE_ROOT, then reused
RAW_FILES = (
    "train_ratings.csv",
    "titles.tsv",
    "years.tsv",
    "directors.tsv",
    "writers.tsv",
    "genres.tsv",
)
PROCESS_PEAK_LINE = re.compile(r"process peak RSS (?P<peak>[\d.]+) GB")  # hooks.NodeMemoryHooks


def cached_preset(
    preset: str = "competition", cache: Path | None = None, regenerate: bool = False, seed: int = 42
) -> Path:
    """The folder holding a large synthetic preset (``medium``, ``competition``), generated
    once and then reused.

    The default cache is ``data/benchmarks/<preset>`` for seed 42 and a sibling folder per
    other seed.
    """
    if cache is None:
        cache = CACHE_ROOT / (preset if seed == 42 else f"{preset}_seed{seed}")
    if regenerate or not all((cache / name).exists() for name in RAW_FILES):
        started = time.perf_counter()
        tables = generate(preset, seed=seed)
        write_raw(tables, cache)
        print(f"generated the {preset} preset in {time.perf_counter() - started:.1f} s")
        print(describe(tables))
    return cache


def scratch_project(root: Path) -> Path:
    """A throw-away copy of the project (configuration only; the package is installed)."""
    shutil.copytree(REPO_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir(exist_ok=True)
    (root / "src").mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@dataclass(frozen=True)
class ChildRun:
    """One finished child process: wall seconds, its own peak RSS, its exit status and its
    output (stdout and stderr)."""

    seconds: float
    peak_rss_gb: float
    returncode: int
    log: str


def measured_run(
    command: list[str], cwd: Path, env: dict[str, str], output: IO | None = None
) -> ChildRun:
    """Run ``command`` and measure it alone; its output goes to ``output`` (default: this
    process's stdout) as it comes.

    The peak RSS is the child's own (``os.wait4``), not ``RUSAGE_CHILDREN``, which is the
    maximum over every child this process has waited for so far. Linux reports
    ``ru_maxrss`` in KB. The project's hooks reset the child's high-water mark before each
    node, which lowers that figure to the peak since the last node started, so the peak is
    the larger of it and the process peak the child logs (``process peak RSS G GB``).
    """
    started = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace",
    )  # fmt: skip
    log = tee(child.stdout, output or sys.stdout)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    peak = max(usage.ru_maxrss / 1024**2, logged_peak_gb(log))
    return ChildRun(seconds, peak, child.returncode, log)


def tee(lines: IO, output: IO) -> str:
    """Copy ``lines`` to ``output`` line by line, until they end; return them all."""
    kept = []
    for line in lines:
        output.write(line)
        output.flush()
        kept.append(line)
    return "".join(kept)


def logged_peak_gb(log: str) -> float:
    """The largest ``process peak RSS`` the log reports (0 without one)."""
    return max((float(found["peak"]) for found in PROCESS_PEAK_LINE.finditer(log)), default=0.0)


def kedro_command(*args: str) -> list[str]:
    """``kedro run ARGS`` with the kedro of this Python's environment."""
    return [str(Path(sys.executable).with_name("kedro")), "run", *args]


def kedro_env() -> dict[str, str]:
    """This process's environment, with Kedro's telemetry off and this venv first on PATH
    (the project's ``conf/logging.yml`` writes one log record a line)."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "PATH": f"{bin_dir}:{path}",
    }


def timed_kedro_run(project: Path, *args: str) -> tuple[float, float]:
    """Run ``kedro run ARGS`` in ``project``; return (wall seconds, peak RSS of the run in GB)."""
    run = measured_run(kedro_command(*args), project, kedro_env())
    if run.returncode != 0:
        raise subprocess.CalledProcessError(run.returncode, kedro_command(*args))
    return run.seconds, run.peak_rss_gb

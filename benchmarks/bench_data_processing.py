"""Benchmark: data_processing on the competition-scale synthetic preset.

Generates (once, cached under data/benchmarks/competition) 31,360 users × 6,807 movies ×
~5.15M interactions, runs ``kedro run --pipelines=data_processing`` on it in a scratch
project, and prints wall time and peak memory. Target on a 2-core CPU: ≤ 60 s, ≤ 3 GB.

    python benchmarks/bench_data_processing.py [--regenerate]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

from common import cached_preset, scratch_project, timed_kedro_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regenerate", action="store_true", help="regenerate the cached data")
    args = parser.parse_args()
    raw_dir = cached_preset("competition", regenerate=args.regenerate)
    with tempfile.TemporaryDirectory() as root:
        project = scratch_project(Path(root))
        seconds, peak_gb = timed_kedro_run(
            project, "--pipelines=data_processing", f"--params=raw_dir={raw_dir}"
        )
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"data_processing wall time: {seconds:.1f} s (target ≤ 60 s)")
    print(f"data_processing peak RSS: {peak_gb:.2f} GB (target ≤ 3 GB)")


if __name__ == "__main__":
    main()

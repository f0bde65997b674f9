"""Per-node peak memory: a resettable high-water mark, the node lines the project's hooks log
and what ``benchmarks/bench_pipeline.py`` reads from them."""

from __future__ import annotations

import importlib
import logging
import resource
import sys
import textwrap
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from movie_rec import peak_memory
from movie_rec.hooks import NodeMemoryHooks
from movie_rec.peak_memory import peak_rss_gb, reset_peak

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
ARRAY_BYTES = 200 * 10**6
ARRAY_GB = ARRAY_BYTES / 1024**3


def benchmark(name: str) -> ModuleType:
    """A module of ``benchmarks/`` (they import each other as top-level modules)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


def touched_array() -> np.ndarray:
    return np.ones(ARRAY_BYTES // 8)  # every page written: resident


@pytest.fixture
def resettable() -> None:
    if not reset_peak():
        pytest.skip("the high-water mark cannot be reset here (Linux /proc/self/clear_refs)")


@pytest.mark.usefixtures("resettable")
def test_the_peak_grows_with_an_allocation_and_falls_back_after_a_reset() -> None:
    before = peak_rss_gb()
    array = touched_array()
    grown = peak_rss_gb()
    assert grown >= before + 0.9 * ARRAY_GB
    del array
    assert reset_peak()
    assert peak_rss_gb() < grown - 0.5 * ARRAY_GB


def test_without_proc_the_peak_is_ru_maxrss_and_no_reset(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(peak_memory, "STATUS", tmp_path / "missing" / "status")
    monkeypatch.setattr(peak_memory, "CLEAR_REFS", tmp_path / "missing" / "clear_refs")
    assert reset_peak() is False
    ru_maxrss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    assert peak_rss_gb() == pytest.approx(ru_maxrss_gb, rel=0.05)


def test_the_hooks_log_one_line_per_node_that_bench_pipeline_reads(caplog) -> None:
    hooks, node = NodeMemoryHooks(), SimpleNamespace(name="general_rec.ease.fit_final")
    caplog.set_level(logging.INFO, logger="movie_rec.hooks")
    hooks.before_node_run(node)
    hooks.after_node_run(node)
    hooks.after_node_run(node)  # no start recorded (a Dask worker's stray call): no line
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1
    rows = benchmark("bench_pipeline").node_rows(messages[0])
    assert [row["node"] for row in rows] == [node.name]
    assert 0 <= rows[0]["seconds"] < 60
    assert rows[0]["peak_rss_gb"] == pytest.approx(peak_rss_gb(), abs=0.05)


def test_node_rows_reads_the_lines_of_a_kedro_log() -> None:
    log = (
        "[05/01/26 10:00:00] INFO     Running node: fit_final: fit([train]) -> [model]  node.py:1\n"
        "                    INFO     node sequential_rec.sasrec.fit_final: 125.4 s, peak RSS"
        " 3.21 GB                   hooks.py:98\n"
        "                    INFO     node report: 0.2 s, peak RSS 0.80 GB     hooks.py:98\n"
        "                    INFO     process peak RSS 3.50 GB                  hooks.py:110\n"
    )
    bench_pipeline = benchmark("bench_pipeline")
    rows = bench_pipeline.node_rows(log)
    assert rows == [
        {"node": "sequential_rec.sasrec.fit_final", "seconds": 125.4, "peak_rss_gb": 3.21},
        {"node": "report", "seconds": 0.2, "peak_rss_gb": 0.80},
    ]
    assert bench_pipeline.node_at_peak(rows) == "sequential_rec.sasrec.fit_final"
    assert benchmark("common").logged_peak_gb(log) == 3.50


@pytest.mark.usefixtures("resettable")
def test_a_child_s_peak_survives_the_node_resets(tmp_path) -> None:
    """The hooks' reset lowers the peak ``wait4`` reports: the logged process peak keeps it."""
    script = textwrap.dedent(
        f"""
        import logging, sys
        from types import SimpleNamespace
        import numpy as np
        from movie_rec.hooks import NodeMemoryHooks

        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
        hooks = NodeMemoryHooks()
        for name, size in (("big", {ARRAY_BYTES // 8}), ("small", 1)):
            hooks.before_node_run(SimpleNamespace(name=name))
            array = np.ones(size)
            del array
            hooks.after_node_run(SimpleNamespace(name=name))
        hooks.after_pipeline_run()
        """
    )
    common, bench_pipeline = benchmark("common"), benchmark("bench_pipeline")
    with (tmp_path / "child.log").open("w") as output:
        run = common.measured_run(
            [sys.executable, "-c", script], tmp_path, common.kedro_env(), output
        )
    assert run.returncode == 0, run.log
    assert (tmp_path / "child.log").read_text() == run.log
    nodes = {row["node"]: row["peak_rss_gb"] for row in bench_pipeline.node_rows(run.log)}
    assert nodes["small"] < nodes["big"] - 0.5 * ARRAY_GB
    assert run.peak_rss_gb >= nodes["big"]


def test_pipelines_csv_holds_no_node_rows(tmp_path) -> None:
    bench_pipeline = benchmark("bench_pipeline")
    nodes = [
        {"pipeline": "general_rec", "node": name, "seconds": 1.0, "peak_rss_gb": 1.0}
        for name in ("ease.tune", "ease.fit_final")
    ]
    pipeline = {"pipeline": "general_rec", "seconds": 3.0, "peak_rss_gb": 1.2}
    record = {"pipelines": [{**pipeline, "node_at_peak": "ease.tune"}], "nodes": nodes}
    bench_pipeline.write_results(tmp_path, {**record, "models": []})
    written = pd.read_csv(tmp_path / "pipelines.csv")
    assert written["pipeline"].tolist() == ["general_rec"]
    assert written["node_at_peak"].tolist() == ["ease.tune"]

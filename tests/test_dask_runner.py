"""``movie_rec.runners.DaskRunner`` on real ``dask.distributed`` clusters.

``cluster`` starts what a cluster runs: ``dask scheduler`` and two single-threaded ``dask
worker`` processes on localhost. On it the default pipeline (tiny preset) must give the
sequential runner's submission byte for byte, with two model namespaces running at once on
different workers, and in-memory datasets must reach nodes in other worker processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, Scheduler, SpecCluster, Worker
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline

from movie_rec.pipelines.model_nodes import GPU_TAG
from movie_rec.registry import MODELS
from movie_rec.runners import DaskRunner, gpu_request
from movie_rec.runtime import RuntimeSettings
from movie_rec.synthetic import generate
from tests.conftest import (
    REPO_ROOT,
    TINY_RUN_SEED,
    make_project,
    run_pipeline,
    study_storage_dir,
)
from tests.test_default_pipeline import TINY_PARAMS

WORKERS = ("first", "second")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[str]:
    """A scheduler and two worker processes on localhost; yields the scheduler's address."""
    folder = tmp_path_factory.mktemp("dask")
    dask = str(Path(sys.executable).with_name("dask"))
    scheduler_file = folder / "scheduler.json"
    # the workers import tests' functions, and the package from where this process does
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    logs = (folder / "cluster.log").open("w")
    processes = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            cwd=folder, env=env, stdout=logs, stderr=logs,
        )
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        processes += [
            subprocess.Popen(
                [dask, "worker", address, "--name", name, "--nworkers", "1", "--nthreads", "1",
                 "--no-dashboard"],
                cwd=folder, env=env, stdout=logs, stderr=logs,
            )
            for name in WORKERS
        ]  # fmt: skip
        with Client(address) as client:
            client.wait_for_workers(len(WORKERS), timeout=120)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=60)
        logs.close()


def task_stream(address: str, run: Any) -> list[dict[str, Any]]:
    """The scheduler's record of every task ``run()`` computed: node, worker, start, stop."""
    with Client(address) as client:
        client.get_task_stream()  # starts recording
        started = time.time()
        run()
        records = client.get_task_stream(start=started)
        workers = client.scheduler_info(n_workers=-1)["workers"]
        names = {address: info["name"] for address, info in workers.items()}
    return [
        {
            "node": record["key"].rsplit("-", 1)[0],
            "worker": names.get(record["worker"], record["worker"]),
            "start": span["start"],
            "stop": span["stop"],
        }
        for record in records
        for span in record["startstops"]
        if span["action"] == "compute"
    ]


def produce(part: int) -> list[int]:
    time.sleep(0.5)  # long enough for both workers to take some
    return [part, os.getpid()]


def combine(*parts: list[int]) -> dict[str, Any]:
    return {"parts": sorted(part for part, _ in parts), "processes": {pid for _, pid in parts}}


def fan_in(n: int) -> Pipeline:
    """``n`` nodes whose outputs only live in memory, read by one node."""
    producers = [Node(produce, f"params:part_{i}", f"part_{i}", name=f"p{i}") for i in range(n)]
    return Pipeline([*producers, Node(combine, [f"part_{i}" for i in range(n)], "combined")])


def catalog_of(runtime: RuntimeSettings | dict[str, Any], n: int = 0) -> DataCatalog:
    """``params:runtime`` typed, as a run whose nodes read it has it, or a raw section, as a
    run of pipelines that do not (``--pipeline=data_processing``) leaves it."""
    datasets = {f"params:part_{i}": MemoryDataset(i) for i in range(n)}
    return DataCatalog({"params:runtime": MemoryDataset(runtime), **datasets})


def test_in_memory_datasets_reach_nodes_in_other_worker_processes(cluster):
    outputs = {}

    def run() -> None:
        catalog = catalog_of({"dask_address": cluster}, n=6)
        outputs.update(DaskRunner().run(fan_in(6), catalog))

    stream = task_stream(cluster, run)
    producers = [record for record in stream if record["node"].startswith("p")]
    assert {record["worker"] for record in producers} == set(WORKERS)
    combined = outputs["combined"].load()  # a free output comes back to this catalog
    assert combined["parts"] == list(range(6)) and len(combined["processes"]) == 2


def test_without_an_address_the_runner_starts_a_local_cluster():
    catalog = catalog_of(RuntimeSettings(dask_workers=1), n=2)
    combined = DaskRunner().run(fan_in(2), catalog)["combined"].load()
    assert combined["parts"] == [0, 1] and os.getpid() not in combined["processes"]


def fit_on(device: str) -> str:
    return f"{device}:{os.getpid()}"


def test_gpu_nodes_take_a_gpu_only_when_a_gpu_is_in_use():
    gpu = {"cls": Worker, "options": {"nthreads": 1, "resources": {"GPU": 1}, "name": "gpu"}}
    cpu = {"cls": Worker, "options": {"nthreads": 1, "name": "cpu"}}
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None}}
    with SpecCluster(workers={"gpu": gpu, "cpu": cpu}, scheduler=scheduler) as spec:
        address = spec.scheduler_address
        pipeline = Pipeline(
            [Node(fit_on, "params:part_0", f"fit_{i}", name=f"fit_{i}", tags=GPU_TAG)
             for i in range(4)]
        )  # fmt: skip
        stream = task_stream(address, lambda: DaskRunner().run(pipeline, catalog_of(
            {"dask_address": address, "device": "auto"}, n=1)))  # fmt: skip
        assert {record["worker"] for record in stream} == {"gpu"}
        with Client(address) as client:
            assert gpu_request(client, RuntimeSettings(device="auto")) == {"GPU": 1}
            assert gpu_request(client, RuntimeSettings(device="cpu")) is None


@pytest.mark.slow
def test_the_default_pipeline_on_a_cluster_gives_the_sequential_submission(
    cluster, tiny_run, tmp_path
):
    project = make_project(tmp_path, generate("tiny", seed=TINY_RUN_SEED))
    params = {**TINY_PARAMS, **study_storage_dir(project), "runtime.dask_address": cluster}
    stream = task_stream(cluster, lambda: run_pipeline(project, None, params, runner=DaskRunner()))

    submission = project / "data" / "07_model_output" / "submission.csv"
    expected = tiny_run / "data" / "07_model_output" / "submission.csv"
    assert submission.read_bytes() == expected.read_bytes()

    fits = [record for record in stream if record["node"].split(".")[0] in MODELS]
    overlapping = [
        (a["node"], b["node"])
        for a, b in combinations(fits, 2)
        if a["node"].split(".")[0] != b["node"].split(".")[0]
        and a["worker"] != b["worker"]
        and a["start"] < b["stop"]
        and b["start"] < a["stop"]
    ]
    assert overlapping, "no two model namespaces ran at the same time on different workers"

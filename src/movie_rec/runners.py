"""``DaskRunner``: every node of a Kedro pipeline as a task on a Dask cluster, after its inputs.

    kedro run --runner=movie_rec.runners.DaskRunner --params=runtime.dask_address=tcp://HOST:8786

It follows Kedro's deployment guide "Distribute a Kedro pipeline with Dask": each node is
submitted with ``Client.submit`` together with the futures of the nodes it depends on, so
Dask starts it once they are done, on whichever worker is free; the hook manager, which
cannot be serialised, is built on the worker. On top of the guide:

* **The cluster**: ``runtime.dask_address`` connects to a running scheduler; without it the
  runner starts a ``LocalCluster`` of ``runtime.dask_workers`` single-threaded worker
  processes on this machine (``null``: one per core) and closes it after the run.
* **In-memory datasets across processes**: the outputs the catalog keeps in memory
  (``MemoryDataset``: the ranker's feature frames, the report's images) are the result of
  their node's task; Dask hands them to the tasks that read them, on any worker, and drops
  them once those have run. Every other dataset is saved and loaded through the catalog, so
  ``data/`` (or the catalog's fsspec URLs) must be storage every worker sees at the same path.
* **GPUs**: a node tagged :data:`~movie_rec.pipelines.model_nodes.GPU_TAG` (the fitting
  nodes of the models that train on ``runtime.device``, and S3Rec's pre-training) asks for
  one ``GPU`` resource when a GPU is in use, i.e. ``runtime.device`` is not ``cpu`` and a
  worker advertises the resource (``dask worker ... --resources GPU=1``): such a worker runs
  one of them at a time. Every other node runs on any worker.

Node hooks (``before_node_run``, ``after_node_run``...) run on the worker, with the project's
hooks; pipeline hooks run here. Dask starts its worker processes with ``OMP_NUM_THREADS=1``:
a worker applies ``runtime.torch_threads`` when it is set.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from distributed import Client, Future, LocalCluster, as_completed
from kedro.framework import project
from kedro.framework.hooks.manager import (
    _create_hook_manager,
    _register_hooks,
    _register_hooks_entry_points,
)
from kedro.io import CatalogProtocol
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from kedro.runner import AbstractRunner
from kedro.runner.task import Task
from pluggy import PluginManager

from movie_rec.pipelines.model_nodes import GPU_TAG
from movie_rec.runtime import RuntimeSettings

logger = logging.getLogger(__name__)

GPU_RESOURCE = "GPU"


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs to run any node of this run.

    Attributes:
        package_name: the Kedro project whose settings (hooks) the worker loads.
        logging_config: the run's logging configuration.
        torch_threads: ``runtime.torch_threads`` (``None``: leave torch's setting).
        is_async: load and save a node's datasets with threads.
        run_id: the run's id, passed to the hooks.
        in_memory: the datasets of this run that the catalog keeps in memory.
    """

    package_name: str | None
    logging_config: dict[str, Any]
    torch_threads: int | None
    is_async: bool
    run_id: str | None
    in_memory: frozenset[str]


def prepare_worker(setup: WorkerSetup) -> None:
    """Load the project's settings and logging once per worker process; set torch's threads."""
    if setup.package_name and project.PACKAGE_NAME != setup.package_name:
        project.configure_project(setup.package_name)
        project.configure_logging(setup.logging_config)
    if setup.torch_threads:
        torch.set_num_threads(setup.torch_threads)


def worker_hook_manager() -> PluginManager:
    """The project's hooks, as ``KedroSession`` registers them."""
    hook_manager = _create_hook_manager()
    _register_hooks(hook_manager, project.settings.HOOKS)
    _register_hooks_entry_points(hook_manager, project.settings.DISABLE_HOOKS_FOR_PLUGINS)
    return hook_manager


def run_node(
    node: Node, catalog: CatalogProtocol, setup: WorkerSetup, *upstream: dict[str, Any]
) -> dict[str, Any]:
    """Run ``node`` on this worker; return its outputs that the catalog keeps in memory.

    ``upstream`` are the in-memory outputs of the nodes it depends on (Dask resolved their
    futures to values on this worker); the ones it reads go into this task's own copy of the
    catalog before it runs.
    """
    prepare_worker(setup)
    for outputs in upstream:
        for name, data in outputs.items():
            if name in node.inputs:
                catalog.save(name, data)
    Task(
        node=node,
        catalog=catalog,
        is_async=setup.is_async,
        hook_manager=worker_hook_manager(),
        run_id=setup.run_id,
    ).execute()
    return {name: catalog.load(name) for name in node.outputs if name in setup.in_memory}


@contextmanager
def dask_client(runtime: RuntimeSettings) -> Iterator[Client]:
    """A client of the scheduler at ``runtime.dask_address``, or of a new local cluster."""
    address = runtime.dask_address
    if address:
        with Client(address) as client:
            yield client
        return
    with (
        LocalCluster(n_workers=runtime.dask_workers, threads_per_worker=1) as cluster,
        Client(cluster) as client,
    ):
        yield client


def gpu_request(client: Client, runtime: RuntimeSettings) -> dict[str, int] | None:
    """``{"GPU": 1}`` for the GPU-tagged nodes when a GPU is in use, else ``None``.

    A GPU is in use when ``runtime.device`` is not ``cpu`` and a worker of the cluster
    advertises the ``GPU`` resource; without one, the tagged nodes run on any worker.
    """
    device = runtime.device
    if device == "cpu":
        return None
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    if any(worker.get("resources", {}).get(GPU_RESOURCE) for worker in workers):
        return {GPU_RESOURCE: 1}
    if device.startswith("cuda"):
        logger.warning(
            "runtime.device is %s but no Dask worker advertises a %s resource: the GPU nodes "
            "run on any worker (start GPU workers with `dask worker ... --resources %s=1`)",
            device,
            GPU_RESOURCE,
            GPU_RESOURCE,
        )
    return None


class DaskRunner(AbstractRunner):
    """Runs each node as a Dask task once the nodes it depends on are done (module docstring)."""

    def _get_executor(self, max_workers: int) -> None:
        return None  # Dask schedules the nodes

    def _run(
        self,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        hook_manager: PluginManager | None = None,
        run_id: str | None = None,
    ) -> None:
        runtime = RuntimeSettings.of(catalog.load("params:runtime"))
        in_memory = frozenset(
            name
            for name in pipeline.all_outputs()
            if getattr(catalog.get(name), "_EPHEMERAL", False)
        )
        setup = WorkerSetup(
            project.PACKAGE_NAME,
            dict(project.LOGGING),
            runtime.torch_threads,
            self._is_async,
            run_id,
            in_memory,
        )
        with dask_client(runtime) as client:
            if runtime.dask_address:
                logger.info("waiting for a worker of %s ...", runtime.dask_address)
            client.wait_for_workers(1)
            tasks = self._submit(client, pipeline, catalog, setup, gpu_request(client, runtime))
            self._follow(client, pipeline, catalog, tasks, setup)

    @staticmethod
    def _submit(
        client: Client,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        setup: WorkerSetup,
        gpu: dict[str, int] | None,
    ) -> dict[str, tuple[Node, Future]]:
        """Every node as a task (key ``<node name>-<hex>``) after the tasks of its parents."""
        dependencies = pipeline.node_dependencies
        futures: dict[Node, Future] = {}
        for node in pipeline.nodes:  # topologically sorted: parents come first
            futures[node] = client.submit(
                run_node,
                node,
                catalog,
                setup,
                *(futures[parent] for parent in dependencies[node]),
                key=f"{node.name}-{uuid.uuid4().hex}",
                resources=gpu if GPU_TAG in node.tags else None,
                pure=False,
            )
        return {future.key: (node, future) for node, future in futures.items()}

    def _follow(
        self,
        client: Client,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        tasks: dict[str, tuple[Node, Future]],
        setup: WorkerSetup,
    ) -> None:
        """Wait for the tasks; stop at the first failure and suggest where to resume.

        A finished task is forgotten here at once, so Dask frees its in-memory outputs as
        soon as the tasks that read them have run; the pipeline's free in-memory outputs are
        copied into this catalog.
        """
        done: set[Node] = set()
        try:
            for future in as_completed([future for _, future in tasks.values()]):
                node, _ = tasks.pop(future.key)
                if future.status != "finished":
                    future.result()  # raises the node's error with its traceback
                done.add(node)
                free = setup.in_memory & set(node.outputs) & pipeline.outputs()
                if free:
                    outputs = future.result()
                    for name in free:
                        catalog.save(name, outputs[name])
                self._logger.info("Completed node: %s", node.name)
                self._logger.info("Completed %d out of %d tasks", len(done), len(pipeline.nodes))
        except BaseException:
            client.cancel([future for _, future in tasks.values()])
            self._suggest_resume_scenario(pipeline, done, catalog)
            raise

"""Project hooks: check the parameters, seed every run and report the device before any node
starts; log the run plan (which models run, by their estimated cost) before the first model
node; log each node's seconds and peak memory."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from kedro.framework.hooks import hook_impl

from movie_rec.models.cost import DataShape
from movie_rec.parameters import plan_lines, run_plan, runtime_settings, written_parameters
from movie_rec.params_schema import validate_parameters
from movie_rec.peak_memory import peak_rss_gb, reset_peak
from movie_rec.registry import MODELS
from movie_rec.runtime import prepare_run, resolve_device

logger = logging.getLogger(__name__)


class RuntimeHooks:
    """Checks every parameter (:mod:`movie_rec.params_schema`), then applies the ``runtime``
    ones (seed, device, torch threads), once per run.

    They read the parameter files as written (with ``--params``): ``context.params`` holds
    the sections typed nodes read as their settings dataclasses, which Kedro builds from the
    nodes' type hints once these checks have passed.
    """

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.planned = False

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        params = written_parameters(context)
        validate_parameters(params)
        self.params, self.planned = params, False
        runtime = runtime_settings(params)
        device = prepare_run(runtime)
        if runtime.torch_threads:
            torch.set_num_threads(runtime.torch_threads)
        logger.info(
            "movie_rec runtime: seed=%d device=%s torch threads=%d",
            runtime.seed,
            device,
            torch.get_num_threads(),
        )

    @hook_impl
    def before_node_run(self, node: Any, inputs: dict[str, Any]) -> None:
        """Before the first model node: every first-stage model's estimated run on this
        data and whether it runs (the validation fit of each model logs the same choice)."""
        matrix = inputs.get("train_matrix_valid")
        if self.planned or not self.params or matrix is None or node.namespace not in MODELS:
            return  # a Dask worker's hooks have no context: the plan is logged where one is
        self.planned = True
        runtime = runtime_settings(self.params)
        device = resolve_device(runtime.device).type
        shape = DataShape.of(matrix)
        plan = run_plan(self.params, shape, device)
        budget = runtime.budget_minutes(device)
        logger.info(
            "run plan on %s for %d users x %d movies (auto: runs while its estimate <= "
            "runtime.auto_max_minutes.%s = %s):", device, shape.users, shape.items, device, budget,
        )  # fmt: skip
        for line in plan_lines(plan):  # one record a line: readable in a log file
            logger.info("run plan | %s", line)


class NodeMemoryHooks:
    """Logs one line per node, ``node NAME: S s, peak RSS G GB``, and the process's peak
    after the pipeline, ``process peak RSS G GB`` (``benchmarks/bench_pipeline.py`` reads
    both).

    A node's peak is its own where the high-water mark can be reset (Linux), else the
    process's peak so far. The reset also lowers the peak a parent process reads
    (``wait4``), hence the process's peak: the largest of the marks cleared and the last.
    Under the Dask runner the node hooks run in the workers and measure them.
    """

    def __init__(self) -> None:
        self.started: dict[str, float] = {}  # by node name: a thread runner runs several
        self.cleared_peak_gb = 0.0

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self.cleared_peak_gb = max(self.cleared_peak_gb, peak_rss_gb())
        reset_peak()
        self.started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        started = self.started.pop(node.name, None)
        if started is None:
            return
        seconds = time.perf_counter() - started
        logger.info("node %s: %.1f s, peak RSS %.2f GB", node.name, seconds, peak_rss_gb())

    @hook_impl
    def after_pipeline_run(self) -> None:
        self.log_process_peak()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self.log_process_peak()

    def log_process_peak(self) -> None:
        logger.info("process peak RSS %.2f GB", max(self.cleared_peak_gb, peak_rss_gb()))

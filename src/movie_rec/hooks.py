"""Project hooks: check the parameters, seed every run and report the device before any node
starts."""

from __future__ import annotations

import logging
from typing import Any

import torch
from kedro.framework.hooks import hook_impl

from movie_rec.params_schema import validate_parameters
from movie_rec.runtime import prepare_run

logger = logging.getLogger(__name__)


class RuntimeHooks:
    """Checks every parameter (:mod:`movie_rec.params_schema`), then applies the ``runtime``
    ones (seed, device, torch threads), once per run."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        validate_parameters(context.params)
        runtime = context.params["runtime"]
        device = prepare_run(runtime)
        if runtime.get("torch_threads"):
            torch.set_num_threads(int(runtime["torch_threads"]))
        logger.info(
            "movie_rec runtime: seed=%d device=%s torch threads=%d",
            int(runtime.get("seed", 42)),
            device,
            torch.get_num_threads(),
        )

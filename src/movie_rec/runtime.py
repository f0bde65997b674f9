"""The one place that decides the torch device, seeds randomness and sets up autocast.

Every model takes its device from :func:`resolve_device` and wraps its forward passes in
:func:`autocast`, so a GPU run uses CUDA with bf16 and a CPU run stays float32 and
deterministic.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch
from pydantic import AfterValidator

from movie_rec.models.config import ParamsConfig
from movie_rec.values import Count, NonNegativeFloat, Seed

logger = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def device_name(value: str) -> str:
    if value not in DEVICE_CHOICES and not (
        value.startswith("cuda:") and value.removeprefix("cuda:").isdigit()
    ):
        raise ValueError(f"expected one of {', '.join(DEVICE_CHOICES)} or cuda:N")
    return value


def scheduler_address(value: str) -> str:
    scheme, separator, location = value.rpartition("://")
    host, colon, port = location.rpartition(":")
    if (separator and not scheme) or not host or not colon or not port.isdigit():
        raise ValueError("expected a scheduler address such as tcp://HOST:8786")
    return value


@dataclass(frozen=True)
class AutoBudget(ParamsConfig):
    """Minutes a model with ``enabled: auto`` may take by estimate, per device kind."""

    cpu: NonNegativeFloat = 3.0
    cuda: NonNegativeFloat = 30.0


@dataclass(frozen=True)
class RuntimeSettings(ParamsConfig):
    """``runtime``: the ``device`` (``auto`` picks CUDA when torch sees a GPU), the ``seed``
    of every generator (CPU runs are deterministic), torch's CPU threads (``None``: torch's
    default), the ``auto`` models' budget, deterministic CUDA kernels (slower), and the Dask
    runner's scheduler (``None``: a local cluster of ``dask_workers``, one per core)."""

    device: Annotated[str, AfterValidator(device_name)] = "auto"
    seed: Seed = 42
    torch_threads: Count | None = None
    auto_max_minutes: AutoBudget = AutoBudget()
    cuda_deterministic: bool = False
    dask_address: Annotated[str, AfterValidator(scheduler_address)] | None = None
    dask_workers: Count | None = None

    def budget_minutes(self, device: str) -> float:
        """``auto_max_minutes`` of ``device`` (``cpu`` or ``cuda``)."""
        return float(getattr(self.auto_max_minutes, device))


def resolve_device(name: str = "auto") -> torch.device:
    """Turn the ``runtime.device`` parameter into a torch device.

    ``auto`` picks CUDA when a GPU is visible and the CPU otherwise; asking for ``cuda``
    on a machine without one is an error rather than a silent fallback.
    """
    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise ValueError(
            f"runtime.device must be one of {DEVICE_CHOICES} or 'cuda:N', got {name!r}"
        )
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"runtime.device is {name!r} but torch sees no CUDA device "
            f"(torch {torch.__version__}); install a CUDA build of torch or use 'auto'"
        )
    return torch.device(name)


@dataclass(frozen=True)
class AutoChoice:
    """What ``enabled: auto`` decided for a model: on while its estimated run (its ``trials``
    tuning trials and both fits, :mod:`movie_rec.models.cost`) fits the device's
    ``runtime.auto_max_minutes``."""

    on: bool
    minutes: float
    budget_minutes: float
    device: str
    trials: int = 0
    budget_source: str = "runtime.auto_max_minutes"

    def __str__(self) -> str:
        verdict = "within" if self.on else "over"
        tuning = f"{self.trials} tuning trials and two fits" if self.trials else "two fits"
        return (
            f"enabled auto: about {self.minutes:.1f} min on {self.device} by estimate "
            f"({tuning}), {verdict} {self.budget_source}.{self.device} = "
            f"{self.budget_minutes:g}: {'on' if self.on else 'off'}"
        )


def auto_choice(
    estimated_seconds: float,
    budget_minutes: float,
    device: str,
    trials: int = 0,
    budget_source: str = "runtime.auto_max_minutes",
) -> AutoChoice:
    minutes = estimated_seconds / 60.0
    on = minutes <= budget_minutes
    return AutoChoice(on, minutes, budget_minutes, device, trials, budget_source)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries still draw from the legacy global RNG
    torch.manual_seed(seed)


def configure_kernels(device: torch.device, cuda_deterministic: bool = False) -> None:
    """Deterministic kernels on the CPU (the same submission on any machine) and, on CUDA,
    only when asked (the deterministic CUDA kernels are slow and warn); TF32 matmuls on
    CUDA (a 10-bit mantissa inside matmuls only: scores stay float32)."""
    cuda = device.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = cuda
    torch.backends.cudnn.allow_tf32 = cuda
    if cuda and cuda_deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(not cuda or cuda_deterministic, warn_only=True)


def prepare_run(runtime: RuntimeSettings) -> torch.device:
    """The runtime settings applied: the device resolved, every generator seeded and the
    kernels configured for it. Returns the device."""
    device = resolve_device(runtime.device)
    seed_everything(runtime.seed)
    configure_kernels(device, runtime.cuda_deterministic)
    return device


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """bf16 autocast on CUDA; a no-op on the CPU, where float32 keeps runs reproducible."""
    if device.type == "cuda":
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            yield
    else:
        yield

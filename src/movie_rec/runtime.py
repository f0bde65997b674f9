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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda")


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

    def __str__(self) -> str:
        verdict = "within" if self.on else "over"
        tuning = f"{self.trials} tuning trials and two fits" if self.trials else "two fits"
        return (
            f"enabled auto: about {self.minutes:.1f} min on {self.device} by estimate "
            f"({tuning}), {verdict} runtime.auto_max_minutes.{self.device} = "
            f"{self.budget_minutes:g}: {'on' if self.on else 'off'}"
        )


def auto_budget_minutes(runtime: Mapping[str, Any], device: str) -> float:
    """``runtime.auto_max_minutes`` of ``device`` (``cpu`` or ``cuda``)."""
    return float((runtime.get("auto_max_minutes") or {}).get(device, 0.0))


def auto_choice(
    estimated_seconds: float, budget_minutes: float, device: str, trials: int = 0
) -> AutoChoice:
    minutes = estimated_seconds / 60.0
    return AutoChoice(minutes <= budget_minutes, minutes, budget_minutes, device, trials)


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


def prepare_run(runtime: dict) -> torch.device:
    """The ``runtime`` parameters applied: the device resolved, every generator seeded and
    the kernels configured for it. Returns the device."""
    device = resolve_device(str(runtime.get("device", "auto")))
    seed_everything(int(runtime.get("seed", 42)))
    configure_kernels(device, bool(runtime.get("cuda_deterministic", False)))
    return device


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """bf16 autocast on CUDA; a no-op on the CPU, where float32 keeps runs reproducible."""
    if device.type == "cuda":
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            yield
    else:
        yield

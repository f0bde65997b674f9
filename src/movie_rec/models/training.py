"""The one training loop for every iteratively trained model (Multi-VAE, the sequential models).

Training is budgeted in optimizer updates, not epochs: small data gives a handful of
updates a pass, so an epoch count says little about how far a model has learned. The loop
starts passes over the training examples (``batches(pass_index)``) until ``max_updates``
updates are done, evaluates validation Recall@10 every ``eval_every`` updates (and at the
end), keeps the best weights and stops after ``patience`` evaluations without a better
score. The learning rate warms up linearly over ``warmup_updates`` and then stays or
decays (linear or cosine) to ``min_lr_ratio`` of the base rate at ``max_updates``.

The loss is summed on the device and read once per evaluation, so the host waits on the
device only there; the progress bar counts updates and one log line is written per
evaluation.

The final fit on all interactions either replays the validation fit (a fresh model,
``stop_at=<best update of the validation fit>``) or, with ``final_updates``, continues the
validation fit's kept weights from their update (``start_update``) for that many updates.
The schedule is a function of the update and ``max_updates`` only, so either way the final
fit sees the learning rates the validation fit saw at the same updates.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from movie_rec.models.config import ParamsConfig
from movie_rec.runtime import autocast

logger = logging.getLogger(__name__)

DECAYS = ("none", "linear", "cosine")


@dataclass(frozen=True)
class TrainConfig(ParamsConfig):
    """How long to train, how the learning rate moves and when to stop.

    Attributes:
        max_updates: the budget of optimizer updates.
        eval_every: a validation evaluation every this many updates (and at the end).
        patience: evaluations without a better validation score before stopping.
        warmup_updates: linear learning-rate warm-up from 0 over the first updates.
        decay: ``none`` | ``linear`` | ``cosine`` decay from the end of warm-up to
            ``max_updates``.
        min_lr_ratio: the rate the decay ends at, as a share of the base rate.
        grad_clip: max gradient norm (0 disables clipping).
        final_updates: the final fit on all interactions: ``None`` trains a fresh model for
            the validation fit's best update count; N continues the validation fit's kept
            weights for N more updates (0 scores all interactions with them as they are).
        progress: show a tqdm bar over the updates when the output is a terminal (written to
            a file, a bar's every frame would stay there; the log lines at each evaluation
            say the same).
    """

    max_updates: int = 10_000
    eval_every: int = 100
    patience: int = 10
    warmup_updates: int = 0
    decay: str = "none"
    min_lr_ratio: float = 0.0
    grad_clip: float = 5.0
    final_updates: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}, got {self.decay!r}")
        if self.max_updates < 1 or self.eval_every < 1 or self.patience < 1:
            raise ValueError("max_updates, eval_every and patience must be at least 1")
        if self.final_updates is not None and self.final_updates < 0:
            raise ValueError(f"final_updates must be at least 0, got {self.final_updates}")


@dataclass
class TrainResult:
    """What a training run did: the update kept, its score, and one record per evaluation."""

    best_update: int
    best_score: float
    updates: int
    evaluations: int
    passes: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def lr_factor(update: int, config: TrainConfig) -> float:
    """The share of the base learning rate used by the update after ``update`` done ones.

    Warm-up rises linearly to 1 over the first ``warmup_updates`` updates (the first
    update already moves, at ``1 / warmup_updates``); the decay then runs from 1 at the
    end of warm-up to ``min_lr_ratio`` at ``max_updates``.
    """
    if update < config.warmup_updates:
        return (update + 1) / config.warmup_updates
    if config.decay == "none":
        return 1.0
    span = max(config.max_updates - config.warmup_updates, 1)
    progress = min((update - config.warmup_updates) / span, 1.0)
    if config.decay == "linear":
        shape = 1.0 - progress
    else:
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * shape


def set_learning_rate(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """``lr = initial_lr * factor`` in every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor


@dataclass
class _Best:
    """The best validation score so far, its update and weights, and evaluations since."""

    score: float = float("-inf")
    update: int = 0
    state: dict[str, torch.Tensor] | None = None
    stale: int = 0

    def offer(self, score: float, update: int, model: torch.nn.Module) -> None:
        if score > self.score:
            self.score, self.update, self.stale = score, update, 0
            self.state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            self.stale += 1


def _step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    grad_clip: float,
) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[int], Iterable[Any]],
    loss_fn: Callable[[Any], torch.Tensor],
    evaluate: Callable[[], float] | None,
    config: TrainConfig,
    device: torch.device,
    name: str,
    stop_at: int | None = None,
    start_update: int = 0,
) -> TrainResult:
    """Train ``model`` and leave it holding its best-scoring (or, unvalidated, last) weights.

    Args:
        model: the module; its parameters must already be on ``device``.
        optimizer: anything with ``param_groups``, ``zero_grad(set_to_none=True)`` and
            ``step()``; each group's ``initial_lr`` is recorded once from its ``lr``.
        batches: ``batches(pass_index)`` yields one pass (from 1) over the examples.
        loss_fn: turns one mini-batch into a scalar loss; runs under bf16 autocast on GPU.
        evaluate: returns the validation score of the current weights (called in eval
            mode under ``torch.no_grad``); ``None`` trains exactly ``stop_at`` (or
            ``max_updates``) updates and keeps the last weights.
        config: budget, evaluation rhythm, patience, schedule, clipping.
        device: where the model lives (decides autocast and where the loss is summed).
        name: model name for the progress bar and log lines.
        stop_at: stop after this many updates; the schedule still runs to ``max_updates``.
        start_update: the update the weights were kept at (a fit that continues another);
            the loop counts on from it, so ``stop_at`` and the schedule keep their meaning.
    """
    limit = _last_update(config, stop_at, start_update, name)
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    started = time.perf_counter()
    best = _Best()
    history: list[dict[str, Any]] = []
    loss_sum, loss_count = torch.zeros((), device=device), 0
    update, pass_index = start_update, 0
    bar = tqdm(
        total=limit - start_update,
        desc=name,
        leave=False,
        disable=None if config.progress else True,
    )
    model.train()
    while update < limit and best.stale < config.patience:
        pass_index += 1
        empty = True
        for batch in batches(pass_index):
            empty = False
            set_learning_rate(optimizer, lr_factor(update, config))
            with autocast(device):
                loss = loss_fn(batch)
            _step(model, optimizer, loss, config.grad_clip)
            loss_sum += loss.detach().float()
            loss_count += 1
            update += 1
            bar.update(1)
            if update % config.eval_every and update < limit:
                continue
            record = {"update": update, "pass": pass_index, "loss": float(loss_sum) / loss_count}
            record["lr"] = optimizer.param_groups[0]["lr"]
            loss_sum.zero_()
            loss_count = 0
            if evaluate is not None:
                model.eval()
                with torch.no_grad():
                    record["recall@10"] = float(evaluate())
                model.train()
                best.offer(record["recall@10"], update, model)
            record["seconds"] = time.perf_counter() - started
            history.append(record)
            _log(name, record, best, limit)
            if update >= limit or best.stale >= config.patience:
                break
        if empty:
            raise ValueError(f"{name}: batches({pass_index}) yielded no batch")
    bar.close()
    if best.state is not None:
        model.load_state_dict(best.state)
        if best.stale >= config.patience:
            logger.info("%s: %d evaluations without gain, keeping update %d",
                        name, best.stale, best.update)  # fmt: skip
    else:
        best.update, best.score = update, float("nan")
    model.eval()
    return TrainResult(
        best_update=best.update,
        best_score=best.score,
        updates=update,
        evaluations=len(history),
        passes=pass_index,
        seconds=time.perf_counter() - started,
        history=history,
    )


def _last_update(config: TrainConfig, stop_at: int | None, start_update: int, name: str) -> int:
    """The update a run stops at: ``stop_at`` if given, else the whole budget."""
    limit = config.max_updates if stop_at is None else stop_at
    if limit < start_update:
        raise ValueError(f"{name}: stop_at {limit} is before start_update {start_update}")
    return limit


def _log(name: str, record: dict[str, Any], best: _Best, limit: int) -> None:
    score = (
        f" recall@10 {record['recall@10']:.4f} (best {best.score:.4f} @ {best.update})"
        if "recall@10" in record
        else ""
    )
    logger.info(
        "%s update %d/%d pass %d loss %.4f lr %.2e%s (%.1fs)",
        name, record["update"], limit, record["pass"], record["loss"], record["lr"], score,
        record["seconds"],
    )  # fmt: skip

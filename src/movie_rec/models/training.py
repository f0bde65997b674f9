"""The one training loop for every iteratively trained model (Multi-VAE, the sequential models).

It runs epochs of mini-batch updates, evaluates validation Recall@10 after each epoch,
keeps the best weights, stops after ``patience`` epochs without improvement, logs one line
per epoch and shows a progress bar over each epoch's batches.

Small data gives few updates an epoch (one sequence per user), so ``min_updates`` keeps
training going until enough gradient steps have been taken before early stopping may end it.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from movie_rec.runtime import autocast

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """How long to train and when to stop.

    Attributes:
        max_epochs: hard cap on epochs.
        patience: epochs without a better validation score before stopping.
        min_updates: optimizer steps to take before early stopping may stop the run.
        grad_clip: max gradient norm (0 disables clipping).
        progress: show a tqdm bar over each epoch's batches.
    """

    max_epochs: int = 50
    patience: int = 5
    min_updates: int = 0
    grad_clip: float = 5.0
    progress: bool = True

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrainConfig:
        known = {k: params[k] for k in cls.__dataclass_fields__ if k in params}
        return cls(**known)


@dataclass
class TrainResult:
    """What a training run did: the epoch kept, its score, and the per-epoch history."""

    best_epoch: int
    best_score: float
    epochs_run: int
    updates: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[int], Iterable[Any]],
    loss_fn: Callable[[Any], torch.Tensor],
    evaluate: Callable[[], float] | None,
    config: TrainConfig,
    device: torch.device,
    name: str,
) -> TrainResult:
    """Train ``model`` and leave it holding its best-scoring weights.

    Args:
        model: the module; its parameters must already be on ``device``.
        optimizer: optimizer over the model's parameters.
        batches: ``batches(epoch)`` yields this epoch's mini-batches (any objects).
        loss_fn: turns one mini-batch into a scalar loss; runs under bf16 autocast on GPU.
        evaluate: returns validation Recall@10 of the current weights (called in eval
            mode under ``torch.no_grad``); ``None`` trains for ``max_epochs`` and keeps the
            last weights.
        config: epochs, patience, minimum updates, clipping.
        device: where the model lives (decides autocast).
        name: model name for log lines.
    """
    started = time.perf_counter()
    best_score, best_epoch, best_state = float("-inf"), 0, None
    history: list[dict[str, float]] = []
    updates = 0
    epochs_without_gain = 0
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        for batch in tqdm(
            batches(epoch), desc=f"{name} epoch {epoch}", leave=False, disable=not config.progress
        ):
            with autocast(device):
                loss = loss_fn(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            total += float(loss.detach())
            count += 1
            updates += 1
        record = {"epoch": epoch, "loss": total / max(count, 1), "updates": updates}
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                score = float(evaluate())
            record["recall@10"] = score
            if score > best_score:
                best_score, best_epoch, epochs_without_gain = score, epoch, 0
                best_state = copy.deepcopy(
                    {k: v.detach().cpu() for k, v in model.state_dict().items()}
                )
            else:
                epochs_without_gain += 1
        record["seconds"] = time.perf_counter() - epoch_start
        history.append(record)
        logger.info(
            "%s epoch %d/%d loss %.4f%s updates %d (%.1fs)",
            name,
            epoch,
            config.max_epochs,
            record["loss"],
            f" recall@10 {record['recall@10']:.4f} (best {best_score:.4f} @ {best_epoch})"
            if evaluate is not None
            else "",
            updates,
            record["seconds"],
        )
        if epochs_without_gain >= config.patience and updates >= config.min_updates:
            logger.info("%s: early stop after epoch %d, keeping epoch %d", name, epoch, best_epoch)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = epoch
        best_score = float("nan")
    model.eval()
    return TrainResult(
        best_epoch=best_epoch,
        best_score=best_score,
        epochs_run=epoch,
        updates=updates,
        seconds=time.perf_counter() - started,
        history=history,
    )

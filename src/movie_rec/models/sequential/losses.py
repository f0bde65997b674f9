"""The next-item losses every model trained on its next items shares (SASRec, GRU4Rec).

A model's states ``(N, hidden)`` score the real items through an output matrix ``weight``
``(n_items, hidden)`` (SASRec: its tied item embeddings; GRU4Rec: its own output layer) and
an optional ``bias``. Three losses (:data:`LOSSES`, ``HorizonConfig.loss``):

* ``ce``: cross-entropy over every item: what learns best while the catalogue is a few
  thousand movies, but its output is most of a CPU update;
* ``sampled``: sampled softmax (Jean et al., ACL 2015; as in gSASRec, Petrov & Macdonald,
  RecSys 2023), cross-entropy of each positive against one shared set of ``negatives`` items
  drawn uniformly from the real items per batch (a negative equal to the row's target is
  left out; uniform draws need no logQ correction). Its cost no longer grows with the
  catalogue;
* ``bce``: SASRec's binary cross-entropy with one sampled negative per target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from movie_rec.models.sequential.data import (
    HorizonConfig,
    SeededGenerator,
    discounted_mean,
    sample_negatives,
)


def _logits(states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``states @ weight.T (+ bias)``: ``weight`` rows are the items scored."""
    logits = states @ weight.T
    return logits if bias is None else logits + bias


def target_losses(
    states: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    config: HorizonConfig,
    generator: SeededGenerator,
) -> torch.Tensor:
    """``(N, horizon)`` loss of each of the real-item ``targets`` under ``config.loss``."""
    if config.loss == "ce":
        log_probs = F.log_softmax(_logits(states, weight, bias).float(), dim=-1)
        return -log_probs.gather(1, targets)
    n_items = weight.shape[0]
    draw = generator.on(states.device)
    positive = (states[:, None] * weight[targets]).sum(-1)
    if bias is not None:
        positive = positive + bias[targets]
    if config.loss == "sampled":
        negatives = sample_negatives((config.negatives,), n_items, draw, states.device)
        negative = _logits(states, weight[negatives], None if bias is None else bias[negatives])
        return sampled_softmax_losses(positive.float(), negative.float(), targets, negatives)
    negatives = sample_negatives(targets.shape, n_items, draw, states.device)
    negative = (states[:, None] * weight[negatives]).sum(-1)
    if bias is not None:
        negative = negative + bias[negatives]
    return (F.softplus(-positive.float()) + F.softplus(negative.float())) / 2  # BCE of both


def next_item_loss(
    states: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    config: HorizonConfig,
    generator: SeededGenerator,
) -> torch.Tensor:
    """The loss of predicting ``(N, horizon)`` ``targets`` (``IGNORE`` skipped) from
    ``(N, hidden)`` states: the mean over targets, the later ones discounted by place."""
    losses = target_losses(states, targets.clamp(min=0), weight, bias, config, generator)
    return discounted_mean(losses, targets, config.horizon_decay)


def sampled_softmax_losses(
    positive: torch.Tensor,
    negative: torch.Tensor,
    targets: torch.Tensor,
    negatives: torch.Tensor,
) -> torch.Tensor:
    """Cross-entropy of each positive against the shared negatives, ``(N, H)``.

    ``positive`` ``(N, H)`` logits of the targets, ``negative`` ``(N, S)`` logits of the
    ``S`` shared ``negatives``; a negative equal to a row's target is left out of that
    row's softmax.
    """
    hits = negatives[None, None, :] == targets[:, :, None]
    negative = negative[:, None, :].expand(-1, targets.shape[1], -1).masked_fill(hits, -torch.inf)
    logits = torch.cat([positive[..., None], negative], dim=-1)
    return -F.log_softmax(logits, dim=-1)[..., 0]

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


def _scores(states: torch.Tensor, items: torch.Tensor, weight: torch.Tensor,
            bias: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
    """``(N, K)`` float scores of ``items`` ``(N, K)`` for each row of ``states``."""
    scores = (states[:, None] * weight[items]).sum(-1)
    return (scores if bias is None else scores + bias[items]).float()


def next_item_loss(
    states: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    config: HorizonConfig,
    generator: SeededGenerator,
) -> torch.Tensor:
    """The ``config.loss`` of predicting ``(N, horizon)`` real-item ``targets`` (``IGNORE``
    skipped) from ``(N, hidden)`` states: the mean over targets, the later ones discounted by
    place (:func:`movie_rec.models.sequential.data.discounted_mean`)."""
    items = targets.clamp(min=0)
    n_items = weight.shape[0]
    draw = generator.on(states.device)
    if config.loss == "ce":
        logits = states @ weight.T
        logits = logits if bias is None else logits + bias
        losses = -F.log_softmax(logits.float(), dim=-1).gather(1, items)
    elif config.loss == "sampled":
        negatives = sample_negatives((config.negatives,), n_items, draw, states.device)
        shared = states @ weight[negatives].T  # one product, not a gather per row
        shared = (shared if bias is None else shared + bias[negatives]).float()
        losses = sampled_softmax_losses(_scores(states, items, weight, bias), shared, items,
                                        negatives)  # fmt: skip
    else:
        negatives = sample_negatives(items.shape, n_items, draw, states.device)
        positive, negative = (_scores(states, rows, weight, bias) for rows in (items, negatives))
        losses = (F.softplus(-positive) + F.softplus(negative)) / 2  # BCE of both
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

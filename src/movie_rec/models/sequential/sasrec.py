"""SASRec: Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.

A causal Transformer over the item sequence predicts the next item at every position.
Three losses:

* ``ce``: cross-entropy over all items (cheap at a few thousand items and what works);
* ``sampled``: sampled softmax, cross-entropy of each positive against one shared set of
  ``negatives`` items drawn uniformly from the real items per batch (accidental hits of
  the positive are left out; uniform sampling needs no logQ correction). Its cost no
  longer grows with the catalogue;
* ``bce``: the paper's binary cross-entropy with one sampled negative per target.

``horizon > 1`` trains every position to predict each of the next ``horizon`` items, not
only the next one: the dense all-action loss of PinnerFormer (Pancha et al., KDD 2022).
The test holds out a user's last items as a set, so the model is asked for what comes in
the next few watches; ``horizon=1`` is the paper's next-item SASRec. ``horizon_decay``
weighs the item ``d`` places after the next by ``horizon_decay ** d`` (1 = PinnerFormer's
equal weights), so the next item stays the main target while later ones still count: the
same discount a transition model gives its longer lags.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from movie_rec.models.sequences import UserSequences
from movie_rec.models.sequential.data import (
    IGNORE,
    HorizonConfig,
    SeededGenerator,
    WindowExamples,
    discounted_mean,
    next_items,
    sample_negatives,
)
from movie_rec.models.sequential.transformer import TransformerBackbone, TransformerConfig

LOSSES = ("ce", "sampled", "bce")


@dataclass(frozen=True)
class SASRecConfig(TransformerConfig, HorizonConfig):
    """The loss (``ce`` | ``sampled`` | ``bce``), the next items each position predicts
    (:class:`HorizonConfig`) and the shared negatives of the sampled softmax."""

    loss: str = "ce"
    negatives: int = 256

    def __post_init__(self) -> None:
        TransformerConfig.__post_init__(self)
        HorizonConfig.__post_init__(self)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")


class SASRec(nn.Module):
    """``seed`` seeds the negatives the ``sampled`` and ``bce`` losses draw."""

    def __init__(self, n_items: int, config: SASRecConfig, seed: int = 0) -> None:
        super().__init__()
        self.n_items, self.max_len, self.config = n_items, config.max_len, config
        self.backbone = TransformerBackbone(n_items, config)
        self.pad = self.backbone.pad
        self.generator = SeededGenerator(seed)

    def build_examples(self, sequences: UserSequences, device: torch.device) -> WindowExamples:
        return WindowExamples.build(sequences, self.max_len, self.pad, device)

    def states(self, rows: torch.Tensor) -> torch.Tensor:
        return self.backbone(rows, causal=True)

    def loss(self, windows: torch.Tensor) -> torch.Tensor:
        inputs, targets = next_items(windows, self.pad, self.config.horizon)
        states = self.states(inputs)
        keep = targets[..., 0] != IGNORE
        return self.loss_at(states[keep], targets[keep])

    def loss_at(self, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Loss of predicting ``(N, horizon)`` ``targets`` (``IGNORE`` skipped) from
        ``(N, hidden)`` states: the mean over targets, discounted by place."""
        losses = self.target_losses(states, targets.clamp(min=0))
        return discounted_mean(losses, targets, self.config.horizon_decay)

    def target_losses(self, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``(N, horizon)`` loss of each target under the configured loss."""
        if self.config.loss == "ce":
            log_probs = F.log_softmax(self.backbone.item_logits(states).float(), dim=-1)
            return -log_probs.gather(1, targets)
        embedding = self.backbone.item_embedding
        positive = (states[:, None] * embedding(targets)).sum(-1).float()
        generator = self.generator.on(states.device)
        if self.config.loss == "sampled":
            shape = (self.config.negatives,)
            negatives = sample_negatives(shape, self.n_items, generator, states.device)
            return sampled_softmax_losses(
                positive, (states @ embedding(negatives).T).float(), targets, negatives
            )
        negatives = sample_negatives(targets.shape, self.n_items, generator, states.device)
        negative = (states[:, None] * embedding(negatives)).sum(-1).float()
        return (F.softplus(-positive) + F.softplus(negative)) / 2  # BCE of both, averaged

    def score_next(self, rows: torch.Tensor) -> torch.Tensor:
        """``(B, n_items)`` next-item scores from left-padded histories ``(B, W)``."""
        return self.backbone.item_logits(self.states(rows)[:, -1])


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

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
the next few watches; ``horizon=1`` is the paper's next-item SASRec.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from movie_rec.models.sequences import UserSequences
from movie_rec.models.sequential.data import (
    IGNORE,
    SeededGenerator,
    WindowExamples,
    next_items,
    sample_negatives,
)
from movie_rec.models.sequential.transformer import TransformerBackbone, TransformerConfig

LOSSES = ("ce", "sampled", "bce")


@dataclass(frozen=True)
class SASRecConfig(TransformerConfig):
    """The loss (``ce`` | ``sampled`` | ``bce``), how many next items each position
    predicts (``horizon``) and the shared negatives of the sampled softmax."""

    loss: str = "ce"
    horizon: int = 1
    negatives: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {self.horizon}")


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
        """Mean loss of predicting ``(N, horizon)`` ``targets`` (``IGNORE`` skipped) from
        ``(N, hidden)`` states."""
        valid = targets != IGNORE
        targets = targets.clamp(min=0)
        if self.config.loss == "ce":
            log_probs = F.log_softmax(self.backbone.item_logits(states).float(), dim=-1)
            return -log_probs.gather(1, targets)[valid].mean()
        embedding = self.backbone.item_embedding
        positive = (states[:, None] * embedding(targets)).sum(-1).float()
        generator = self.generator.on(states.device)
        if self.config.loss == "sampled":
            shape = (self.config.negatives,)
            negatives = sample_negatives(shape, self.n_items, generator, states.device)
            return sampled_softmax_loss(
                positive, (states @ embedding(negatives).T).float(), targets, negatives, valid
            )
        negatives = sample_negatives(targets.shape, self.n_items, generator, states.device)
        negative = (states[:, None] * embedding(negatives)).sum(-1).float()[valid]
        positive = positive[valid]
        return F.binary_cross_entropy_with_logits(
            torch.cat([positive, negative]),
            torch.cat([torch.ones_like(positive), torch.zeros_like(negative)]),
        )

    def score_next(self, rows: torch.Tensor) -> torch.Tensor:
        """``(B, n_items)`` next-item scores from left-padded histories ``(B, W)``."""
        return self.backbone.item_logits(self.states(rows)[:, -1])


def sampled_softmax_loss(
    positive: torch.Tensor,
    negative: torch.Tensor,
    targets: torch.Tensor,
    negatives: torch.Tensor,
    valid: torch.Tensor,
) -> torch.Tensor:
    """Mean cross-entropy of each positive against the shared negatives.

    ``positive`` ``(N, H)`` logits of the targets, ``negative`` ``(N, S)`` logits of the
    ``S`` shared ``negatives``; a negative equal to a row's target is left out of that
    row's softmax. Only ``valid`` ``(N, H)`` entries count.
    """
    hits = negatives[None, None, :] == targets[:, :, None]
    negative = negative[:, None, :].expand(-1, targets.shape[1], -1).masked_fill(hits, -torch.inf)
    logits = torch.cat([positive[..., None], negative], dim=-1)
    return -F.log_softmax(logits, dim=-1)[..., 0][valid].mean()

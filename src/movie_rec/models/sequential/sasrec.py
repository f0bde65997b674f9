"""SASRec: Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.

A causal Transformer over the item sequence predicts the next item at every position,
scored through its tied item embeddings under one of the shared next-item losses
(:mod:`movie_rec.models.sequential.losses`: the full softmax, the sampled softmax, the
paper's BCE).

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
from torch import nn

from movie_rec.models.sequences import UserSequences
from movie_rec.models.sequential.data import (
    IGNORE,
    HorizonConfig,
    SeededGenerator,
    WindowExamples,
    next_items,
)
from movie_rec.models.sequential.losses import next_item_loss
from movie_rec.models.sequential.transformer import TransformerBackbone, TransformerConfig


@dataclass(frozen=True)
class SASRecConfig(TransformerConfig, HorizonConfig):
    """The Transformer's shape and the next items each position predicts, under ``loss``
    (:class:`HorizonConfig`)."""

    def __post_init__(self) -> None:
        TransformerConfig.__post_init__(self)
        HorizonConfig.__post_init__(self)


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
        ``(N, hidden)`` states (:func:`movie_rec.models.sequential.losses.next_item_loss`)."""
        weight = self.backbone.item_embedding.weight[: self.n_items]
        return next_item_loss(states, targets, weight, None, self.config, self.generator)

    def score_next(self, rows: torch.Tensor) -> torch.Tensor:
        """``(B, n_items)`` next-item scores from left-padded histories ``(B, W)``."""
        return self.backbone.item_logits(self.states(rows)[:, -1])

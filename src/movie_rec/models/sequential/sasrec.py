"""SASRec: Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.

A causal Transformer over the item sequence predicts the next item at every position.
The default loss is cross-entropy over all items (cheap at a few thousand items and what
works); ``loss="bce"`` is the paper's sampled binary cross-entropy with one negative per
target, drawn from the real items only.

``horizon > 1`` trains every position to predict each of the next ``horizon`` items, not
only the next one: the dense all-action loss of PinnerFormer (Pancha et al., KDD 2022).
The test holds out a user's last items as a set, so the model is asked for what comes in
the next few watches; ``horizon=1`` is the paper's next-item SASRec.
"""

from __future__ import annotations

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
from movie_rec.models.sequential.transformer import TransformerBackbone

LOSSES = ("ce", "bce")


class SASRec(nn.Module):
    def __init__(
        self,
        n_items: int,
        max_len: int = 200,
        hidden: int = 64,
        heads: int = 2,
        layers: int = 2,
        dropout: float = 0.2,
        loss: str = "ce",
        horizon: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        self.n_items, self.max_len, self.loss_name = n_items, max_len, loss
        self.horizon = horizon
        self.backbone = TransformerBackbone(n_items, max_len, hidden, heads, layers, dropout)
        self.pad = self.backbone.pad
        self.generator = SeededGenerator(seed)

    def build_examples(self, sequences: UserSequences, device: torch.device) -> WindowExamples:
        return WindowExamples.build(sequences, self.max_len, self.pad, device)

    def states(self, rows: torch.Tensor) -> torch.Tensor:
        return self.backbone(rows, causal=True)

    def loss(self, windows: torch.Tensor) -> torch.Tensor:
        inputs, targets = next_items(windows, self.pad, self.horizon)
        states = self.states(inputs)
        keep = targets[..., 0] != IGNORE
        return self.loss_at(states[keep], targets[keep])

    def loss_at(self, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean loss of predicting ``(N, horizon)`` ``targets`` (``IGNORE`` skipped) from
        ``(N, hidden)`` states."""
        valid = targets != IGNORE
        targets = targets.clamp(min=0)
        if self.loss_name == "ce":
            log_probs = F.log_softmax(self.backbone.item_logits(states).float(), dim=-1)
            return -log_probs.gather(1, targets)[valid].mean()
        generator = self.generator.on(states.device)
        negatives = sample_negatives(targets.shape, self.n_items, generator, states.device)
        embedding = self.backbone.item_embedding
        positive = (states[:, None] * embedding(targets)).sum(-1).float()[valid]
        negative = (states[:, None] * embedding(negatives)).sum(-1).float()[valid]
        return F.binary_cross_entropy_with_logits(
            torch.cat([positive, negative]),
            torch.cat([torch.ones_like(positive), torch.zeros_like(negative)]),
        )

    def score_next(self, rows: torch.Tensor) -> torch.Tensor:
        """``(B, n_items)`` next-item scores from left-padded histories ``(B, W)``."""
        return self.backbone.item_logits(self.states(rows)[:, -1])

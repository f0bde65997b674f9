"""BERT4Rec: Sun et al., "BERT4Rec: Sequential Recommendation with Bidirectional Encoder
Representations from Transformer", CIKM 2019.

A bidirectional Transformer trained by cloze: a share of each sequence's items is replaced
by the mask token and predicted (cross-entropy over all items). As in the paper, some
training sequences mask only their last item, which is what prediction does: the mask
token is appended after the history and its output scores the next item.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from movie_rec.models.sequences import UserSequences
from movie_rec.models.sequential.data import SeededGenerator, WindowExamples, trim_padding
from movie_rec.models.sequential.transformer import TransformerBackbone, TransformerConfig


@dataclass(frozen=True)
class BERT4RecConfig(TransformerConfig):
    """The share of each sequence's items the cloze masks (``mask_prob``) and the share of
    sequences that mask only their last item (``last_mask_prob``)."""

    mask_prob: float = 0.2
    last_mask_prob: float = 0.1


def cloze_mask(
    rows: torch.Tensor, share: float, pad: int, generator: torch.Generator
) -> torch.Tensor:
    """Bool ``(B, W)``: ``max(1, round(share × length))`` real positions per row, never padding.

    Rows without a real item mask nothing.
    """
    real = rows != pad
    lengths = real.sum(1)
    n_mask = torch.clamp(torch.round(lengths * share), min=1).minimum(lengths)
    noise = torch.rand(rows.shape, generator=generator, device=generator.device).to(rows.device)
    noise = noise.masked_fill(~real, 2.0)
    rank = noise.argsort(1).argsort(1)
    return rank < n_mask[:, None]


def last_only_mask(rows: torch.Tensor, pad: int) -> torch.Tensor:
    """Bool ``(B, W)`` marking each row's last (most recent) position when it is real."""
    mask = torch.zeros_like(rows, dtype=torch.bool)
    mask[:, -1] = rows[:, -1] != pad
    return mask


class BERT4Rec(nn.Module):
    """``seed`` seeds the cloze masks."""

    def __init__(self, n_items: int, config: BERT4RecConfig, seed: int = 0) -> None:
        super().__init__()
        self.n_items, self.max_len, self.config = n_items, config.max_len, config
        self.backbone = TransformerBackbone(n_items, config)
        self.pad, self.mask = self.backbone.pad, self.backbone.mask
        self.generator = SeededGenerator(seed)

    def build_examples(self, sequences: UserSequences, device: torch.device) -> WindowExamples:
        # windows of max_len + 1; the cloze reads their last max_len items
        return WindowExamples.build(sequences, self.max_len, self.pad, device)

    def masked_batch(
        self, windows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The items, the cloze inputs (masked items replaced by the mask id), the bool mask."""
        rows = trim_padding(windows[:, 1:], self.pad)
        generator = self.generator.on(rows.device)
        masked = cloze_mask(rows, self.config.mask_prob, self.pad, generator)
        draw = torch.rand(len(rows), generator=generator, device=generator.device)
        last_only = (draw < self.config.last_mask_prob).to(rows.device)[:, None]
        masked = torch.where(last_only, last_only_mask(rows, self.pad), masked)
        return rows, rows.masked_fill(masked, self.mask), masked

    def loss(self, windows: torch.Tensor) -> torch.Tensor:
        rows, inputs, masked = self.masked_batch(windows)
        states = self.backbone(inputs, causal=False)[masked]
        return F.cross_entropy(self.backbone.item_logits(states).float(), rows[masked])

    def score_next(self, rows: torch.Tensor) -> torch.Tensor:
        """Append the mask token to each history (dropping the oldest item if full)."""
        if rows.shape[1] >= self.max_len:
            rows = rows[:, rows.shape[1] - self.max_len + 1 :]
        masked = torch.cat([rows, torch.full_like(rows[:, :1], self.mask)], dim=1)
        return self.backbone.item_logits(self.backbone(masked, causal=False)[:, -1])

"""GRU4Rec: Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks",
ICLR 2016.

A GRU reads the history and predicts the next item at every position through an output
layer of its own, under one of the shared next-item losses
(:mod:`movie_rec.models.sequential.losses`: the full softmax, or the sampled softmax the
paper's successors train with, whose cost does not grow with the catalogue); with
``horizon > 1`` also the items after it, discounted as in SASRec. Histories are packed, so
the left padding never enters the recurrent state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from movie_rec.models.sequences import UserSequences
from movie_rec.models.sequential.data import (
    IGNORE,
    Dropout,
    HorizonConfig,
    SeededGenerator,
    WindowExamples,
    next_items,
    pad_id,
)
from movie_rec.models.sequential.losses import next_item_loss


@dataclass(frozen=True)
class GRU4RecConfig(HorizonConfig):
    """``layers`` stacked GRU layers, trained on the next ``horizon`` items."""

    layers: int = 1


class GRU4Rec(nn.Module):
    """``seed`` seeds the negatives the ``sampled`` and ``bce`` losses draw."""

    def __init__(self, n_items: int, config: GRU4RecConfig, seed: int = 0) -> None:
        super().__init__()
        self.n_items, self.max_len, self.config = n_items, config.max_len, config
        self.pad, hidden = pad_id(n_items), config.hidden
        self.item_embedding = nn.Embedding(n_items + 1, hidden, padding_idx=self.pad)
        self.gru = nn.GRU(
            hidden,
            hidden,
            num_layers=config.layers,
            batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.drop = Dropout(config.dropout)
        self.output = nn.Linear(hidden, n_items)
        self.generator = SeededGenerator(seed)
        nn.init.normal_(self.item_embedding.weight, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[self.pad].zero_()

    def build_examples(self, sequences: UserSequences, device: torch.device) -> WindowExamples:
        return WindowExamples.build(sequences, self.max_len, self.pad, device)

    def states(self, rows: torch.Tensor) -> torch.Tensor:
        """``(B, W, hidden)`` GRU outputs aligned with the left-padded ``rows``."""
        width = rows.shape[1]
        lengths = (rows != self.pad).sum(1).clamp(min=1)
        shift = (width - lengths)[:, None]
        columns = torch.arange(width, device=rows.device)[None, :]
        right_aligned = rows.gather(1, (columns + shift) % width)
        packed = pack_padded_sequence(
            self.drop(self.item_embedding(right_aligned)),
            lengths.cpu(),
            batch_first=True,
            enforce_sorted=False,
        )
        outputs, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=width)
        back = ((columns - shift) % width)[:, :, None].expand(-1, -1, outputs.shape[-1])
        return self.drop(outputs.gather(1, back))

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        return self.output(states)

    def loss(self, windows: torch.Tensor) -> torch.Tensor:
        inputs, targets = next_items(windows, self.pad, self.config.horizon)
        keep = targets[..., 0] != IGNORE
        states = self.states(inputs)[keep]
        weight, bias = self.output.weight, self.output.bias
        return next_item_loss(states, targets[keep], weight, bias, self.config, self.generator)

    def score_next(self, rows: torch.Tensor) -> torch.Tensor:
        return self.logits(self.states(rows)[:, -1])

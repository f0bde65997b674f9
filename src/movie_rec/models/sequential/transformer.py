"""The Transformer encoder SASRec, BERT4Rec and S3Rec share (pre-LayerNorm blocks).

Item embeddings have ``n_items + 2`` rows (real items, padding, mask; see
:mod:`movie_rec.models.sequential.data`), so a backbone pre-trained by S3Rec loads as is
into SASRec or BERT4Rec. Positions count from the right: the most recent item always
gets the last position embedding, whatever the padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from movie_rec.models.sequential.data import Dropout, SequentialConfig, mask_id, pad_id


@dataclass(frozen=True)
class TransformerConfig(SequentialConfig):
    """A Transformer model's shape: ``layers`` blocks of ``heads``-headed self-attention."""

    heads: int = 2
    layers: int = 2

    def __post_init__(self) -> None:
        if self.heads < 1 or self.hidden % self.heads:
            raise ValueError(f"hidden = {self.hidden} must be a multiple of heads = {self.heads}")


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        batch, width, hidden = x.shape
        q, k, v = (
            part.view(batch, width, self.heads, hidden // self.heads).transpose(1, 2)
            for part in self.qkv(x).chunk(3, dim=-1)
        )
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(attended.transpose(1, 2).reshape(batch, width, hidden))


class Block(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.attention = SelfAttention(hidden, heads, dropout)
        self.feed_forward = nn.Sequential(
            nn.Linear(hidden, 4 * hidden),
            nn.GELU(),
            Dropout(dropout),
            nn.Linear(4 * hidden, hidden),
        )
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attention(self.norm1(x), allowed))
        return x + self.drop(self.feed_forward(self.norm2(x)))


def attention_mask(rows: torch.Tensor, pad: int, causal: bool) -> torch.Tensor:
    """``(B, 1, W, W)`` bool, True = may attend: real keys (causal: not later ones).

    Every position may attend to itself, so a padding row never has an empty softmax.
    """
    width = rows.shape[1]
    allowed = (rows != pad)[:, None, None, :].expand(-1, 1, width, width)
    if causal:
        allowed = allowed & torch.ones(width, width, dtype=torch.bool, device=rows.device).tril()
    return allowed | torch.eye(width, dtype=torch.bool, device=rows.device)


class TransformerBackbone(nn.Module):
    """Item + position embeddings, ``layers`` blocks, a final LayerNorm."""

    def __init__(self, n_items: int, config: TransformerConfig) -> None:
        super().__init__()
        hidden = config.hidden
        self.n_items, self.max_len, self.hidden = n_items, config.max_len, hidden
        self.pad, self.mask = pad_id(n_items), mask_id(n_items)
        self.item_embedding = nn.Embedding(n_items + 2, hidden, padding_idx=self.pad)
        self.position_embedding = nn.Embedding(config.max_len, hidden)
        self.blocks = nn.ModuleList(
            Block(hidden, config.heads, config.dropout) for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(hidden)
        self.drop = Dropout(config.dropout)
        nn.init.normal_(self.item_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding.weight, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[self.pad].zero_()

    def forward(self, rows: torch.Tensor, causal: bool) -> torch.Tensor:
        """``(B, W)`` item ids (W ≤ max_len, left-padded) → ``(B, W, hidden)``."""
        width = rows.shape[1]
        if width > self.max_len:
            raise ValueError(f"sequence width {width} exceeds max_len {self.max_len}")
        real = (rows != self.pad).unsqueeze(-1)
        x = self.item_embedding(rows) * math.sqrt(self.hidden)
        x = self.drop(x + self.position_embedding.weight[-width:]) * real
        allowed = attention_mask(rows, self.pad, causal)
        for block in self.blocks:
            x = block(x, allowed) * real
        return self.norm(x)

    def item_logits(self, states: torch.Tensor) -> torch.Tensor:
        """Scores of the real items: dot products with their (tied) embeddings."""
        return states @ self.item_embedding.weight[: self.n_items].T

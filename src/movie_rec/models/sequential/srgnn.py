"""SR-GNN: Wu et al., "Session-based Recommendation with Graph Neural Networks", AAAI 2019.

The user's recent items (the last ``max_len``) form a directed session graph: one node per
distinct item, an edge ``a → b`` when ``b`` directly follows ``a``. A gated graph network
propagates over the in- and out-edges (each normalised by degree), and a soft-attention
readout combines the last item's node with all nodes into the session embedding that
scores every item. Trained on every position of every history (next-item cross-entropy).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from movie_rec.models.sequences import UserSequences
from movie_rec.models.sequential.data import Dropout, PrefixExamples, SequentialConfig, pad_id


@dataclass(frozen=True)
class SRGNNConfig(SequentialConfig):
    """The session graph covers the last ``max_len`` items; ``steps`` propagation steps."""

    max_len: int = 50
    steps: int = 1


def session_graph(rows: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Graphs of a batch of left-padded sequences, built on the device.

    Node slots are sequence positions: the node of an item lives at the slot of its first
    occurrence. Returns ``alias`` ``(B, W)`` (each position's node slot) and the 0/1
    adjacency ``(B, W, W)`` with ``A[b, i, j] = 1`` when slot ``j``'s item follows slot
    ``i``'s somewhere in the sequence.
    """
    batch, width = rows.shape
    alias = (rows[:, :, None] == rows[:, None, :]).to(torch.int8).argmax(-1)
    real = rows != pad
    edge = real[:, :-1] & real[:, 1:]
    flat = alias[:, :-1] * width + alias[:, 1:]
    flat = torch.where(edge, flat, torch.full_like(flat, width * width))
    adjacency = torch.zeros(batch, width * width + 1, device=rows.device)
    adjacency.scatter_(1, flat, 1.0)
    return alias, adjacency[:, :-1].view(batch, width, width)


class GatedGraphCell(nn.Module):
    """One propagation step: messages along in- and out-edges, then a GRU-style update."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.edge_in, self.edge_out = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.input_gates = nn.Linear(2 * hidden, 3 * hidden)
        self.hidden_gates = nn.Linear(hidden, 3 * hidden)

    def forward(self, nodes: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        out_norm = adjacency / adjacency.sum(2, keepdim=True).clamp(min=1)
        incoming = adjacency.transpose(1, 2)
        in_norm = incoming / incoming.sum(2, keepdim=True).clamp(min=1)
        messages = torch.cat(
            [in_norm @ self.edge_in(nodes), out_norm @ self.edge_out(nodes)], dim=-1
        )
        i_r, i_z, i_n = self.input_gates(messages).chunk(3, -1)
        h_r, h_z, h_n = self.hidden_gates(nodes).chunk(3, -1)
        reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        candidate = torch.tanh(i_n + reset * h_n)
        return candidate + update * (nodes - candidate)


class SRGNN(nn.Module):
    """Built as every sequential model is (``Model(n_items, config, seed)``); ``seed`` is
    unused: SR-GNN draws only dropout, from torch's global generator."""

    def __init__(self, n_items: int, config: SRGNNConfig, seed: int = 0) -> None:
        super().__init__()
        self.n_items, self.max_len, self.config = n_items, config.max_len, config
        self.pad, hidden = pad_id(n_items), config.hidden
        self.item_embedding = nn.Embedding(n_items + 1, hidden, padding_idx=self.pad)
        self.cells = nn.ModuleList(GatedGraphCell(hidden) for _ in range(config.steps))
        self.query_last, self.query_all = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.attention = nn.Linear(hidden, 1, bias=False)
        self.combine = nn.Linear(2 * hidden, hidden, bias=False)
        self.drop = Dropout(config.dropout)
        nn.init.normal_(self.item_embedding.weight, std=hidden**-0.5)  # as the paper's uniform
        with torch.no_grad():
            self.item_embedding.weight[self.pad].zero_()

    def build_examples(self, sequences: UserSequences, device: torch.device) -> PrefixExamples:
        return PrefixExamples.build(sequences, self.max_len, self.pad, device)

    def session(self, rows: torch.Tensor) -> torch.Tensor:
        """``(B, hidden)`` session embeddings of left-padded histories."""
        alias, adjacency = session_graph(rows, self.pad)
        nodes = self.drop(self.item_embedding(rows))
        for cell in self.cells:
            nodes = cell(nodes, adjacency)
        positions = nodes.gather(1, alias[:, :, None].expand(-1, -1, nodes.shape[-1]))
        last = positions[:, -1]
        weights = self.attention(
            torch.sigmoid(self.query_last(last)[:, None, :] + self.query_all(positions))
        )
        weights = weights * (rows != self.pad)[:, :, None]
        global_ = (weights * positions).sum(1)
        return self.combine(torch.cat([global_, last], dim=-1))

    def score_next(self, rows: torch.Tensor) -> torch.Tensor:
        return self.session(rows) @ self.item_embedding.weight[: self.n_items].T

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        rows, targets = batch
        return F.cross_entropy(self.score_next(rows).float(), targets)

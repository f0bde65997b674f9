"""S3Rec: Zhou et al., "S3-Rec: Self-Supervised Learning for Sequential Recommendation with
Mutual Information Maximization", CIKM 2020.

A bidirectional Transformer backbone is pre-trained with four self-supervised objectives
over items and their attributes (genres by default; directors, writers and release decade
as options):

* AAP, associated attribute prediction: an item's embedding predicts its attributes;
* MIP, masked item prediction: the encoder output at a masked position picks the original
  item over a sampled negative (a real item);
* MAP, masked attribute prediction: the same output predicts the masked item's attributes;
* SP, segment prediction: the encoding of a sequence whose segment is masked picks that
  segment's own encoding over another sequence's segment (the segments are encoded in
  their original positions, with the rest of the sequence padded).

The pre-trained backbone then initialises SASRec and BERT4Rec (:func:`fine_tune_model`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from movie_rec.models.sequences import UserSequences
from movie_rec.models.sequential.bert4rec import BERT4Rec, cloze_mask
from movie_rec.models.sequential.data import (
    SeededGenerator,
    WindowExamples,
    sample_negatives,
    trim_padding,
)
from movie_rec.models.sequential.sasrec import SASRec
from movie_rec.models.sequential.transformer import TransformerBackbone, TransformerConfig

ATTRIBUTE_KINDS = ("genre", "director", "writer", "year")
OBJECTIVE_WEIGHTS = {"aap": 0.2, "mip": 1.0, "map": 1.0, "sp": 0.5}
OBJECTIVES = tuple(OBJECTIVE_WEIGHTS)
BACKBONE_KEYS = ("max_len", "hidden", "heads", "layers")
SECTION = "s3rec"  # pre-training's section of parameters_sequential_rec.yml
PRETRAINED = "s3rec_pretrained"  # its output (_valid, _final), which fine-tuning reads


@dataclass(frozen=True)
class S3RecConfig(TransformerConfig):
    """Pre-training: the cloze share (``mask_prob``), the budget (``pretrain_updates``), the
    attribute kinds and each objective's weight in the loss (unnamed ones keep theirs)."""

    mask_prob: float = 0.2
    pretrain_updates: int = 1000
    attributes: tuple[str, ...] = ("genre",)
    weights: Mapping[str, float] = field(default_factory=lambda: dict(OBJECTIVE_WEIGHTS))


def attribute_matrix(
    item_features: pd.DataFrame,
    item_directors: pd.DataFrame,
    item_writers: pd.DataFrame,
    n_items: int,
    kinds: list[str],
) -> np.ndarray:
    """Multi-hot ``(n_items, n_attributes)`` float32 over the chosen attribute kinds."""
    unknown = set(kinds) - set(ATTRIBUTE_KINDS)
    if unknown or not kinds:
        raise ValueError(f"attributes must be a non-empty subset of {ATTRIBUTE_KINDS}, got {kinds}")
    blocks = []
    if "genre" in kinds:
        genres = [c for c in item_features.columns if c.startswith("genre_")]
        block = np.zeros((n_items, len(genres)), dtype=np.float32)
        block[item_features["item_idx"].to_numpy()] = item_features[genres].to_numpy(np.float32)
        blocks.append(block)
    for kind, table, column in (
        ("director", item_directors, "director"),
        ("writer", item_writers, "writer"),
    ):
        if kind in kinds:
            blocks.append(_one_hot(table["item_idx"].to_numpy(), table[column], n_items))
    if "year" in kinds:
        decade = (item_features["year"] // 10 * 10).astype("Int64").astype(str)
        blocks.append(_one_hot(item_features["item_idx"].to_numpy(), decade, n_items))
    return np.concatenate(blocks, axis=1)


def _one_hot(items: np.ndarray, values: pd.Series, n_items: int) -> np.ndarray:
    codes, uniques = pd.factorize(values.astype(str))
    block = np.zeros((n_items, len(uniques)), dtype=np.float32)
    block[items, codes] = 1.0
    return block


class S3RecPretrainer(nn.Module):
    """``attributes`` is the items' multi-hot matrix (:func:`attribute_matrix`); ``seed``
    seeds the masks, segments and negatives."""

    def __init__(
        self, n_items: int, attributes: np.ndarray, config: S3RecConfig, seed: int = 0
    ) -> None:
        super().__init__()
        self.n_items, self.max_len, self.config = n_items, config.max_len, config
        self.weights = {**OBJECTIVE_WEIGHTS, **config.weights}
        self.backbone = TransformerBackbone(n_items, config)
        self.pad, self.mask = self.backbone.pad, self.backbone.mask
        hidden = config.hidden
        padded = np.zeros((n_items + 2, attributes.shape[1]), dtype=np.float32)
        padded[:n_items] = attributes
        self.register_buffer("attributes", torch.as_tensor(padded))
        self.attribute_embedding = nn.Embedding(attributes.shape[1], hidden)
        nn.init.normal_(self.attribute_embedding.weight, std=0.02)
        self.heads = nn.ModuleDict({name: nn.Linear(hidden, hidden) for name in OBJECTIVES})
        self.generator = SeededGenerator(seed)

    def build_examples(self, sequences: UserSequences, device: torch.device) -> WindowExamples:
        return WindowExamples.build(sequences, self.max_len, self.pad, device)

    def _attribute_loss(self, states: torch.Tensor, head: str, items: torch.Tensor) -> torch.Tensor:
        logits = self.heads[head](states) @ self.attribute_embedding.weight.T
        return F.binary_cross_entropy_with_logits(logits.float(), self.attributes[items])

    def _random(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        generator = self.generator.on(device)
        return torch.rand(shape, generator=generator, device=generator.device).to(device)

    def segments(self, rows: torch.Tensor) -> torch.Tensor:
        """Bool ``(B, W)``: one contiguous segment of each row's real items, up to half its length."""
        width = rows.shape[1]
        lengths = (rows != self.pad).sum(1)
        seg_len = 1 + (self._random((len(rows),), rows.device) * (lengths // 2).clamp(min=1)).long()
        seg_len = seg_len.minimum(lengths)
        room = (lengths - seg_len + 1).clamp(min=1)
        start = width - lengths + (self._random((len(rows),), rows.device) * room).long()
        columns = torch.arange(width, device=rows.device)[None, :]
        return (columns >= start[:, None]) & (columns < (start + seg_len)[:, None])

    def objectives(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """The four pre-training losses of one batch of windows."""
        rows = trim_padding(windows[:, 1:], self.pad)
        real = rows != self.pad
        backbone = self.backbone
        losses = {
            "aap": self._attribute_loss(backbone.item_embedding(rows[real]), "aap", rows[real])
        }

        masked = cloze_mask(rows, self.config.mask_prob, self.pad, self.generator.on(rows.device))
        states = backbone(rows.masked_fill(masked, self.mask), causal=False)[masked]
        originals = rows[masked]
        negatives = sample_negatives(
            originals.shape, self.n_items, self.generator.on(rows.device), rows.device
        )
        projected = self.heads["mip"](states)
        positive = (projected * backbone.item_embedding(originals)).sum(-1)
        negative = (projected * backbone.item_embedding(negatives)).sum(-1)
        losses["mip"] = _pair_loss(positive, negative)
        losses["map"] = self._attribute_loss(states, "map", originals)

        segment = self.segments(rows)
        context = backbone(rows.masked_fill(segment, self.mask), causal=False)[:, -1]
        segment_rows = rows.masked_fill(~segment, self.pad)
        segment_end = (segment.cumsum(1) * segment).argmax(1)
        encoded = backbone(segment_rows, causal=False)[torch.arange(len(rows)), segment_end]
        projected = self.heads["sp"](context)
        positive = (projected * encoded).sum(-1)
        negative = (projected * encoded.roll(1, dims=0)).sum(-1)
        losses["sp"] = _pair_loss(positive, negative)
        return losses

    def loss(self, windows: torch.Tensor) -> torch.Tensor:
        losses = self.objectives(windows)
        return sum(self.weights[name] * value for name, value in losses.items())

    def pretrained(self) -> dict[str, Any]:
        """What fine-tuning needs: the backbone's settings and weights (on the CPU)."""
        shape = {key: getattr(self.config, key) for key in BACKBONE_KEYS}
        return {
            "backbone": {k: v.detach().cpu() for k, v in self.backbone.state_dict().items()},
            "config": {"n_items": self.n_items, **shape},
        }


def _pair_loss(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of positives against their negatives."""
    logits = torch.cat([positive, negative]).float()
    labels = torch.cat([torch.ones_like(positive), torch.zeros_like(negative)]).float()
    return F.binary_cross_entropy_with_logits(logits, labels)


def fine_tune_model(
    model_class: type[SASRec] | type[BERT4Rec],
    pretrained: dict[str, Any],
    config: TransformerConfig,
    seed: int,
) -> SASRec | BERT4Rec:
    """A SASRec or BERT4Rec whose backbone holds the pre-trained weights.

    The backbone's shape (max_len, hidden, heads, layers) comes from the pre-trained
    model; ``config`` gives the rest (dropout, loss, horizon, masking, the optimiser).
    """
    shape = {key: pretrained["config"][key] for key in BACKBONE_KEYS}
    model = model_class(pretrained["config"]["n_items"], replace(config, **shape), seed)
    model.backbone.load_state_dict(pretrained["backbone"])
    return model

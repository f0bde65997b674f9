"""Build, train and score any neural sequential model the same way.

:data:`ARCHITECTURES` maps each model name to its config class and its model class; every
model is built as ``Model(n_items, config, seed)`` and keeps its config, whose
``batch_size``, ``lr`` and ``weight_decay`` set the optimiser. The training loop's budget
and schedule come as a :class:`~movie_rec.models.training.TrainConfig`.
:class:`SequenceScorer` is the fitted model's ``score(users)`` for
:func:`movie_rec.evaluation.top_k_unseen`, the one prediction path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch

from movie_rec.models.sequences import UserSequences
from movie_rec.models.sequential.bert4rec import BERT4Rec, BERT4RecConfig
from movie_rec.models.sequential.data import SequentialConfig, left_padded, trim_padding
from movie_rec.models.sequential.gru4rec import GRU4Rec, GRU4RecConfig
from movie_rec.models.sequential.s3rec import S3RecConfig, S3RecPretrainer, fine_tune_model
from movie_rec.models.sequential.sasrec import SASRec, SASRecConfig
from movie_rec.models.sequential.srgnn import SRGNN, SRGNNConfig
from movie_rec.models.training import TrainConfig, TrainResult, train
from movie_rec.runtime import autocast


class SequentialModel(Protocol):
    n_items: int
    max_len: int
    pad: int
    config: SequentialConfig

    def build_examples(self, sequences: UserSequences, device: torch.device) -> Any: ...
    def loss(self, batch: Any) -> torch.Tensor: ...
    def score_next(self, rows: torch.Tensor) -> torch.Tensor: ...


class Architecture(NamedTuple):
    config: type[SequentialConfig]
    model: Callable[[int, Any, int], torch.nn.Module]


ARCHITECTURES: dict[str, Architecture] = {
    "gru4rec": Architecture(GRU4RecConfig, GRU4Rec),
    "sasrec": Architecture(SASRecConfig, SASRec),
    "bert4rec": Architecture(BERT4RecConfig, BERT4Rec),
    "srgnn": Architecture(SRGNNConfig, SRGNN),
    "s3rec_sasrec": Architecture(SASRecConfig, SASRec),
    "s3rec_bert4rec": Architecture(BERT4RecConfig, BERT4Rec),
}
FINE_TUNED = ("s3rec_sasrec", "s3rec_bert4rec")  # start from the pre-trained S3Rec backbone


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown sequential model {name!r}; expected one of {[*ARCHITECTURES]}")
    return ARCHITECTURES[name]


def build_model(
    name: str,
    n_items: int,
    config: SequentialConfig,
    seed: int,
    pretrained: dict[str, Any] | None = None,
) -> torch.nn.Module:
    """A freshly initialised model ``name`` (S3Rec fine-tuning models need ``pretrained``)."""
    model_class = architecture(name).model
    torch.manual_seed(seed)
    if name not in FINE_TUNED:
        return model_class(n_items, config, seed)
    if pretrained is None:
        raise ValueError(f"{name} needs the pre-trained S3Rec model")
    if pretrained["config"]["n_items"] != n_items:
        raise ValueError("the pre-trained S3Rec model was trained on another item set")
    return fine_tune_model(model_class, pretrained, config, seed)


def fit(
    model: SequentialModel,
    sequences: UserSequences,
    train_config: TrainConfig,
    device: torch.device,
    seed: int,
    name: str,
    evaluate: Callable[[], float] | None = None,
    stop_at: int | None = None,
) -> TrainResult:
    """Train ``model`` on every user's history with the shared loop and Adam.

    With ``evaluate`` (validation recall of the current weights) it stops early; without,
    it trains ``stop_at`` updates (the validation fit's best update) or the whole budget.
    """
    model.to(device)
    examples = model.build_examples(sequences, device)
    config = model.config
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return train(
        model,
        optimizer,
        examples.batches(config.batch_size, seed),
        model.loss,
        evaluate,
        train_config,
        device,
        name,
        stop_at=stop_at,
    )


class SequenceScorer:
    """``score(users)``: a sequential model's next-item scores from each user's history.

    Usable as ``top_k_unseen(scorer.score, seen, k, users)``; the model scores whatever
    mode it is in (the training loop leaves it in eval mode).
    """

    def __init__(
        self, model: SequentialModel, sequences: UserSequences, device: torch.device
    ) -> None:
        self.model = model
        self.device = device
        self.inputs = left_padded(sequences, model.max_len, model.pad)

    def score(self, users: np.ndarray) -> torch.Tensor:
        rows = torch.as_tensor(self.inputs[np.asarray(users)], device=self.device)
        with torch.no_grad(), autocast(self.device):
            return self.model.score_next(trim_padding(rows, self.model.pad)).float()


def pretrain_s3rec(
    sequences: UserSequences,
    attributes: np.ndarray,
    config: S3RecConfig,
    train_config: TrainConfig,
    device: torch.device,
    seed: int,
) -> tuple[dict[str, Any], TrainResult]:
    """Pre-train S3Rec for ``config.pretrain_updates`` updates; the fine-tuning payload.

    There is no validation (the objectives are not the recommendation task);
    ``train_config``'s schedule (warm-up, decay) runs over the pre-training budget.
    """
    torch.manual_seed(seed)
    model = S3RecPretrainer(attributes.shape[0], attributes, config, seed)
    budget = replace(train_config, max_updates=config.pretrain_updates)
    result = fit(model, sequences, budget, device, seed, "s3rec_pretrain")
    return model.pretrained(), result

"""Build, train and predict any sequential model the same way.

``settings`` are one model's hyperparameters (the pipeline merges ``common`` with the
model's own section): architecture keys go to the model, ``batch_size``, ``lr`` and
``weight_decay`` to the optimiser. The training loop's budget and schedule come as a
:class:`~movie_rec.models.training.TrainConfig`. :class:`SequenceScorer` is the fitted
model's ``score(users)`` for :func:`movie_rec.evaluation.top_k_unseen`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from movie_rec.models.sequences import UserSequences
from movie_rec.models.sequential.bert4rec import BERT4Rec
from movie_rec.models.sequential.data import (
    RecallEvaluator,
    candidates,
    left_padded,
    score_function,
)
from movie_rec.models.sequential.gru4rec import GRU4Rec
from movie_rec.models.sequential.s3rec import S3RecPretrainer, fine_tune_model
from movie_rec.models.sequential.sasrec import SASRec
from movie_rec.models.sequential.srgnn import SRGNN
from movie_rec.models.training import TrainConfig, TrainResult, train

MODELS = ("gru4rec", "sasrec", "bert4rec", "srgnn", "s3rec_sasrec", "s3rec_bert4rec")


class SequentialModel(Protocol):
    n_items: int
    max_len: int
    pad: int

    def build_examples(self, sequences: UserSequences, device: torch.device) -> Any: ...
    def loss(self, batch: Any) -> torch.Tensor: ...
    def score_next(self, rows: torch.Tensor) -> torch.Tensor: ...


def _pick(settings: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: settings[key] for key in keys if key in settings}


def build_model(
    name: str,
    n_items: int,
    settings: dict[str, Any],
    seed: int,
    pretrained: dict[str, Any] | None = None,
) -> torch.nn.Module:
    """A freshly initialised model ``name`` (S3Rec fine-tuning models need ``pretrained``)."""
    torch.manual_seed(seed)
    if name == "gru4rec":
        return GRU4Rec(n_items, **_pick(settings, "max_len", "hidden", "layers", "dropout"))
    if name == "sasrec":
        keys = ("max_len", "hidden", "heads", "layers", "dropout", "loss", "horizon", "negatives")
        return SASRec(n_items, **_pick(settings, *keys), seed=seed)
    if name == "bert4rec":
        keys = ("max_len", "hidden", "heads", "layers", "dropout", "mask_prob", "last_mask_prob")
        return BERT4Rec(n_items, **_pick(settings, *keys), seed=seed)
    if name == "srgnn":
        return SRGNN(n_items, **_pick(settings, "max_len", "hidden", "steps", "dropout"))
    if name in ("s3rec_sasrec", "s3rec_bert4rec"):
        if pretrained is None:
            raise ValueError(f"{name} needs the pre-trained S3Rec model")
        if pretrained["config"]["n_items"] != n_items:
            raise ValueError("the pre-trained S3Rec model was trained on another item set")
        return fine_tune_model(name.removeprefix("s3rec_"), pretrained, settings, seed)
    raise ValueError(f"unknown sequential model {name!r}; expected one of {MODELS}")


def fit(
    model: torch.nn.Module,
    sequences: UserSequences,
    settings: dict[str, Any],
    config: TrainConfig,
    device: torch.device,
    seed: int,
    name: str,
    evaluate: Callable[[], float] | None = None,
    stop_at: int | None = None,
) -> TrainResult:
    """Train ``model`` on every user's history with the shared loop.

    With ``evaluate`` (validation recall of the current weights, e.g. a
    :class:`RecallEvaluator`) it stops early; without, it trains ``stop_at`` updates (the
    validation fit's best update) or the whole budget.
    """
    model.to(device)
    examples = model.build_examples(sequences, device)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=settings.get("lr", 1e-3),
        weight_decay=settings.get("weight_decay", 0.0),
    )
    return train(
        model,
        optimizer,
        examples.batches(settings.get("batch_size", 128), seed),
        model.loss,
        evaluate,
        config,
        device,
        name,
        stop_at=stop_at,
    )


def model_inputs(model: torch.nn.Module, sequences: UserSequences) -> np.ndarray:
    """Every user's last ``max_len`` items, left-padded: what the model scores from."""
    return left_padded(sequences, model.max_len, model.pad)


class SequenceScorer:
    """``score(users)``: a sequential model's next-item scores from each user's history.

    Usable as ``top_k_unseen(scorer.score, seen, k, users)``; the model scores whatever
    mode it is in (the training loop leaves it in eval mode).
    """

    def __init__(
        self, model: torch.nn.Module, sequences: UserSequences, device: torch.device
    ) -> None:
        self.model = model
        self.device = device
        self.inputs = model_inputs(model, sequences)

    def score(self, users: np.ndarray) -> torch.Tensor:
        score = score_function(self.model.score_next, self.inputs, self.model.pad, self.device)
        return score(np.asarray(users))


def evaluator(
    model: torch.nn.Module,
    sequences: UserSequences,
    seen: sp.csr_matrix,
    answers: pd.DataFrame,
    device: torch.device,
    signal: str = "overall",
) -> RecallEvaluator:
    """The validation evaluator early stopping follows (``signal``: ``overall`` | ``last``)."""
    inputs = model_inputs(model, sequences)
    return RecallEvaluator(model.score_next, inputs, seen, answers, model.pad, device, signal)


def predict(
    model: torch.nn.Module,
    sequences: UserSequences,
    seen: sp.csr_matrix,
    k: int,
    device: torch.device,
) -> pd.DataFrame:
    """Top ``k`` unseen candidates for every user."""
    model.eval()
    return candidates(model.score_next, model_inputs(model, sequences), seen, k, model.pad, device)


def pretrain_s3rec(
    sequences: UserSequences,
    attributes: np.ndarray,
    settings: dict[str, Any],
    config: TrainConfig,
    device: torch.device,
    seed: int,
) -> tuple[dict[str, Any], TrainResult]:
    """Pre-train S3Rec for ``settings["pretrain_updates"]`` updates and return the
    fine-tuning payload.

    There is no validation (the objectives are not the recommendation task); ``config``'s
    schedule (warm-up, decay) runs over the pre-training budget.
    """
    torch.manual_seed(seed)
    keys = ("max_len", "hidden", "heads", "layers", "dropout", "mask_prob", "weights")
    model = S3RecPretrainer(attributes.shape[0], attributes, **_pick(settings, *keys), seed=seed)
    budget = replace(config, max_updates=int(settings["pretrain_updates"]))
    result = fit(model, sequences, settings, budget, device, seed, "s3rec_pretrain")
    return model.pretrained(), result

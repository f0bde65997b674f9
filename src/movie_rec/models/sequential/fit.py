"""The neural sequence networks behind the model protocol: one adapter, one way to train
and score them.

A network (GRU4Rec, SASRec, BERT4Rec, SRGNN) is an ``nn.Module`` built as
``Network(n_items, config, seed)`` with ``build_examples``, ``loss`` and ``score_next``
(:class:`SequentialNetwork`); its config's ``batch_size``, ``lr`` and ``weight_decay`` set
the optimiser. ``Neural(SASRec)`` is the registry's ``Model`` of a network:
``Neural(SASRec)(config)`` is a :class:`SequenceRecommender`, whose ``fit(data, run)``
builds the network (from the pre-trained S3Rec backbone when the entry names the input
that holds it), trains it with :func:`train_network` and whose ``score(users)`` is
:class:`SequenceScorer`'s, the one prediction path into
:func:`movie_rec.evaluation.top_k_unseen`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch

from movie_rec.models.protocol import FitRun, TrainingData
from movie_rec.models.sequences import UserSequences
from movie_rec.models.sequential.data import SequentialConfig, left_padded, trim_padding
from movie_rec.models.sequential.s3rec import S3RecConfig, S3RecPretrainer, fine_tune_model
from movie_rec.models.training import TrainConfig, TrainResult, train
from movie_rec.runtime import autocast


class SequentialNetwork(Protocol):
    n_items: int
    max_len: int
    pad: int
    config: SequentialConfig

    def build_examples(self, sequences: UserSequences, device: torch.device) -> Any: ...
    def loss(self, batch: Any) -> torch.Tensor: ...
    def score_next(self, rows: torch.Tensor) -> torch.Tensor: ...


NetworkClass = Callable[[int, Any, int], torch.nn.Module]


@dataclass(frozen=True)
class Neural:
    """The ``Model(config)`` of a network: ``Neural(SASRec)(config)`` is a
    :class:`SequenceRecommender`. ``pretrained`` names the input holding the pre-trained
    S3Rec backbone the network starts from (:data:`movie_rec.models.sequential.s3rec.PRETRAINED`)."""

    network: NetworkClass
    pretrained: str | None = None

    def __call__(self, config: SequentialConfig) -> SequenceRecommender:
        return SequenceRecommender(config, self.network, self.pretrained)

    @property
    def extra_inputs(self) -> tuple[str, ...]:
        """The inputs a fit reads beyond its data (``FitRun.extras``)."""
        return () if self.pretrained is None else (self.pretrained,)


class SequenceRecommender:
    """A network trained on every user's history and scoring their next items."""

    def __init__(
        self, config: SequentialConfig, network: NetworkClass, pretrained: str | None = None
    ) -> None:
        self.config = config
        self.network_class = network
        self.pretrained = pretrained
        self.network: torch.nn.Module | None = None
        self.scorer: SequenceScorer | None = None

    def build(
        self, n_items: int, seed: int, backbone: dict[str, Any] | None = None
    ) -> torch.nn.Module:
        """A freshly initialised network; a fine-tuned one on the pre-trained ``backbone``."""
        torch.manual_seed(seed)
        if self.pretrained is None:
            return self.network_class(n_items, self.config, seed)
        if backbone is None:
            raise ValueError(f"fine-tuning needs the pre-trained S3Rec model ({self.pretrained})")
        if backbone["config"]["n_items"] != n_items:
            raise ValueError("the pre-trained S3Rec model was trained on another item set")
        return fine_tune_model(self.network_class, backbone, self.config, seed)

    def fit(self, data: TrainingData, run: FitRun) -> TrainResult:
        """Train on the data's sequences with the shared loop (early stopping on
        ``run.evaluate``, or up to ``run.stop_at``; with ``run.start``, from that fit's
        weights and update)."""
        backbone = run.extras.get(self.pretrained) if self.pretrained else None
        self.network = self.build(data.n_items, run.seed, backbone)
        if run.start is not None:
            self.network.load_state_dict(run.start.model.network.state_dict())
        self.scorer = SequenceScorer(self.network, data.sequences, run.device)
        scorer, evaluate = self.scorer, run.evaluate
        return train_network(
            self.network,
            data.sequences,
            run.train,
            run.device,
            run.seed,
            run.name,
            evaluate=None if evaluate is None else lambda: evaluate(scorer.score),
            stop_at=run.stop_at,
            start_update=run.start_update,
        )

    def score(self, users: np.ndarray) -> torch.Tensor:
        if self.scorer is None:
            raise RuntimeError("SequenceRecommender.score called before fit")
        return self.scorer.score(users)


def train_network(
    model: SequentialNetwork,
    sequences: UserSequences,
    train_config: TrainConfig,
    device: torch.device,
    seed: int,
    name: str,
    evaluate: Callable[[], float] | None = None,
    stop_at: int | None = None,
    start_update: int = 0,
) -> TrainResult:
    """Train ``model`` on every user's history with the shared loop and Adam.

    With ``evaluate`` (validation recall of the current weights) it stops early; without,
    it trains up to ``stop_at`` (from ``start_update`` when it continues kept weights) or
    the whole budget.
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
        start_update=start_update,
    )


class SequenceScorer:
    """``score(users)``: a sequential model's next-item scores from each user's history.

    Usable as ``top_k_unseen(scorer.score, seen, k, users)``; the model scores whatever
    mode it is in (the training loop leaves it in eval mode).
    """

    def __init__(
        self, model: SequentialNetwork, sequences: UserSequences, device: torch.device
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
    result = train_network(model, sequences, budget, device, seed, "s3rec_pretrain")
    return model.pretrained(), result

"""Multi-VAE: Liang et al., "Variational Autoencoders for Collaborative Filtering", WWW 2018.

Each user's binary history is L2-normalised, dropped out and encoded (tanh layers) into a
Gaussian latent; the decoder mirrors the encoder and a softmax over all items gives a
multinomial likelihood. The KL term's weight β rises linearly with the number of updates
until it reaches ``beta_cap`` after ``anneal_steps`` updates (the paper anneals to 0.2).
At scoring time the latent mean is decoded (no sampling, no dropout).

Training goes through the shared loop :func:`movie_rec.models.training.train` (batches,
scoring and state as RecVAE's: :class:`movie_rec.models.autoencoder.UserAutoencoder`): a
budget of updates, early stopping on validation Recall@10 every ``eval_every`` updates,
best weights kept. The final fit on all interactions trains ``stop_at`` updates (the
validation fit's best) or continues the validation fit's weights from their update, so β
follows the same path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from movie_rec.models.autoencoder import (
    AutoencoderConfig,
    HistoryBatch,
    HistoryInput,
    UserAutoencoder,
    multinomial_nll,
)
from movie_rec.models.protocol import Start

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MultiVAEConfig(AutoencoderConfig):
    """Hyperparameters (paper defaults: 600→200, dropout 0.5, β cap 0.2, Adam 1e-3, batch 500).

    ``anneal_steps`` is the number of updates after which β reaches ``beta_cap``. The
    paper reached its cap after 40k updates of 233 per epoch; on the 31k-user data (63
    updates of 500 users per epoch) 2,000 updates is about 30 epochs.
    """

    beta_cap: float = 0.2
    anneal_steps: int = 2000
    weight_decay: float = 0.0


class MultiVAENet(nn.Module):
    """Encoder ``n_items → hidden → 2·latent`` (mean, log-variance); decoder mirrors it."""

    def __init__(self, n_items: int, hidden: int, latent: int, dropout: float) -> None:
        super().__init__()
        self.latent = latent
        self.input_dropout = nn.Dropout(dropout)
        self.encoder_input = HistoryInput(n_items, hidden)
        self.encoder = nn.Sequential(nn.Tanh(), nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, n_items)
        )

    def encode(self, batch: HistoryBatch, dropout: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The latent's mean and log-variance of L2-normalised (and dropped-out) histories."""
        values = batch.normalized_values()
        if dropout:
            values = self.input_dropout(values)
        mu, logvar = self.encoder(self.encoder_input(batch, values)).float().chunk(2, dim=1)
        return mu, logvar

    def forward(self, batch: HistoryBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Item logits, latent mean and log-variance for a batch of histories."""
        mu, logvar = self.encode(batch, dropout=True)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar

    def decode_mean(self, batch: HistoryBatch) -> torch.Tensor:
        """Item logits from the latent mean (no dropout, no sampling)."""
        return self.decoder(self.encode(batch, dropout=False)[0])


def multivae_loss(
    logits: torch.Tensor, batch: HistoryBatch, mu: torch.Tensor, logvar: torch.Tensor, beta: float
) -> torch.Tensor:
    """Multinomial negative log-likelihood plus β·KL(q(z|x) ‖ N(0, I)), averaged over users."""
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
    return (multinomial_nll(logits, batch) + beta * kl).mean()


def kl_weight(updates: int, config: MultiVAEConfig) -> float:
    """β after ``updates`` optimizer steps: linear from 0 to ``beta_cap`` over ``anneal_steps``."""
    if config.anneal_steps <= 0:
        return config.beta_cap
    return min(config.beta_cap, config.beta_cap * updates / config.anneal_steps)


class MultiVAE(UserAutoencoder):
    """Trains a :class:`MultiVAENet` on a users×items matrix and scores users with it."""

    name = "multivae"

    def __init__(self, config: MultiVAEConfig) -> None:
        super().__init__(config)
        self.updates = 0

    def _build(self, n_items: int) -> torch.optim.Optimizer:
        config = self.config
        self.net = MultiVAENet(n_items, config.hidden, config.latent, config.dropout)
        self.net.to(self.device)
        self.updates = 0
        return torch.optim.Adam(
            self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )

    def _resume(self, start: Start) -> None:
        super()._resume(start)
        self.updates = start.update  # β goes on from where the kept weights were

    @property
    def beta(self) -> float:
        return kl_weight(self.updates, self.config)

    def _loss(self, users: np.ndarray) -> torch.Tensor:
        batch = self._rows(users)
        logits, mu, logvar = self.net(batch)
        loss = multivae_loss(logits, batch, mu, logvar, self.beta)
        self.updates += 1
        if self.updates == self.config.anneal_steps:
            logger.info("multivae: β reached its cap %.4f at update %d", self.beta, self.updates)
        return loss

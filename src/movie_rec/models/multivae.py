"""Multi-VAE: Liang et al., "Variational Autoencoders for Collaborative Filtering", WWW 2018.

Each user's binary history is L2-normalised, dropped out and encoded (tanh layers) into a
Gaussian latent; the decoder mirrors the encoder and a softmax over all items gives a
multinomial likelihood. The KL term's weight β rises linearly with the number of updates
until it reaches ``beta_cap`` after ``anneal_steps`` updates (the paper anneals to 0.2).
At scoring time the latent mean is decoded (no sampling, no dropout).

Training goes through the shared loop :func:`movie_rec.models.training.train`: a budget
of updates, early stopping on validation Recall@10 every ``eval_every`` updates, best
weights kept. The final fit on all interactions trains ``stop_at`` updates (the validation
fit's best), so β follows the same path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from movie_rec.evaluation import ScoreFn
from movie_rec.models.config import ParamsConfig
from movie_rec.models.ease import dense_rows
from movie_rec.models.training import TrainConfig, TrainResult, train
from movie_rec.runtime import autocast, seed_everything

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MultiVAEConfig(ParamsConfig):
    """Hyperparameters (paper defaults: 600→200, dropout 0.5, β cap 0.2, Adam 1e-3, batch 500).

    ``anneal_steps`` is the number of updates after which β reaches ``beta_cap``. The
    paper reached its cap after 40k updates of 233 per epoch; on the 31k-user data (63
    updates of 500 users per epoch) 2,000 updates is about 30 epochs.
    """

    hidden: int = 600
    latent: int = 200
    dropout: float = 0.5
    beta_cap: float = 0.2
    anneal_steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 500


class MultiVAENet(nn.Module):
    """Encoder ``n_items → hidden → 2·latent`` (mean, log-variance); decoder mirrors it."""

    def __init__(self, n_items: int, hidden: int, latent: int, dropout: float) -> None:
        super().__init__()
        self.latent = latent
        self.input_dropout = nn.Dropout(dropout)
        self.encoder = nn.Sequential(
            nn.Linear(n_items, hidden), nn.Tanh(), nn.Linear(hidden, 2 * latent)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, n_items)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Item logits, latent mean and log-variance for a batch of binary histories."""
        h = self.input_dropout(F.normalize(x, dim=1))
        mu, logvar = self.encoder(h).float().chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar


def multivae_loss(
    logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float
) -> torch.Tensor:
    """Multinomial negative log-likelihood plus β·KL(q(z|x) ‖ N(0, I)), averaged over users."""
    nll = -(F.log_softmax(logits.float(), dim=1) * x).sum(dim=1).mean()
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1).mean()
    return nll + beta * kl


def kl_weight(updates: int, config: MultiVAEConfig) -> float:
    """β after ``updates`` optimizer steps: linear from 0 to ``beta_cap`` over ``anneal_steps``."""
    if config.anneal_steps <= 0:
        return config.beta_cap
    return min(config.beta_cap, config.beta_cap * updates / config.anneal_steps)


class MultiVAE:
    """Trains a :class:`MultiVAENet` on a users×items matrix and scores users with it."""

    def __init__(self, config: MultiVAEConfig, device: torch.device, seed: int) -> None:
        self.config = config
        self.device = device
        self.seed = seed
        self.net: MultiVAENet | None = None
        self.matrix: sp.csr_matrix | None = None
        self.updates = 0

    def fit(
        self,
        matrix: sp.spmatrix,
        train_config: TrainConfig,
        evaluate: Callable[[ScoreFn], float] | None = None,
        stop_at: int | None = None,
    ) -> TrainResult:
        """Train with early stopping on ``evaluate(self.score)`` (validation Recall@10).

        With ``evaluate=None`` it trains exactly ``stop_at`` (or ``max_updates``) updates:
        the final fit on all interactions, for the update count the validation fit kept.
        """
        seed_everything(self.seed)
        self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        self.net = MultiVAENet(
            self.matrix.shape[1], self.config.hidden, self.config.latent, self.config.dropout
        ).to(self.device)
        self.updates = 0
        optimizer = torch.optim.Adam(
            self.net.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        result = train(
            self.net,
            optimizer,
            self._batches,
            self._loss,
            None if evaluate is None else lambda: evaluate(self.score),
            train_config,
            self.device,
            "multivae",
            stop_at=stop_at,
        )
        logger.info("multivae: β reached %.4f after %d updates", self.beta, self.updates)
        return result

    @property
    def beta(self) -> float:
        return kl_weight(self.updates, self.config)

    def _batches(self, pass_index: int) -> Iterator[np.ndarray]:
        """One pass of user batches: users with any history, shuffled by (seed, pass)."""
        active = np.flatnonzero(np.diff(self.matrix.indptr) > 0)
        order = np.random.default_rng([self.seed, pass_index]).permutation(active)
        for start in range(0, len(order), self.config.batch_size):
            yield order[start : start + self.config.batch_size]

    def _loss(self, users: np.ndarray) -> torch.Tensor:
        x = dense_rows(self.matrix, users).to(self.device)
        logits, mu, logvar = self.net(x)
        loss = multivae_loss(logits, x, mu, logvar, self.beta)
        self.updates += 1
        return loss

    def score(self, users: np.ndarray) -> torch.Tensor:
        """Item logits of ``users`` from their latent means (eval mode, no gradients)."""
        if self.net is None or self.matrix is None:
            raise RuntimeError("MultiVAE.score called before fit")
        was_training = self.net.training
        self.net.eval()
        with torch.no_grad(), autocast(self.device):
            logits = self.net(dense_rows(self.matrix, users).to(self.device))[0].float()
        self.net.train(was_training)
        return logits

    def state(self) -> dict[str, Any]:
        """What to persist: hyperparameters, item count and CPU weights."""
        if self.net is None or self.matrix is None:
            raise RuntimeError("MultiVAE.state called before fit")
        return {
            "hyperparameters": self.config.to_dict(),
            "n_items": self.matrix.shape[1],
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
        }

"""RecVAE: Shenbin, Alekseev, Tutubalina, Malykh, Nikolenko, "RecVAE: a New Variational
Autoencoder for Top-N Recommendations with Implicit Feedback", WSDM 2020.

Multi-VAE (Liang et al. 2018) with four changes:

* a deeper encoder: five dense layers, each ``LayerNorm(swish(W h + Σ earlier outputs))``
  (residual connections to every earlier layer), then the Gaussian's mean and log-variance;
  the decoder is one linear layer;
* the composite prior: a mixture of N(0, I), the posterior of the encoder as it was at the
  start of the current encoder phase (the "old encoder") and a wide N(0, e¹⁰ I), weighted
  3/20, 15/20, 2/20. As in the authors' code the mixture is taken per latent dimension;
* the KL weight of a user is ``γ·|x_u|``, growing with the history size;
* alternating training: ``encoder_updates`` updates of the encoder (input dropout on), then
  ``decoder_updates`` updates of the decoder (input dropout off), each part with its own
  Adam. The authors alternate 3 epochs and 1 epoch; the defaults are those in updates on
  31k users in batches of 500 (63 batches an epoch).

Training goes through the shared loop :func:`movie_rec.models.training.train`, handed an
:class:`AlternatingOptimizer` that steps one part at a time. The KL term has no gradient
with respect to the decoder, so a decoder update computes only the likelihood (neither the
old encoder nor the prior). Scores decode the latent mean.
Batches, scoring and state are Multi-VAE's (:mod:`movie_rec.models.autoencoder`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from movie_rec.models.autoencoder import (
    AutoencoderConfig,
    HistoryBatch,
    HistoryInput,
    UserAutoencoder,
    multinomial_nll,
)
from movie_rec.models.protocol import Start

ENCODER_LAYERS = 5
LAYER_NORM_EPS = 0.1
PRIOR_WEIGHTS = (3 / 20, 15 / 20, 2 / 20)  # standard normal, old posterior, wide normal
WIDE_PRIOR_LOGVAR = 10.0
ENCODER, DECODER = "encoder", "decoder"


@dataclass(frozen=True)
class RecVAEConfig(AutoencoderConfig):
    """Hyperparameters (paper defaults: 600→200, γ 0.005, dropout 0.5, Adam 5e-4, batch 500).

    ``encoder_updates`` / ``decoder_updates`` are the updates of each phase of one cycle.
    """

    lr: float = 5e-4
    gamma: float = 0.005
    encoder_updates: int = 189
    decoder_updates: int = 63

    def __post_init__(self) -> None:
        if self.encoder_updates < 1 or self.decoder_updates < 1:
            raise ValueError(f"RecVAE needs at least one update a phase: {self}")


def log_normal(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-dimension log-density of ``z`` under N(mean, exp(logvar))."""
    return -0.5 * (logvar + math.log(2 * math.pi) + (z - mean).pow(2) / logvar.exp())


def composite_prior_log_density(
    z: torch.Tensor, old_mean: torch.Tensor, old_logvar: torch.Tensor
) -> torch.Tensor:
    """Per-dimension log-density of ``z`` under the three-part mixture (see the module doc)."""
    zero = torch.zeros_like(z)
    components = torch.stack(
        [
            log_normal(z, zero, zero),
            log_normal(z, old_mean, old_logvar),
            log_normal(z, zero, torch.full_like(z, WIDE_PRIOR_LOGVAR)),
        ],
        dim=-1,
    )
    log_weights = torch.tensor(PRIOR_WEIGHTS, dtype=z.dtype, device=z.device).log()
    return torch.logsumexp(components + log_weights, dim=-1)


def recvae_loss(
    logits: torch.Tensor,
    batch: HistoryBatch,
    z: torch.Tensor,
    posterior: tuple[torch.Tensor, torch.Tensor],
    old_posterior: tuple[torch.Tensor, torch.Tensor],
    gamma: float,
) -> torch.Tensor:
    """Negative ELBO averaged over users: multinomial NLL + γ·|x_u|·KL(q ‖ composite prior).

    The KL term is the one-sample estimate ``log q(z|x) − log p(z)`` at the sampled ``z``.
    """
    kl = (log_normal(z, *posterior) - composite_prior_log_density(z, *old_posterior)).sum(dim=1)
    history_size = batch.row_sums(batch.values)
    return (multinomial_nll(logits, batch) + gamma * history_size * kl).mean()


class Encoder(nn.Module):
    """L2-normalised, dropped-out history → five densely connected layers → mean, log-variance."""

    def __init__(self, n_items: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.input = HistoryInput(n_items, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(ENCODER_LAYERS - 1))
        self.norms = nn.ModuleList(
            nn.LayerNorm(hidden, eps=LAYER_NORM_EPS) for _ in range(ENCODER_LAYERS)
        )
        self.head = nn.Linear(hidden, 2 * latent)

    def forward(self, batch: HistoryBatch, dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
        values = F.dropout(batch.normalized_values(), dropout, self.training)
        h = self.norms[0](F.silu(self.input(batch, values)))
        earlier = h
        for layer, norm in zip(self.layers, self.norms[1:], strict=True):
            h = norm(F.silu(layer(h) + earlier))
            earlier = earlier + h
        mean, logvar = self.head(h).float().chunk(2, dim=1)
        return mean, logvar


class RecVAENet(nn.Module):
    """Encoder, the old encoder that defines the prior, and a linear decoder."""

    def __init__(self, n_items: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.encoder = Encoder(n_items, hidden, latent)
        self.old_encoder = Encoder(n_items, hidden, latent).requires_grad_(False)
        self.decoder = nn.Linear(latent, n_items)

    def refresh_prior(self) -> None:
        """Copy the current encoder into the old encoder."""
        self.old_encoder.load_state_dict(self.encoder.state_dict())

    def _sample(
        self, batch: HistoryBatch, dropout: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(batch, dropout)
        return mean + torch.randn_like(mean) * torch.exp(0.5 * logvar), mean, logvar

    def forward(self, batch: HistoryBatch, dropout: float, gamma: float) -> torch.Tensor:
        """The training loss of a batch of histories (a sampled latent)."""
        z, mean, logvar = self._sample(batch, dropout)
        with torch.no_grad():
            old_posterior = self.old_encoder(batch, 0.0)
        return recvae_loss(self.decoder(z), batch, z, (mean, logvar), old_posterior, gamma)

    def decoder_loss(self, batch: HistoryBatch) -> torch.Tensor:
        """The loss's part that depends on the decoder: the likelihood of a sampled latent."""
        z = self._sample(batch, 0.0)[0]
        return multinomial_nll(self.decoder(z), batch).mean()

    def decode_mean(self, batch: HistoryBatch) -> torch.Tensor:
        """Item logits from the latent mean (no dropout, no sampling)."""
        return self.decoder(self.encoder(batch, 0.0)[0])


class AlternatingOptimizer:
    """Steps the encoder's optimizer ``encoder_updates`` times, then the decoder's
    ``decoder_updates`` times, and so on.

    ``on_phase(phase)`` is called when a phase begins (also the first); ``phase`` tells
    the loss which part the next step trains. ``param_groups`` holds both optimizers'
    groups, so a learning-rate schedule moves both.
    """

    def __init__(
        self,
        encoder_optimizer: torch.optim.Optimizer,
        decoder_optimizer: torch.optim.Optimizer,
        encoder_updates: int,
        decoder_updates: int,
        on_phase: Callable[[str], None],
    ) -> None:
        self.optimizers = {ENCODER: encoder_optimizer, DECODER: decoder_optimizer}
        self.encoder_updates = encoder_updates
        self.cycle = encoder_updates + decoder_updates
        self.on_phase = on_phase
        self.param_groups = encoder_optimizer.param_groups + decoder_optimizer.param_groups
        self.steps = 0
        on_phase(self.phase)

    @property
    def phase(self) -> str:
        return ENCODER if self.steps % self.cycle < self.encoder_updates else DECODER

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        phase = self.phase
        self.optimizers[phase].step()
        self.steps += 1
        if self.phase != phase:
            self.on_phase(self.phase)


class RecVAE(UserAutoencoder):
    """Trains a :class:`RecVAENet` on a users×items matrix and scores users with it."""

    name = "recvae"

    def __init__(self, config: RecVAEConfig) -> None:
        super().__init__(config)
        self.optimizer: AlternatingOptimizer | None = None

    def _build(self, n_items: int) -> AlternatingOptimizer:
        self.net = RecVAENet(n_items, self.config.hidden, self.config.latent)
        self.net.to(self.device)
        self.optimizer = AlternatingOptimizer(
            torch.optim.Adam(self.net.encoder.parameters(), lr=self.config.lr),
            torch.optim.Adam(self.net.decoder.parameters(), lr=self.config.lr),
            self.config.encoder_updates,
            self.config.decoder_updates,
            self._enter_phase,
        )
        return self.optimizer

    def _enter_phase(self, phase: str) -> None:
        """Freeze the part not being trained; an encoder phase starts from a fresh prior."""
        if phase == ENCODER:
            self.net.refresh_prior()
        self.net.encoder.requires_grad_(phase == ENCODER)
        self.net.decoder.requires_grad_(phase == DECODER)

    def _resume(self, start: Start) -> None:
        super()._resume(start)
        self._enter_phase(self.optimizer.phase)  # the prior from the continued encoder

    def _loss(self, users: np.ndarray) -> torch.Tensor:
        batch = self._rows(users)
        if self.optimizer.phase == ENCODER:
            return self.net(batch, self.config.dropout, self.config.gamma)
        return self.net.decoder_loss(batch)

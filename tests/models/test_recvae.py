import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.stats import norm

from movie_rec.evaluation import recall_at_k, top_k_unseen
from movie_rec.models.autoencoder import HistoryBatch
from movie_rec.models.protocol import FitRun, TrainingData, fitted
from movie_rec.models.recvae import (
    DECODER,
    ENCODER,
    AlternatingOptimizer,
    RecVAE,
    RecVAEConfig,
    RecVAENet,
    composite_prior_log_density,
    recvae_loss,
)
from movie_rec.models.training import TrainConfig
from movie_rec.tuning.studies import validation_recall
from tests.conftest import popular_model

CPU = torch.device("cpu")
SMALL = RecVAEConfig(hidden=32, latent=8, batch_size=64, encoder_updates=2, decoder_updates=1)


def _mixture_log_pdf(z: float, old_mean: float, old_logvar: float) -> float:
    """The composite prior of one latent dimension, written out."""
    return math.log(
        3 / 20 * norm.pdf(z)
        + 15 / 20 * norm.pdf(z, loc=old_mean, scale=math.exp(old_logvar / 2))
        + 2 / 20 * norm.pdf(z, scale=math.exp(5.0))
    )


def test_composite_prior_matches_a_hand_computed_mixture():
    z = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    old_mean = torch.tensor([[0.2, 0.3]], dtype=torch.float64)
    old_logvar = torch.tensor([[-0.5, 0.4]], dtype=torch.float64)
    expected = [_mixture_log_pdf(0.5, 0.2, -0.5), _mixture_log_pdf(-1.0, 0.3, 0.4)]
    got = composite_prior_log_density(z, old_mean, old_logvar)
    np.testing.assert_allclose(got.numpy()[0], expected, rtol=1e-10)


def test_loss_is_nll_plus_history_scaled_kl():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 1.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    z = torch.tensor([[0.3, -0.2], [1.0, 0.5]], dtype=torch.float64)
    mean = torch.tensor([[0.1, 0.0], [0.8, 0.4]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -1.0], [0.5, 0.0]], dtype=torch.float64)
    old_mean, old_logvar = torch.zeros(2, 2).double(), torch.full((2, 2), -0.5).double()
    gamma = 0.01
    expected = 0.0
    for u in range(2):
        log_probs = torch.log_softmax(logits[u], dim=0)
        nll = -(log_probs * x[u]).sum().item()
        log_q = norm.logpdf(z[u].numpy(), mean[u].numpy(), np.exp(logvar[u].numpy() / 2)).sum()
        log_p = sum(_mixture_log_pdf(z[u, d].item(), 0.0, -0.5) for d in range(2))
        expected += nll + gamma * x[u].sum().item() * (log_q - log_p)
    batch = HistoryBatch.from_rows(sp.csr_matrix(x.numpy()), np.arange(2), CPU)
    got = recvae_loss(logits, batch, z, (mean, logvar), (old_mean, old_logvar), gamma)
    assert got.item() == pytest.approx(expected / 2)


def test_the_decoder_loss_gives_the_decoder_the_full_loss_gradient(tiny_data):
    matrix = tiny_data["train_matrix_valid"]
    batch = HistoryBatch.from_rows(matrix, np.arange(20), CPU)
    torch.manual_seed(0)
    net = RecVAENet(matrix.shape[1], hidden=16, latent=4)  # the old encoder differs
    gradients = []
    for loss in (lambda: net(batch, 0.0, gamma=0.5), lambda: net.decoder_loss(batch)):
        net.zero_grad()
        torch.manual_seed(1)  # the same sampled latent
        loss().backward()
        gradients.append([p.grad.clone() for p in net.decoder.parameters()])
    for full, decoder_only in zip(*gradients, strict=True):
        torch.testing.assert_close(decoder_only, full)
    assert net.encoder.head.weight.grad.abs().sum() > 0  # the full loss reaches the encoder


def test_alternating_optimizer_steps_one_part_per_phase():
    encoder, decoder = torch.nn.Linear(3, 2), torch.nn.Linear(2, 3)
    phases = []
    optimizer = AlternatingOptimizer(
        torch.optim.SGD(encoder.parameters(), lr=0.1),
        torch.optim.SGD(decoder.parameters(), lr=0.1),
        encoder_updates=2,
        decoder_updates=1,
        on_phase=phases.append,
    )
    assert len(optimizer.param_groups) == 2
    stepped = []
    for _ in range(6):
        before = [p.detach().clone() for p in (*encoder.parameters(), *decoder.parameters())]
        phase = optimizer.phase
        optimizer.zero_grad(set_to_none=True)
        decoder(encoder(torch.ones(4, 3))).pow(2).sum().backward()  # gradients on both parts
        optimizer.step()
        after = list((*encoder.parameters(), *decoder.parameters()))
        changed = [not torch.equal(b, a) for b, a in zip(before, after, strict=True)]
        expected = [phase == ENCODER] * 2 + [phase == DECODER] * 2
        assert changed == expected
        stepped.append(phase)
    assert stepped == [ENCODER, ENCODER, DECODER] * 2
    assert phases == [ENCODER, DECODER, ENCODER, DECODER, ENCODER]


def _fitted(matrix, updates: int) -> RecVAE:
    train = TrainConfig(max_updates=10, grad_clip=0.0, progress=False)
    return fitted(RecVAE(SMALL), TrainingData(matrix), FitRun(seed=4, train=train, stop_at=updates))


def test_fit_alternates_and_refreshes_the_prior(tiny_data):
    matrix = tiny_data["train_matrix_valid"]
    one, two, three = (_fitted(matrix, n).net for n in (1, 2, 3))
    # update 2 trains the encoder only, update 3 (the decoder phase) the decoder only
    for name, weight in two.decoder.state_dict().items():
        torch.testing.assert_close(weight, one.decoder.state_dict()[name], rtol=0, atol=0)
    assert not torch.equal(two.encoder.head.weight, one.encoder.head.weight)
    for name, weight in three.encoder.state_dict().items():
        torch.testing.assert_close(weight, two.encoder.state_dict()[name], rtol=0, atol=0)
    assert not torch.equal(three.decoder.weight, two.decoder.weight)
    # the prior is the encoder as it was when the current encoder phase began
    torch.testing.assert_close(two.old_encoder.head.weight, one.old_encoder.head.weight)
    assert not torch.equal(two.old_encoder.head.weight, two.encoder.head.weight)
    torch.testing.assert_close(three.old_encoder.head.weight, three.encoder.head.weight)


def test_loss_falls_and_it_beats_most_popular_on_the_sample(sample_data):
    # on tiny_data (240 users) the five-layer encoder only matches popularity (0.27 vs 0.27)
    matrix, answers = sample_data["train_matrix_valid"], sample_data["valid_answers"]
    users = answers["user_idx"].unique()
    config = RecVAEConfig(
        hidden=200, latent=64, lr=3e-3, batch_size=250, encoder_updates=24, decoder_updates=8
    )
    model = RecVAE(config)
    run = FitRun(
        train=TrainConfig(
            max_updates=128, eval_every=32, patience=4, grad_clip=0.0, progress=False
        ),
        evaluate=lambda score_fn: validation_recall(score_fn, matrix, answers, users),
    )
    result = model.fit(TrainingData(matrix), run)
    losses = [record["loss"] for record in result.history]
    assert losses[-1] < losses[0]
    assert result.best_update > 32
    recall = recall_at_k(top_k_unseen(model.score, matrix, 10), answers)["recall@10"]
    popular = recall_at_k(top_k_unseen(popular_model(matrix).score, matrix, 10), answers)
    assert recall == pytest.approx(result.best_score)  # the best update's weights were kept
    assert recall > popular["recall@10"]


def test_same_seed_same_scores_and_state_rebuilds_the_network(tiny_data):
    matrix = tiny_data["train_matrix_full"]
    first, second = _fitted(matrix, 5), _fitted(matrix, 5)
    users = np.arange(10)
    torch.testing.assert_close(first.score(users), second.score(users))
    state = first.state()
    net = RecVAENet(state["n_items"], SMALL.hidden, SMALL.latent)
    net.load_state_dict(state["state_dict"])
    assert RecVAEConfig.from_params(state["hyperparameters"]) == SMALL


def test_invalid_use_is_rejected():
    with pytest.raises(ValueError, match="at least one update"):
        RecVAEConfig(decoder_updates=0)
    with pytest.raises(RuntimeError, match="before fit"):
        RecVAE(SMALL).score(np.array([0]))

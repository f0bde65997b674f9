import numpy as np
import pytest
import scipy.sparse as sp
import torch

from movie_rec.evaluation import recall_at_k, top_k_unseen
from movie_rec.models.autoencoder import HistoryBatch
from movie_rec.models.multivae import (
    MultiVAE,
    MultiVAEConfig,
    MultiVAENet,
    kl_weight,
    multivae_loss,
)
from movie_rec.models.protocol import FitRun, TrainingData, fitted
from movie_rec.models.training import TrainConfig
from movie_rec.tuning.studies import validation_recall
from tests.conftest import popular_model

CPU = torch.device("cpu")
SMALL = MultiVAEConfig(hidden=32, latent=8, batch_size=64, anneal_steps=20)


def test_kl_weight_rises_linearly_to_its_cap():
    config = MultiVAEConfig(beta_cap=0.2, anneal_steps=100)
    assert kl_weight(0, config) == 0.0
    assert kl_weight(50, config) == pytest.approx(0.1)
    assert kl_weight(100, config) == pytest.approx(0.2)
    assert kl_weight(10_000, config) == pytest.approx(0.2)


def test_loss_is_multinomial_likelihood_plus_weighted_kl():
    logits = torch.tensor([[1.0, 2.0, 0.5]])
    x = torch.tensor([[1.0, 1.0, 0.0]])
    mu, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, 0.0]])
    log_probs = torch.log_softmax(logits, dim=1)
    nll = -(log_probs[0, 0] + log_probs[0, 1])
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum()
    batch = HistoryBatch.from_rows(sp.csr_matrix(x.numpy()), np.arange(1), CPU)
    assert multivae_loss(logits, batch, mu, logvar, 0.3).item() == pytest.approx(
        (nll + 0.3 * kl).item()
    )


def test_eval_mode_decodes_the_mean_deterministically():
    net = MultiVAENet(n_items=10, hidden=8, latent=4, dropout=0.5).eval()
    rows = sp.csr_matrix(np.random.default_rng(0).random((5, 10)) < 0.4, dtype=np.float32)
    x = HistoryBatch.from_rows(rows, np.arange(5), CPU)
    torch.testing.assert_close(net(x)[0], net(x)[0])
    torch.testing.assert_close(net(x)[0], net.decode_mean(x))
    net.train()
    assert not torch.equal(net(x)[0], net(x)[0])


def test_loss_falls_and_it_beats_most_popular_on_the_sample(sample_data):
    matrix, answers = sample_data["train_matrix_valid"], sample_data["valid_answers"]
    users = answers["user_idx"].unique()
    config = MultiVAEConfig(hidden=200, latent=64, lr=3e-3, anneal_steps=200, batch_size=250)
    model = MultiVAE(config)
    run = FitRun(
        train=TrainConfig(max_updates=96, eval_every=8, patience=12, progress=False),
        evaluate=lambda score_fn: validation_recall(score_fn, matrix, answers, users),
    )
    result = model.fit(TrainingData(matrix), run)
    losses = [record["loss"] for record in result.history]
    assert losses[-1] < losses[0]
    assert result.best_update > 8  # better than after the first pass
    recall = recall_at_k(top_k_unseen(model.score, matrix, 10), answers)["recall@10"]
    popular = recall_at_k(top_k_unseen(popular_model(matrix).score, matrix, 10), answers)
    assert recall == pytest.approx(result.best_score)  # the best update's weights were kept
    assert recall > popular["recall@10"]


def test_same_seed_same_scores_and_fixed_updates_without_validation(tiny_data):
    matrix = tiny_data["train_matrix_valid"]
    run = FitRun(seed=5, train=TrainConfig(max_updates=7, eval_every=3, progress=False))
    first, second = MultiVAE(SMALL), MultiVAE(SMALL)
    result = first.fit(TrainingData(matrix), run)
    second.fit(TrainingData(matrix), run)
    users = np.arange(10)
    torch.testing.assert_close(first.score(users), second.score(users))
    assert result.updates == 7 and result.best_update == 7
    assert first.updates == 7


def test_stop_at_ends_the_final_fit_where_validation_kept_it(tiny_data):
    matrix = tiny_data["train_matrix_full"]
    model = MultiVAE(SMALL)
    run = FitRun(seed=2, train=TrainConfig(max_updates=50, progress=False), stop_at=6)
    result = model.fit(TrainingData(matrix), run)
    assert result.updates == 6 and model.updates == 6
    assert model.beta == pytest.approx(kl_weight(6, SMALL))


def test_state_holds_what_rebuilds_the_network(tiny_data):
    run = FitRun(seed=1, train=TrainConfig(max_updates=2, progress=False))
    model = fitted(MultiVAE(SMALL), TrainingData(tiny_data["train_matrix_full"]), run)
    state = model.state()
    net = MultiVAENet(state["n_items"], SMALL.hidden, SMALL.latent, SMALL.dropout)
    net.load_state_dict(state["state_dict"])
    assert state["hyperparameters"]["latent"] == SMALL.latent

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from movie_rec.evaluation import check_candidates, recall_at_k, top_k_unseen
from movie_rec.models import ease, matrices
from movie_rec.models.ease import EASE, EASEConfig, ItemWeights, ease_weights
from movie_rec.models.matrices import gram_matrix
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.models.user_ease import UserItemEASE, UserItemEASEConfig
from tests.conftest import popular_model

CPU = torch.device("cpu")


def _random_matrix(n_users: int = 40, n_items: int = 12, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < 0.3).astype(np.float32))


def _dense_ease(x: np.ndarray, diagonal: np.ndarray) -> np.ndarray:
    precision = np.linalg.inv(x.T @ x + np.diag(diagonal))
    return np.eye(x.shape[1]) - precision / np.diag(precision)[None, :]


def test_weights_equal_a_direct_dense_solve():
    matrix, lam = _random_matrix(), 7.5
    x = matrix.toarray().astype(np.float64)
    expected = _dense_ease(x, np.full(x.shape[1], lam))
    model = fitted(EASE(EASEConfig(lam=lam)), TrainingData(matrix))
    weights = model.weights.numpy()
    np.testing.assert_allclose(weights, expected, atol=1e-5)
    assert np.all(np.diag(weights) == 0)
    users = np.array([0, 3, 39])
    np.testing.assert_allclose(model.score(users).numpy(), x[users] @ expected, atol=1e-4)


def test_edlae_emphasis_adds_p_over_one_minus_p_times_the_popularity_to_the_diagonal():
    matrix, lam, p = _random_matrix(seed=3), 4.0, 0.3
    x = matrix.toarray().astype(np.float64)
    popularity = np.diag(x.T @ x)
    gram = gram_matrix(matrix, CPU)
    expected = _dense_ease(x, lam + p / (1 - p) * popularity)
    np.testing.assert_allclose(ease_weights(gram, lam, p).numpy(), expected, atol=1e-5)
    plain = _dense_ease(x, np.full(x.shape[1], lam))
    np.testing.assert_allclose(ease_weights(gram, lam, 0.0).numpy(), plain, atol=1e-5)
    assert not np.allclose(expected, plain, atol=1e-3)  # the emphasis does change the weights


def test_float64_factorisation_matches_the_dense_solve_too():
    matrix, lam = _random_matrix(seed=4), 2.0
    x = matrix.toarray().astype(np.float64)
    weights = ease_weights(gram_matrix(matrix, CPU), lam, dtype=torch.float64)
    assert weights.dtype == torch.float32 and weights.is_contiguous()
    np.testing.assert_allclose(weights.numpy(), _dense_ease(x, np.full(12, lam)), atol=1e-6)


def test_gram_is_the_item_cooccurrence_matrix_for_short_and_long_histories():
    rng = np.random.default_rng(1)
    density = np.repeat([0.01, 0.02, 0.5], 30)[:, None]  # 1/32 of 64 items is 2 per user
    matrix = sp.csr_matrix((rng.random((90, 64)) < density).astype(np.float32))
    lengths = np.diff(matrix.indptr)
    assert (lengths > 2).any() and (lengths <= 2).any()
    gram = gram_matrix(matrix, CPU)
    assert gram.dtype == torch.float32
    np.testing.assert_array_equal(gram.numpy(), (matrix.T @ matrix).toarray())


@pytest.mark.parametrize("int8", [True, False])
def test_both_dense_gram_kernels_count_cooccurrences_exactly(int8):
    matrix = sp.csr_matrix((np.random.default_rng(2).random((70, 30)) < 0.4).astype(np.float32))
    gram = matrices._dense_gram(matrix, int8=int8)
    assert gram.dtype == torch.float32
    np.testing.assert_array_equal(gram.numpy(), (matrix.T @ matrix).toarray())


def test_gram_of_a_weighted_matrix_is_exact():
    matrix = _random_matrix(seed=5) * 2.5
    np.testing.assert_array_equal(gram_matrix(matrix, CPU).numpy(), (matrix.T @ matrix).toarray())


def test_panelled_product_equals_the_dense_product(monkeypatch):
    monkeypatch.setattr(ease, "PANEL_WIDTH", 5)  # 12 columns: panels of 5, 5 and 2
    rng = np.random.default_rng(6)
    dense = torch.from_numpy(rng.standard_normal((12, 12)).astype(np.float32))
    weights = ItemWeights(dense, CPU)
    assert [panel.shape[1] for panel in weights.panels] == [5, 5, 2]
    rows = _random_matrix(n_users=7, seed=6)
    expected = rows.toarray() @ dense.numpy()
    np.testing.assert_allclose(weights.left_multiply(rows).numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(weights.to_tensor().numpy(), dense.numpy())


def test_larger_lambda_shrinks_the_weights():
    gram = gram_matrix(_random_matrix(seed=2), CPU)
    assert ease_weights(gram, 1000.0).abs().sum() < ease_weights(gram, 1.0).abs().sum()


def test_config_round_trips_and_rejects_invalid_values():
    config = EASEConfig.from_params({"lam": 250.0, "p": 0.2, "unrelated": 1})
    assert config == EASEConfig(250.0, 0.2) and EASEConfig(**config.to_dict()) == config
    with pytest.raises(ValueError, match="positive lambda"):
        EASEConfig(lam=0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        EASEConfig(p=1.0)
    with pytest.raises(ValueError, match="positive lambda"):
        ease_weights(torch.eye(3), 0.0)
    with pytest.raises(RuntimeError, match="before fit"):
        EASE(EASEConfig()).score(np.array([0]))


def test_float32_factorisation_gives_float64_top10_lists(sample_data):
    matrix = sample_data["train_matrix_valid"]
    data = TrainingData(matrix)
    lists = {}
    for dtype in (torch.float32, torch.float64):
        model = fitted(EASE(EASEConfig(lam=400.0), dtype), data)
        lists[dtype] = top_k_unseen(model.score, matrix, 10)
    single, double = lists[torch.float32], lists[torch.float64]
    assert len(double) == matrix.shape[0] * 10
    np.testing.assert_array_equal(single["item_idx"].to_numpy(), double["item_idx"].to_numpy())


def test_beats_most_popular_with_valid_candidates(tiny_data):
    matrix, answers = tiny_data["train_matrix_valid"], tiny_data["valid_answers"]
    candidates = top_k_unseen(
        fitted(EASE(EASEConfig(lam=50.0)), TrainingData(matrix)).score, matrix, 10
    )
    check_candidates(candidates, matrix, 10)
    popular = top_k_unseen(popular_model(matrix).score, matrix, 10)
    assert (
        recall_at_k(candidates, answers)["recall@10"] > recall_at_k(popular, answers)["recall@10"]
    )


def test_trials_sharing_one_gram_score_as_fresh_fits():
    """Tuning fits every trial on one TrainingData, whose Gram matrix is computed once; no
    trial may change it for the next."""
    matrix = _random_matrix(n_users=60, n_items=15, seed=4)
    users = np.arange(matrix.shape[0])
    shared = TrainingData(matrix)
    trials = [
        EASE(EASEConfig(lam=5.0, p=0.3)),
        UserItemEASE(UserItemEASEConfig(item_lam=8.0, user_lam=30.0, user_weight=0.4)),
        EASE(EASEConfig(lam=50.0)),
    ]
    for model in trials:
        fresh = type(model)(model.config)
        np.testing.assert_allclose(
            np.asarray(fitted(model, shared).score(users)),
            np.asarray(fitted(fresh, TrainingData(matrix)).score(users)),
            atol=1e-5,
        )
    assert len(shared._grams) == 1


@pytest.mark.parametrize("order", ["C", "F"])
def test_mirroring_the_lower_triangle_block_by_block_gives_the_symmetric_matrix(monkeypatch, order):
    monkeypatch.setattr(ease, "SYMMETRISE_BLOCK", 3)
    symmetric = np.random.default_rng(1).random((10, 10))
    symmetric += symmetric.T
    lower_only = np.array(np.tril(symmetric) + np.triu(np.full((10, 10), np.nan), 1), order=order)
    np.testing.assert_array_equal(ease.mirror_lower_triangle(lower_only), symmetric)
    spd = symmetric @ symmetric.T + 10 * np.eye(10)
    np.testing.assert_allclose(ease._lapack_inverse(spd.copy()), np.linalg.inv(spd), rtol=1e-10)

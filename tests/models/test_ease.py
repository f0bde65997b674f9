import numpy as np
import pytest
import scipy.sparse as sp
import torch

from movie_rec.evaluation import check_candidates, recall_at_k, top_k_unseen
from movie_rec.models.baselines import MostPopular
from movie_rec.models.ease import EASE, ease_weights, gram_matrix

CPU = torch.device("cpu")


def _random_matrix(n_users: int = 40, n_items: int = 12, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < 0.3).astype(np.float32))


def test_weights_equal_a_direct_dense_solve():
    matrix, lam = _random_matrix(), 7.5
    x = matrix.toarray().astype(np.float64)
    precision = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    expected = np.eye(x.shape[1]) - precision / np.diag(precision)[None, :]
    model = EASE(lam, CPU).fit(matrix)
    weights = model.weights.numpy()
    np.testing.assert_allclose(weights, expected, atol=1e-5)
    assert np.all(np.diag(weights) == 0)
    users = np.array([0, 3, 39])
    np.testing.assert_allclose(model.score(users).numpy(), x[users] @ expected, atol=1e-4)


def test_gram_is_the_item_cooccurrence_matrix():
    matrix = _random_matrix(seed=1)
    gram = gram_matrix(matrix, CPU)
    assert gram.dtype == torch.float64
    np.testing.assert_array_equal(gram.numpy(), (matrix.T @ matrix).toarray())


def test_larger_lambda_shrinks_the_weights():
    gram = gram_matrix(_random_matrix(seed=2), CPU)
    assert ease_weights(gram, 1000.0).abs().sum() < ease_weights(gram, 1.0).abs().sum()


def test_invalid_use_is_rejected():
    with pytest.raises(ValueError, match="positive lambda"):
        ease_weights(torch.eye(3, dtype=torch.float64), 0.0)
    with pytest.raises(RuntimeError, match="before fit"):
        EASE(1.0, CPU).score(np.array([0]))


def test_beats_most_popular_with_valid_candidates(tiny_data):
    matrix, answers = tiny_data["train_matrix_valid"], tiny_data["valid_answers"]
    candidates = top_k_unseen(EASE(50.0, CPU).fit(matrix).score, matrix, 10)
    check_candidates(candidates, matrix, 10)
    popular = top_k_unseen(MostPopular(matrix).score, matrix, 10)
    assert (
        recall_at_k(candidates, answers)["recall@10"] > recall_at_k(popular, answers)["recall@10"]
    )

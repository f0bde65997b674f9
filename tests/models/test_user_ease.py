import numpy as np
import pytest
import scipy.sparse as sp
import torch

from movie_rec.evaluation import check_candidates, recall_at_k, top_k_unseen
from movie_rec.models.ease import EASE, EASEConfig, ItemWeights, regularised_inverse
from movie_rec.models.matrices import gram_matrix
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.models.user_ease import UserItemEASE, UserItemEASEConfig, user_ease_scores
from tests.conftest import popular_model

CPU = torch.device("cpu")


def _random_matrix(n_users: int = 30, n_items: int = 12, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < 0.35).astype(np.float32))


def _dense_user_ease(x: np.ndarray, lam: float) -> np.ndarray:
    """EASE on Xᵀ with the users×users solve: S_u = Σ_{v≠u} C_vu x_v, i.e. S = Cᵀ X."""
    precision = np.linalg.inv(x @ x.T + lam * np.eye(x.shape[0]))
    weights = np.eye(x.shape[0]) - precision / np.diag(precision)[None, :]
    assert np.allclose(np.diag(weights), 0)
    return weights.T @ x


@pytest.mark.parametrize("lam", [0.5, 3.0, 40.0])
def test_woodbury_closed_form_equals_the_dense_users_by_users_solve(lam):
    matrix = _random_matrix()
    x = matrix.toarray().astype(np.float64)
    inverse = regularised_inverse(gram_matrix(matrix, CPU), lam, torch.float64)
    scores = user_ease_scores(matrix, ItemWeights(inverse, CPU), lam)
    np.testing.assert_allclose(scores.numpy(), _dense_user_ease(x, lam), atol=1e-4)


def test_blend_is_the_weighted_sum_of_item_and_user_ease():
    matrix, users = _random_matrix(seed=1), np.array([0, 5, 29])
    x = matrix.toarray().astype(np.float64)
    item = fitted(EASE(EASEConfig(lam=6.0, p=0.2)), TrainingData(matrix)).score(users).numpy()
    user = _dense_user_ease(x, 9.0)[users]

    def blend(weight: float) -> np.ndarray:
        config = UserItemEASEConfig(item_lam=6.0, user_lam=9.0, user_weight=weight, p=0.2)
        return fitted(UserItemEASE(config), TrainingData(matrix)).score(users).numpy()

    np.testing.assert_array_equal(blend(0.0), item)
    np.testing.assert_allclose(blend(1.0), user, atol=1e-4)
    np.testing.assert_allclose(blend(0.3), 0.7 * item + 0.3 * user, atol=1e-4)


def test_config_round_trips_and_rejects_invalid_values():
    config = UserItemEASEConfig.from_params({"item_lam": 500.0, "user_weight": 0.2, "x": 1})
    assert config == UserItemEASEConfig(item_lam=500.0, user_weight=0.2)
    assert UserItemEASEConfig(**config.to_dict()) == config
    with pytest.raises(ValueError, match="user_weight"):
        UserItemEASEConfig(user_weight=1.5)
    with pytest.raises(ValueError, match="positive lambda"):
        UserItemEASEConfig(user_lam=-1.0)
    with pytest.raises(RuntimeError, match="before fit"):
        UserItemEASE(UserItemEASEConfig()).score(np.array([0]))


def test_blend_beats_most_popular_with_valid_candidates(tiny_data):
    matrix, answers = tiny_data["train_matrix_valid"], tiny_data["valid_answers"]
    config = UserItemEASEConfig(item_lam=50.0, user_lam=200.0, user_weight=0.3)
    candidates = top_k_unseen(fitted(UserItemEASE(config), TrainingData(matrix)).score, matrix, 10)
    check_candidates(candidates, matrix, 10)
    popular = top_k_unseen(popular_model(matrix).score, matrix, 10)
    assert (
        recall_at_k(candidates, answers)["recall@10"] > recall_at_k(popular, answers)["recall@10"]
    )

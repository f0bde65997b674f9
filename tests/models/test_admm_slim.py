import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.optimize import nnls

from movie_rec.evaluation import check_candidates, recall_at_k, top_k_unseen
from movie_rec.models.admm_slim import ADMMSLIM, ADMMSLIMConfig, slim_objective
from movie_rec.models.protocol import TrainingData, fitted
from tests.conftest import popular_model


def _random_matrix(n_users: int = 40, n_items: int = 12, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < 0.3).astype(np.float32))


def _constrained_slim(x: np.ndarray, l1: float, l2: float) -> np.ndarray:
    """SLIM column by column as non-negative least squares, item j left out of column j.

    With c ≥ 0 the L1 term is linear, so column j minimises ½cᵀAc − (g_j − λ₁)ᵀc with
    A = G + λ₂I; writing A = LLᵀ that is ½‖Lᵀc − L⁻¹(g_j − λ₁)‖² + const.
    """
    gram = x.T @ x
    n_items = len(gram)
    weights = np.zeros_like(gram)
    for j in range(n_items):
        others = np.arange(n_items) != j
        factor = np.linalg.cholesky(gram[np.ix_(others, others)] + l2 * np.eye(n_items - 1))
        target = np.linalg.solve(factor, gram[others, j] - l1)
        weights[others, j] = nnls(factor.T, target)[0]
    return weights


@pytest.mark.parametrize(("l1", "l2", "rho"), [(0.0, 3.0, 10.0), (2.0, 1.0, 20.0)])
def test_weights_equal_a_direct_constrained_solve(l1, l2, rho):
    matrix = _random_matrix()
    expected = _constrained_slim(matrix.toarray().astype(np.float64), l1, l2)
    config = ADMMSLIMConfig(l1=l1, l2=l2, rho=rho, iterations=300, tolerance=0.0)
    model = fitted(ADMMSLIM(config), TrainingData(matrix))
    weights = model.weights.numpy()
    assert 0 < (expected > 0).mean() < 1  # the non-negativity constraint binds somewhere
    np.testing.assert_allclose(weights, expected, atol=1e-4)
    assert np.all(weights >= 0)
    assert np.all(np.diag(weights) == 0)


def test_objective_from_the_gram_equals_the_direct_one():
    matrix = _random_matrix(seed=1)
    x = matrix.toarray().astype(np.float64)
    weights = np.random.default_rng(2).random((12, 12))
    direct = (
        0.5 * np.sum((x - x @ weights) ** 2)
        + 0.7 * np.abs(weights).sum()
        + 0.5 * 3.0 * np.sum(weights**2)
    )
    gram = torch.from_numpy(x.T @ x)
    assert slim_objective(gram, torch.from_numpy(weights), 0.7, 3.0) == pytest.approx(direct)


def test_objective_falls_and_weights_obey_the_constraints(tiny_data):
    config = ADMMSLIMConfig(tolerance=0.0, track_objective=True)
    model = fitted(ADMMSLIM(config), TrainingData(tiny_data["train_matrix_valid"]))
    history = np.array(model.trace.objective)
    assert len(history) == model.trace.iterations == config.iterations
    assert history[-1] < history[0]
    later = history[5:]
    assert np.all(np.diff(later) <= 1e-6 * later[:-1])
    weights = model.weights.numpy()
    assert np.all(weights >= 0) and np.all(np.diag(weights) == 0)
    assert 0 < model.density < 1


def test_stops_at_the_first_iteration_whose_residuals_are_within_tolerance():
    matrix = _random_matrix(seed=4)
    tolerance = 1e-3
    config = ADMMSLIMConfig(l1=1.0, l2=2.0, rho=20.0, iterations=1000, tolerance=tolerance)
    model = fitted(ADMMSLIM(config), TrainingData(matrix))
    trace = model.trace
    worst = np.maximum(trace.primal, trace.dual)
    assert 1 < trace.iterations < config.iterations
    assert worst[-1] <= tolerance
    assert np.all(worst[:-1] > tolerance)
    assert trace.objective == []  # not tracked by default: it costs a product an iteration
    expected = _constrained_slim(matrix.toarray().astype(np.float64), 1.0, 2.0)
    np.testing.assert_allclose(model.weights.numpy(), expected, atol=2e-2)


def test_zero_tolerance_runs_every_iteration():
    config = ADMMSLIMConfig(l1=1.0, l2=2.0, rho=20.0, iterations=40, tolerance=0.0)
    model = fitted(ADMMSLIM(config), TrainingData(_random_matrix(seed=4)))
    assert model.trace.iterations == 40


def test_scores_are_history_times_weights():
    matrix = _random_matrix(seed=3)
    model = fitted(
        ADMMSLIM(ADMMSLIMConfig(l1=0.5, l2=2.0, rho=10.0, iterations=20)), TrainingData(matrix)
    )
    users = np.array([0, 5, 39])
    expected = matrix[users].toarray() @ model.weights.numpy()
    np.testing.assert_allclose(model.score(users).numpy(), expected, atol=1e-6)


def test_config_round_trip_and_invalid_use():
    config = ADMMSLIMConfig.from_params({"l1": 1.0, "l2": 30.0, "rho": 50.0, "other": 1})
    assert ADMMSLIMConfig.from_params(config.to_dict()) == config
    assert config.iterations == 50
    with pytest.raises(ValueError, match="rho > 0"):
        ADMMSLIMConfig(rho=0.0)
    with pytest.raises(ValueError, match="tolerance"):
        ADMMSLIMConfig(tolerance=-1.0)
    with pytest.raises(RuntimeError, match="before fit"):
        ADMMSLIM(config).score(np.array([0]))


def test_beats_most_popular_with_valid_candidates(tiny_data):
    matrix, answers = tiny_data["train_matrix_valid"], tiny_data["valid_answers"]
    candidates = top_k_unseen(
        fitted(ADMMSLIM(ADMMSLIMConfig()), TrainingData(matrix)).score, matrix, 10
    )
    check_candidates(candidates, matrix, 10)
    popular = top_k_unseen(popular_model(matrix).score, matrix, 10)
    assert (
        recall_at_k(candidates, answers)["recall@10"] > recall_at_k(popular, answers)["recall@10"]
    )

"""Reasons decompose a model's score exactly; a folded-in history scores as a fitted user."""

from __future__ import annotations

import numpy as np
import pytest

from movie_rec.explain import Explainer, can_fold_in, top_unseen
from movie_rec.models.ease import EASE, EASEConfig, history_product, history_terms
from movie_rec.models.markov import Markov, MarkovConfig
from movie_rec.models.protocol import Reason, TrainingData, fitted
from movie_rec.models.sknn import SKNN, SKNNConfig

# B[j, i]: what watching j adds to item i's score
WEIGHTS = np.array(
    [
        [0.0, 0.5, -0.2, 0.1],
        [0.3, 0.0, 0.4, 0.1],
        [0.2, 0.6, 0.0, -0.3],
        [0.0, 0.1, 0.7, 0.0],
    ],
    dtype=np.float32,
)


def _pairs(reasons: list[Reason]) -> list[tuple[int, float]]:
    assert all(reason.kind == "item" for reason in reasons)
    return [(reason.index, reason.contribution) for reason in reasons]


def test_item_item_reasons_are_the_positive_terms_of_the_score_by_hand():
    # a user who watched items 0, 2 and 3: item 1 gets 0.5 + 0.6 + 0.1 = 1.2
    assert _pairs(history_terms(np.array([3, 0, 2]), WEIGHTS, 1)) == [
        (2, pytest.approx(0.6)),
        (0, pytest.approx(0.5)),
        (3, pytest.approx(0.1)),
    ]
    # item 3 for a user of items 1 and 2: 0.1 and -0.3; a negative term is no reason
    assert _pairs(history_terms(np.array([1, 2]), WEIGHTS, 3)) == [(1, pytest.approx(0.1))]


def test_item_item_fold_in_sums_the_history_rows_once_per_item():
    scores = history_product(np.array([0, 2, 2]), WEIGHTS)
    np.testing.assert_allclose(scores, [0.2, 1.1, -0.2, -0.2], rtol=1e-6)


def test_ties_in_reasons_go_to_the_smaller_index():
    weights = np.array([[0, 1.0], [0, 1.0], [0, 0]], dtype=np.float32)
    assert _pairs(history_terms(np.array([1, 0]), weights, 1)) == [(0, 1.0), (1, 1.0)]


def test_top_unseen_skips_the_history():
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0], dtype=np.float32)
    assert top_unseen(scores, np.array([0, 2]), k=2).tolist() == [1, 3]


@pytest.fixture(scope="module")
def models(tiny_data):
    data = TrainingData(tiny_data["train_matrix_full"], tiny_data["interactions"])
    ease = fitted(EASE(EASEConfig(lam=30.0)), data)
    markov = fitted(Markov(MarkovConfig(k=4, lags=2)), data)
    sknn = fitted(SKNN(SKNNConfig(neighbours=20)), data)
    return data.matrix, data.sequences, ease, markov, sknn


def history_of(sequences, user: int) -> np.ndarray:
    return sequences.items[sequences.offsets[user] : sequences.offsets[user + 1]]


def test_a_folded_in_history_scores_as_the_fitted_user(models):
    matrix, sequences, ease, markov, _ = models
    for user in (0, 7, matrix.shape[0] - 1):
        history = history_of(sequences, user)
        np.testing.assert_allclose(
            ease.history_scores(history), ease.score(np.array([user]))[0].numpy(), atol=1e-5
        )
        np.testing.assert_allclose(
            markov.history_scores(history), markov.score(np.array([user]))[0], atol=1e-6
        )


def test_ease_reasons_are_the_positive_terms_of_a_fitted_users_score(models):
    _, sequences, ease, _, _ = models
    user = 3
    history = history_of(sequences, user)
    weights = ease.weights.numpy()
    item = int(np.argmax(ease.score(np.array([user]))[0].numpy()))
    every_term = _pairs(ease.explain(item, history))
    positives = weights[history, item][weights[history, item] > 0]
    assert sum(share for _, share in every_term) == pytest.approx(float(positives.sum()), rel=1e-5)
    assert all(j in set(history.tolist()) for j, _ in every_term)


def test_markov_reasons_of_a_fitted_users_history_sum_to_its_score(models):
    _, sequences, _, markov, _ = models
    user = 5
    history = history_of(sequences, user)
    scores = markov.score(np.array([user]))[0] - markov.config.tie_break * markov.popularity
    for item in np.argsort(-scores)[:5]:
        reasons = _pairs(markov.explain(int(item), history))
        assert [share for _, share in reasons] == sorted((s for _, s in reasons), reverse=True)
        assert set(j for j, _ in reasons) <= set(history[-markov.config.k :].tolist())
        assert sum(s for _, s in reasons) == pytest.approx(float(scores[item]), rel=1e-5)


def test_the_explainer_names_items_or_neighbours(models):
    _, sequences, ease, markov, sknn = models
    user = 2
    history = history_of(sequences, user)
    item = int(np.argmax(sknn.score(np.array([user]))[0]))
    neighbours = Explainer(sknn, top=2).reasons(item, history, user)
    assert [r.kind for r in neighbours] == ["user"] * len(neighbours)
    assert neighbours == sknn.explain(item, history, user)[:2]
    assert sknn.explain(item, history) == []  # no fitted user: no neighbours
    assert all(r.kind == "item" for r in Explainer(ease).reasons(item, history))
    assert can_fold_in(ease) and can_fold_in(markov) and not can_fold_in(sknn)
    with pytest.raises(TypeError, match="cannot score a new history"):
        Explainer(sknn).scores(history)

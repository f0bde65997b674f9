"""Reasons decompose a model's score exactly; a folded-in history scores as a fitted user."""

from __future__ import annotations

import numpy as np
import pytest

from movie_rec.explain import (
    Explainer,
    Reason,
    can_fold_in,
    ease_reasons,
    ease_scores,
    history_scores,
    markov_reasons,
    top_unseen,
)
from movie_rec.models.ease import EASE, EASEConfig
from movie_rec.models.markov import Markov, MarkovConfig
from movie_rec.models.protocol import TrainingData, fitted
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


def test_ease_reasons_are_the_largest_positive_terms_of_the_score_by_hand():
    # a user who watched items 0, 2 and 3: item 1 gets 0.5 + 0.6 + 0.1 = 1.2
    assert ease_reasons(np.array([3, 0, 2]), WEIGHTS, 1, top=2) == [
        (2, pytest.approx(0.6)),
        (0, pytest.approx(0.5)),
    ]
    assert ease_reasons(np.array([3, 0, 2]), WEIGHTS, 1, top=5) == [
        (2, pytest.approx(0.6)),
        (0, pytest.approx(0.5)),
        (3, pytest.approx(0.1)),
    ]
    # item 3 for a user of items 1 and 2: 0.1 and -0.3; a negative term is no reason
    assert ease_reasons(np.array([1, 2]), WEIGHTS, 3) == [(1, pytest.approx(0.1))]


def test_ease_scores_sum_the_history_rows_once_per_item():
    scores = ease_scores(np.array([0, 2, 2]), WEIGHTS)
    np.testing.assert_allclose(scores, [0.2, 1.1, -0.2, -0.2], rtol=1e-6)


def test_ties_in_reasons_go_to_the_smaller_index():
    weights = np.array([[0, 1.0], [0, 1.0], [0, 0]], dtype=np.float32)
    assert ease_reasons(np.array([1, 0]), weights, 1) == [(0, 1.0), (1, 1.0)]


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
            history_scores(ease, history), ease.score(np.array([user]))[0].numpy(), atol=1e-5
        )
        np.testing.assert_allclose(
            history_scores(markov, history), markov.score(np.array([user]))[0], atol=1e-6
        )


def test_ease_reasons_sum_to_the_score_of_a_fitted_user(models):
    _, sequences, ease, _, _ = models
    user = 3
    history = history_of(sequences, user)
    weights = ease.weights.numpy()
    item = int(np.argmax(ease.score(np.array([user]))[0].numpy()))
    every_term = ease_reasons(history, weights, item, top=len(history))
    positives = weights[history, item][weights[history, item] > 0]
    assert sum(share for _, share in every_term) == pytest.approx(float(positives.sum()), rel=1e-5)
    assert all(j in set(history.tolist()) for j, _ in every_term)


def test_markov_reasons_of_a_history_match_the_models_reasons(models):
    _, sequences, _, markov, _ = models
    user = 5
    history = history_of(sequences, user)
    for item in np.argsort(-markov.score(np.array([user]))[0])[:5]:
        ours = markov_reasons(history, markov, int(item), top=10)
        theirs = markov.reasons(user, int(item))
        assert [j for j, _ in ours] == [j for j, _ in theirs]
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5)


def test_the_explainer_names_items_or_neighbours(models):
    _, sequences, ease, markov, sknn = models
    user = 2
    history = history_of(sequences, user)
    item = int(np.argmax(sknn.score(np.array([user]))[0]))
    neighbours = Explainer(sknn, top=2).reasons(item, history, user)
    assert [r.kind for r in neighbours] == ["user"] * len(neighbours)
    assert neighbours == [Reason("user", j, s) for j, s in sknn.reasons(user, item)[:2]]
    assert all(r.kind == "item" for r in Explainer(ease).reasons(item, history))
    assert can_fold_in(ease) and can_fold_in(markov) and not can_fold_in(sknn)
    with pytest.raises(TypeError, match="cannot score a new history"):
        history_scores(sknn, history)

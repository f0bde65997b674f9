"""The shipped sample has structure models can learn (docs/results.md, "The synthetic data").

Targets from the real data: a decayed transition model from the last 3 items beats EASE
on the held-out last items by about a third, EASE recalls the randomly dropped items about
4x better, and the most-watched movie is seen by 63% of users (19,699 of 31,360).
"""

import numpy as np
import pytest

from movie_rec.evaluation import recall_at_k, top_k_unseen
from movie_rec.models.ease import EASE, EASEConfig
from movie_rec.models.markov import Markov, MarkovConfig
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.models.sequences import user_sequences
from tests.conftest import popular_model

CLEAR_MARGIN = 1.3  # at least 30% better than most-popular
EASE_LAMBDAS = (50.0, 100.0, 200.0, 400.0, 800.0)


def _recall(scorer, data):
    candidates = top_k_unseen(scorer.score, data["train_matrix_valid"], k=10)
    return recall_at_k(candidates, data["valid_answers"])


@pytest.fixture(scope="module")
def transition_recall(sample_data) -> dict[str, float]:
    matrix = sample_data["train_matrix_valid"]
    sequences = user_sequences(sample_data["split_train"], matrix.shape[0])
    config = MarkovConfig(k=3, lags=3, lag_decay=0.5, recency_decay=0.7)
    return _recall(
        fitted(Markov(config), TrainingData.of_sequences(sequences, matrix.shape[1])), sample_data
    )


@pytest.fixture(scope="module")
def ease_recall(sample_data) -> dict[str, float]:
    """EASE with the λ of a small grid that scores best overall."""
    matrix = sample_data["train_matrix_valid"]
    data = TrainingData(matrix)  # its Gram matrix is computed once, for every λ
    results = [
        _recall(fitted(EASE(EASEConfig(lam=lam)), data), sample_data) for lam in EASE_LAMBDAS
    ]
    return max(results, key=lambda metrics: metrics["recall@10"])


def test_ease_beats_popularity_on_random_items(sample_data, ease_recall):
    popular = _recall(popular_model(sample_data["train_matrix_valid"]), sample_data)
    assert ease_recall["recall@10_random"] > CLEAR_MARGIN * popular["recall@10_random"]


def test_last_item_transition_beats_popularity_on_last_items(sample_data):
    matrix = sample_data["train_matrix_valid"]
    sequences = user_sequences(sample_data["split_train"], matrix.shape[0])
    popular = _recall(popular_model(matrix), sample_data)
    transition = _recall(
        fitted(
            Markov(MarkovConfig(k=1, lags=1)), TrainingData.of_sequences(sequences, matrix.shape[1])
        ),
        sample_data,
    )
    assert transition["recall@10_last"] > CLEAR_MARGIN * popular["recall@10_last"]


def test_ease_beats_popularity(sample_data, ease_recall):
    popular = _recall(popular_model(sample_data["train_matrix_valid"]), sample_data)
    assert ease_recall["recall@10"] > CLEAR_MARGIN * popular["recall@10"]


def test_transition_model_beats_ease_on_last_items(transition_recall, ease_recall):
    assert transition_recall["recall@10_last"] >= 1.25 * ease_recall["recall@10_last"]


def test_ease_recalls_random_items_three_times_better(transition_recall, ease_recall):
    assert ease_recall["recall@10_random"] >= 3.0 * transition_recall["recall@10_random"]


def test_most_watched_movie_is_seen_by_55_to_70_percent_of_users(sample_data):
    matrix = sample_data["train_matrix_full"]
    watchers = np.asarray((matrix > 0).sum(axis=0)).ravel()
    assert 0.55 <= watchers.max() / matrix.shape[0] <= 0.70

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movie_rec.models.baselines import ItemCooccurrence
from movie_rec.models.markov import Markov, MarkovConfig
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.models.sequences import user_sequences
from tests.conftest import popular_model


def test_sequences_and_transitions_on_a_hand_example():
    inter = pd.DataFrame(
        {"user_idx": [1, 0, 0, 0, 1], "item_idx": [2, 0, 1, 2, 0], "time": [5, 1, 2, 3, 9]}
    )
    seqs = user_sequences(inter, n_users=3)
    assert seqs.of(0).tolist() == [0, 1, 2] and seqs.of(1).tolist() == [2, 0]
    assert seqs.last_items().tolist() == [2, 0, -1]
    model = fitted(
        Markov(MarkovConfig(k=1, lags=1)), TrainingData.of_sequences(seqs, 3)
    )  # the last item's followers
    # transitions: 0->1, 1->2, 2->0 ; user 1 ended on 0 -> item 1 is the top
    np.testing.assert_array_equal(model.transitions.toarray(), [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    assert model.score(np.array([1])).argmax() == 1
    np.testing.assert_array_equal(model.score(np.array([2])), [[0, 0, 0]])  # no history


def test_popularity_and_cooccurrence_scores():
    matrix = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0]], dtype=np.float32))
    np.testing.assert_array_equal(popular_model(matrix).score(np.array([0]))[0], [3, 2, 1])
    cooc = ItemCooccurrence(matrix).score(np.array([1]))[0]
    # user 1 has items 0 and 2: item 1 co-occurs with 0 twice and with 2 never
    np.testing.assert_array_equal(cooc, [1, 2, 1])

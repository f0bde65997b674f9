import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from movie_rec.evaluation import recall_at_k, top_k_unseen
from movie_rec.models.markov import Markov, MarkovConfig, recent_positions, transition_matrix
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.models.sequences import UserSequences, user_sequences
from tests.conftest import popular_model

N_ITEMS = 5


def hand_sequences() -> UserSequences:
    """u0: 0 1 2 · u1: 1 2 0 3 · u2: 2 0 · u3: nothing."""
    return UserSequences(
        items=np.array([0, 1, 2, 1, 2, 0, 3, 2, 0]), offsets=np.array([0, 3, 7, 9, 9])
    )


# lag 1 (weight 1): 0→1, 1→2 | 1→2, 2→0, 0→3 | 2→0 ; lag 2 (weight 0.5): 0→2 | 1→0, 2→3
# row 0: 1, 0.5, 1 over items 1, 2, 3; row 1: 0.5 to 0, 2 to 2; row 2: 2 to 0, 0.5 to 3
EXPECTED_T = np.array(
    [
        [0.0, 0.4, 0.2, 0.4, 0.0],
        [0.2, 0.0, 0.8, 0.0, 0.0],
        [0.8, 0.0, 0.0, 0.2, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
    ]
)


def hand_model(**overrides) -> Markov:
    params = {"k": 2, "lags": 2, "lag_decay": 0.5, "recency_decay": 0.5, "tie_break": 0.0}
    return fitted(
        Markov(MarkovConfig(**{**params, **overrides})),
        TrainingData.of_sequences(hand_sequences(), N_ITEMS),
    )


def test_transition_matrix_counts_decayed_lags_and_normalises_rows():
    transitions = transition_matrix(hand_sequences(), N_ITEMS, lags=2, lag_decay=0.5)
    np.testing.assert_allclose(transitions.toarray(), EXPECTED_T, atol=1e-7)
    first_order = transition_matrix(hand_sequences(), N_ITEMS, lags=1, lag_decay=0.5).toarray()
    np.testing.assert_allclose(first_order[0], [0, 0.5, 0, 0.5, 0])  # 0→1 and 0→3 once each
    np.testing.assert_allclose(first_order[2], [1, 0, 0, 0, 0])  # 2→0 twice


def test_transition_matrix_equals_a_loop_over_every_user_and_lag():
    rng = np.random.default_rng(5)
    lengths = rng.integers(0, 12, size=30)
    sequences = UserSequences(
        items=rng.integers(0, 9, size=int(lengths.sum())), offsets=np.r_[0, np.cumsum(lengths)]
    )
    counts = np.zeros((9, 9))
    for user in range(sequences.n_users):
        history = sequences.of(user)
        for lag in range(1, 8):
            for source, target in zip(history[:-lag], history[lag:], strict=True):
                counts[source, target] += 0.7 ** (lag - 1)
    sums = counts.sum(axis=1, keepdims=True)
    expected = np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)
    got = transition_matrix(sequences, 9, lags=7, lag_decay=0.7)
    np.testing.assert_allclose(got.toarray(), expected, rtol=1e-6)
    assert got.dtype == np.float32 and got.nnz == (counts > 0).sum()


def test_lag_decay_weights_the_longer_jumps():
    no_long_jumps = transition_matrix(hand_sequences(), N_ITEMS, lags=2, lag_decay=0.0)
    np.testing.assert_allclose(
        no_long_jumps.toarray(), transition_matrix(hand_sequences(), N_ITEMS, 1, 0.5).toarray()
    )
    flat = transition_matrix(hand_sequences(), N_ITEMS, lags=2, lag_decay=1.0).toarray()
    np.testing.assert_allclose(flat[0], [0, 1 / 3, 1 / 3, 1 / 3, 0])  # 0→1, 0→3, 0→2 alike


def test_last_k_items_vote_with_recency_weights():
    model = hand_model()
    scores = model.score(np.array([0, 1, 2, 3]))
    assert scores.dtype == np.float32 and scores.shape == (4, N_ITEMS)
    t = EXPECTED_T
    np.testing.assert_allclose(scores[0], t[2] + 0.5 * t[1], atol=1e-6)  # u0 ends 1, 2
    np.testing.assert_allclose(scores[1], t[3] + 0.5 * t[0], atol=1e-6)  # u1 ends 0, 3
    np.testing.assert_allclose(scores[2], t[0] + 0.5 * t[2], atol=1e-6)  # u2 ends 2, 0
    np.testing.assert_array_equal(scores[3], np.zeros(N_ITEMS))  # empty history
    deeper = hand_model(k=3).score(np.array([1]))[0]  # item 2 joins with weight 0.25
    np.testing.assert_allclose(deeper, t[3] + 0.5 * t[0] + 0.25 * t[2], atol=1e-6)
    np.testing.assert_allclose(deeper, [0.2, 0.2, 0.1, 0.25, 0.0], atol=1e-6)


def test_recent_positions_take_the_last_items_newest_first():
    rows, ages, positions = recent_positions(hand_sequences(), np.array([1, 3, 2]), 3)
    assert rows.tolist() == [0, 0, 0, 2, 2] and ages.tolist() == [0, 1, 2, 0, 1]
    assert hand_sequences().items[positions].tolist() == [3, 0, 2, 0, 2]
    rows, ages, positions = recent_positions(hand_sequences(), np.array([], dtype=int), 3)
    assert len(rows) == len(ages) == len(positions) == 0


def test_reasons_are_the_votes_and_sum_to_the_score():
    model = hand_model()
    sequences = hand_sequences()

    def reasons(user: int, item: int) -> list[tuple[int, float]]:
        history = sequences.items[sequences.offsets[user] : sequences.offsets[user + 1]]
        return [(r.index, r.contribution) for r in model.explain(item, history, user)]

    shares = reasons(2, 3)  # u2's last items 0 (T = 0.4) and 2 (0.5 · 0.2)
    assert [item for item, _ in shares] == [0, 2]
    assert [share for _, share in shares] == pytest.approx([0.4, 0.1])
    for user in range(3):
        scores = model.score(np.array([user]))[0]
        for item in range(N_ITEMS):
            total = sum(share for _, share in reasons(user, item))
            assert total == pytest.approx(float(scores[item]), abs=1e-6)
    assert reasons(3, 0) == []


def test_tie_break_orders_items_by_popularity_for_users_with_history_only():
    model = hand_model(tie_break=1e-3)
    scores = model.score(np.array([0, 3]))
    popularity = np.array([3, 2, 3, 1, 0]) / 3  # users watching each item, over the maximum
    plain = hand_model().score(np.array([0]))[0]
    np.testing.assert_allclose(scores[0], plain + 1e-3 * popularity, atol=1e-7)
    assert scores[0, 1] > scores[0, 4]  # both without transitions: the watched one first
    np.testing.assert_array_equal(scores[1], np.zeros(N_ITEMS))


def test_first_order_chain_is_the_normalised_count_of_next_items(tiny_data):
    n_users, n_items = tiny_data["train_matrix_valid"].shape
    sequences = user_sequences(tiny_data["split_train"], n_users)
    counts = np.zeros((n_items, n_items), dtype=np.float32)
    for user in range(n_users):
        history = sequences.of(user)
        np.add.at(counts, (history[:-1], history[1:]), 1.0)  # b watched right after a
    sums = counts.sum(axis=1, keepdims=True)
    expected = np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)
    chain = transition_matrix(sequences, n_items, lags=1, lag_decay=0.5).toarray()
    np.testing.assert_allclose(chain, expected, atol=1e-6)


def test_beats_most_popular_on_the_last_items(tiny_data):
    matrix, answers = tiny_data["train_matrix_valid"], tiny_data["valid_answers"]
    sequences = user_sequences(tiny_data["split_train"], matrix.shape[0])
    model = fitted(Markov(MarkovConfig()), TrainingData.of_sequences(sequences, matrix.shape[1]))
    markov = recall_at_k(top_k_unseen(model.score, matrix, 10), answers)
    popular = recall_at_k(top_k_unseen(popular_model(matrix).score, matrix, 10), answers)
    assert markov["recall@10_last"] > popular["recall@10_last"]


def test_config_round_trips_and_rejects_nonsense():
    config = MarkovConfig.from_params({"k": 5, "lag_decay": 0.3, "unrelated": 1})
    assert config == MarkovConfig(k=5, lag_decay=0.3)
    assert MarkovConfig.from_params(config.to_dict()) == config
    with pytest.raises(ValueError, match="at least 1"):
        MarkovConfig(lags=0)
    with pytest.raises(RuntimeError, match="before fit"):
        Markov(MarkovConfig()).score(np.array([0]))


def test_user_sequences_feed_the_model_in_time_order():
    inter = pd.DataFrame({"user_idx": [0, 0, 0], "item_idx": [2, 0, 1], "time": [3, 1, 2]})
    matrix = sp.csr_matrix((1, 3), dtype=np.float32)
    model = fitted(Markov(MarkovConfig(k=1, lags=1, tie_break=0.0)), TrainingData(matrix, inter))
    scores = model.score(np.array([0]))[0]
    np.testing.assert_array_equal(scores, [0, 0, 0])  # last item 2 starts no transition
    assert model.transitions[0, 1] == 1 and model.transitions[1, 2] == 1

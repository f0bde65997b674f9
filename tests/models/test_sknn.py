import numpy as np
import pytest
import torch

from movie_rec.evaluation import recall_at_k, top_k_unseen
from movie_rec.models import sknn
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.models.sequences import UserSequences, user_sequences
from movie_rec.models.sknn import SKNN, SKNNConfig, history_matrix, position_weights
from tests.conftest import popular_model

N_ITEMS = 8


def hand_sequences() -> UserSequences:
    """u0: 0 1 2 · u1: 2 3 · u2: 1 4 · u3: 0 5 · u4: nothing · u5: 1 2 5 6 7."""
    histories = [[0, 1, 2], [2, 3], [1, 4], [0, 5], [], [1, 2, 5, 6, 7]]
    offsets = np.concatenate([[0], np.cumsum([len(h) for h in histories])])
    return UserSequences(np.concatenate(histories).astype(np.int64), offsets.astype(np.int64))


def hand_model(**overrides) -> SKNN:
    params = {"recent": 2, "neighbours": 2, "weighting": "div", "similarity": "dot"}
    return fitted(
        SKNN(SKNNConfig(**{**params, **overrides})),
        TrainingData.of_sequences(hand_sequences(), N_ITEMS),
    )


# u0's query is its last two items: item 2 (weight 1) and item 1 (weight 1/2); item 0 is too old.
# dot (÷ 2 query items): u5 shares both 1.5/2 = 0.75, u1 shares item 2: 0.5, u2 item 1: 0.25,
# u3 only item 0: 0; u0 itself would be 0.75 too. cosine (÷ √1.25 · √|h|): u1 1/√2.5 = 0.632,
# u5 1.5/√6.25 = 0.6, u2 0.316.


def test_query_weights_fall_linearly_with_age():
    ages, lengths = np.array([0, 1, 2, 0, 11]), np.array([3, 3, 3, 1, 12])
    np.testing.assert_allclose(position_weights(ages, lengths, "div"), [1, 2 / 3, 1 / 3, 1, 1 / 12])
    np.testing.assert_allclose(position_weights(ages, lengths, "linear"), [1, 0.9, 0.8, 1, 0])
    np.testing.assert_allclose(position_weights(ages, lengths, "same"), [1, 1, 1, 1, 1])
    query = hand_model().query(np.array([0, 4])).toarray()
    np.testing.assert_allclose(query[0], [0, 0.5, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(query[1], np.zeros(N_ITEMS))


def test_similarities_by_hand():
    sims = hand_model().similarities(np.array([0]))[0]
    np.testing.assert_allclose(sims, [0.75, 0.5, 0.25, 0, 0, 0.75], atol=1e-6)
    cosine = hand_model(similarity="cosine").similarities(np.array([0]))[0]
    expected = np.array([1.5 / np.sqrt(1.25 * 3), 1 / np.sqrt(2.5), 0.5 / np.sqrt(2.5), 0, 0, 0.6])
    np.testing.assert_allclose(cosine, expected, atol=1e-6)


def test_neighbours_and_scores_by_hand():
    ids, sims = hand_model().neighbours_of(np.array([0]))
    assert sorted(zip(ids[0].tolist(), sims[0].tolist(), strict=True)) == [(1, 0.5), (5, 0.75)]
    scores = hand_model().score(np.array([0]))[0]  # 0.75 · h5 + 0.5 · h1
    np.testing.assert_allclose(scores, [0, 0.75, 1.25, 0.5, 0, 0.75, 0.75, 0.75], atol=1e-6)
    # one neighbour: dot picks long u5, cosine the short u1
    assert hand_model(neighbours=1).neighbours_of(np.array([0]))[0].tolist() == [[5]]
    cosine = hand_model(neighbours=1, similarity="cosine")
    assert cosine.neighbours_of(np.array([0]))[0].tolist() == [[1]]
    np.testing.assert_allclose(
        cosine.score(np.array([0]))[0], [0, 0, 1, 1, 0, 0, 0, 0] / np.sqrt(2.5), atol=1e-6
    )


def test_neighbour_decay_weights_their_recent_items():
    scores = hand_model(neighbour_decay=0.5).score(np.array([0]))[0]
    # u5 = 1 2 5 6 7 weighted 1/16 1/8 1/4 1/2 1, u1 = 2 3 weighted 1/2 1
    expected = [0, 0.75 / 16, 0.75 / 8 + 0.5 / 2, 0.5, 0, 0.75 / 4, 0.75 / 2, 0.75]
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    weights = history_matrix(hand_sequences(), N_ITEMS, 0.5)
    np.testing.assert_allclose(weights[1].toarray()[0], [0, 0, 0.5, 1, 0, 0, 0, 0])


def test_the_user_is_never_their_own_neighbour():
    rng = np.random.default_rng(0)
    histories = [rng.choice(20, size=rng.integers(3, 12), replace=False) for _ in range(30)]
    offsets = np.concatenate([[0], np.cumsum([len(h) for h in histories])])
    sequences = UserSequences(np.concatenate(histories), offsets)
    users = np.arange(30)
    for neighbours in (5, 29, 100):
        model = fitted(
            SKNN(SKNNConfig(recent=5, neighbours=neighbours)),
            TrainingData.of_sequences(sequences, 20),
        )
        ids, _ = model.neighbours_of(users)
        assert ids.shape == (30, min(neighbours, 29))
        assert not (ids == users[:, None]).any()
    # with every other user as a neighbour the score is the sum over all the others
    sims = model.similarities(users)
    np.fill_diagonal(sims, 0)
    expected = sims @ history_matrix(sequences, 20, 1.0).toarray()
    np.testing.assert_allclose(model.score(users), expected, rtol=1e-5, atol=1e-6)


def test_empty_history_scores_zero_and_reasons_sum_to_the_score():
    model = hand_model()
    np.testing.assert_array_equal(model.score(np.array([4]))[0], np.zeros(N_ITEMS))

    def reasons(user: int, item: int) -> list[tuple[int, float]]:
        found = model.explain(item, np.empty(0, dtype=np.int64), user)
        assert all(reason.kind == "user" for reason in found)
        return [(reason.index, reason.contribution) for reason in found]

    assert reasons(4, 1) == []
    shares = reasons(0, 2)
    assert [user for user, _ in shares] == [5, 1]
    assert [share for _, share in shares] == pytest.approx([0.75, 0.5])
    for user in range(6):
        scores = model.score(np.array([user]))[0]
        for item in range(N_ITEMS):
            total = sum(share for _, share in reasons(user, item))
            assert total == pytest.approx(float(scores[item]), abs=1e-6)


def test_scores_do_not_depend_on_the_batch(tiny_data):
    matrix = tiny_data["train_matrix_valid"]
    sequences = user_sequences(tiny_data["split_train"], matrix.shape[0])
    model = fitted(SKNN(SKNNConfig()), TrainingData.of_sequences(sequences, matrix.shape[1]))
    users = np.arange(matrix.shape[0])
    together = model.score(users)
    np.testing.assert_allclose(model.score(users[7:9]), together[7:9], atol=1e-6)


def test_beats_most_popular(tiny_data):
    matrix, answers = tiny_data["train_matrix_valid"], tiny_data["valid_answers"]
    sequences = user_sequences(tiny_data["split_train"], matrix.shape[0])
    model = fitted(SKNN(SKNNConfig()), TrainingData.of_sequences(sequences, matrix.shape[1]))
    sknn = recall_at_k(top_k_unseen(model.score, matrix, 10), answers)
    popular = recall_at_k(top_k_unseen(popular_model(matrix).score, matrix, 10), answers)
    assert sknn["recall@10"] > popular["recall@10"]


def test_config_round_trips_and_rejects_nonsense():
    config = SKNNConfig.from_params({"recent": 5, "similarity": "cosine", "unrelated": 1})
    assert config == SKNNConfig(recent=5, similarity="cosine")
    assert SKNNConfig.from_params(config.to_dict()) == config
    with pytest.raises(ValueError, match="weighting"):
        SKNNConfig(weighting="exp")
    with pytest.raises(ValueError, match="neighbour_decay"):
        SKNNConfig(neighbour_decay=0.0)
    with pytest.raises(RuntimeError, match="before fit"):
        SKNN(SKNNConfig()).score(np.array([0]))


def test_scores_do_not_depend_on_the_thread_count(tiny_data, monkeypatch):
    matrix = tiny_data["train_matrix_valid"]
    sequences = user_sequences(tiny_data["split_train"], matrix.shape[0])
    model = fitted(SKNN(SKNNConfig()), TrainingData.of_sequences(sequences, matrix.shape[1]))
    monkeypatch.setattr(sknn, "SIMILARITY_CHUNK", 3)  # many chunks, shared out over threads
    users = np.arange(matrix.shape[0])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = model.score(users)
        torch.set_num_threads(4)
        shared = model.score(users)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(alone, shared)
    assert alone.shape == (matrix.shape[0], matrix.shape[1]) and alone.any()

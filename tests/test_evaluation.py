import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from movie_rec import evaluation
from movie_rec.evaluation import (
    check_candidates,
    per_user_mixed_recall,
    per_user_recall,
    recall_at_k,
    recall_by_mix,
    top_k_unseen,
)


def recs(rows):
    """rows: {user: [items in rank order]}"""
    return pd.DataFrame(
        [(u, i, 1.0 / (r + 1), r + 1) for u, items in rows.items() for r, i in enumerate(items)],
        columns=["user_idx", "item_idx", "score", "rank"],
    )


def answers(rows):
    return pd.DataFrame(
        [(u, i, kind) for u, pairs in rows.items() for i, kind in pairs],
        columns=["user_idx", "item_idx", "kind"],
    )


def test_recall_hand_computed():
    # user 0: 12 answers (8 last-less), 3 hits in top 10 -> 3 / min(10, 12) = 0.3
    a0 = [(i, "random") for i in range(100, 110)] + [(200, "last"), (201, "last")]
    # user 1: 2 answers, 1 hit -> 1 / 2
    a1 = [(5, "last"), (6, "random")]
    # user 2: answers but no recommendations -> 0
    a2 = [(7, "last")]
    truth = answers({0: a0, 1: a1, 2: a2})
    top = recs({0: [100, 101, 200, 1, 2, 3, 4, 5, 6, 7, 102], 1: [5, 9]})
    metrics = recall_at_k(top, truth, k=10)
    assert metrics["recall@10"] == pytest.approx((0.3 + 0.5 + 0.0) / 3)
    # last: user0 1/2, user1 1/1, user2 0/1 ; random: user0 2/10, user1 0/1
    assert metrics["recall@10_last"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert metrics["recall@10_random"] == pytest.approx((0.2 + 0.0) / 2)
    assert metrics["users"] == 3


def test_rank_beyond_k_does_not_count():
    truth = answers({0: [(1, "last")]})
    top = recs({0: [9, 8, 7, 1]})
    assert recall_at_k(top, truth, k=3)["recall@3"] == 0.0
    assert recall_at_k(top, truth, k=4)["recall@4"] == 1.0


def test_few_answers_normalised_by_their_count():
    truth = answers({0: [(1, "random"), (2, "random"), (3, "last")]})
    per_user = per_user_recall(recs({0: [1, 2, 3]}), truth)
    assert per_user.loc[0, "recall"] == 1.0


def test_top_k_excludes_seen_and_matches_brute_force():
    rng = np.random.default_rng(0)
    n_users, n_items, k = 37, 50, 7
    seen = sp.random(n_users, n_items, density=0.3, random_state=1, format="csr")
    seen.data[:] = 1
    scores = rng.normal(size=(n_users, n_items)).astype(np.float32)
    result = top_k_unseen(lambda users: scores[users], seen, k, batch_size=8)
    dense_seen = seen.toarray() > 0
    for user in range(n_users):
        masked = np.where(dense_seen[user], -np.inf, scores[user])
        expected = np.argsort(-masked, kind="stable")[:k]
        got = result[result.user_idx == user].sort_values("rank")
        assert list(got.item_idx) == list(expected)
        assert not dense_seen[user, got.item_idx].any()
    check_candidates(result, seen, k)


def test_top_k_user_with_few_unseen_items_gets_fewer():
    seen = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 0, 0, 0]], dtype=np.float32))
    result = top_k_unseen(lambda users: np.ones((len(users), 4)), seen, k=3)
    assert list(result[result.user_idx == 0].item_idx) == [3]
    assert len(result[result.user_idx == 1]) == 3


def test_top_k_rejects_wrong_score_shape():
    seen = sp.csr_matrix((2, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="shape"):
        top_k_unseen(lambda users: np.ones((len(users), 3)), seen, k=2)


def test_check_candidates_rejects_bad_outputs():
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0]], dtype=np.float32))
    good = recs({0: [1, 2]})
    check_candidates(good, seen, k=2)
    with pytest.raises(ValueError, match="seen"):
        check_candidates(recs({0: [0, 2]}), seen, k=2)
    with pytest.raises(ValueError, match="more than"):
        check_candidates(recs({0: [1, 2, 3]}), seen, k=2)
    with pytest.raises(ValueError, match="repeat"):
        check_candidates(recs({0: [1, 1]}), seen, k=2)
    rising = good.assign(score=[0.1, 0.9])
    with pytest.raises(ValueError, match="increase"):
        check_candidates(rising, seen, k=2)


def test_recall_under_other_last_random_mixes_on_a_hand_example():
    # user 0: 4 last answers (1 found), 6 random answers (3 found); user 1: 2 last (2 found)
    answers = pd.DataFrame(
        {
            "user_idx": [0] * 10 + [1, 1],
            "item_idx": [*range(10), 20, 21],
            "kind": ["last"] * 4 + ["random"] * 6 + ["last", "last"],
        }
    )
    top = pd.DataFrame(
        {
            "user_idx": [0, 0, 0, 0, 1, 1],
            "item_idx": [0, 4, 5, 6, 20, 21],
            "rank": [1, 2, 3, 4, 1, 2],
        }
    )
    per_user = per_user_recall(top, answers).set_index("user_idx")
    # 2 last + 8 random: (2 · 1/4 + 8 · 3/6) / 10 = 0.45; user 1 has last answers only
    mixed = per_user_mixed_recall(per_user, (2, 8))
    assert mixed.loc[0] == pytest.approx(0.45) and mixed.loc[1] == pytest.approx(1.0)
    # the split's own mix gives plain Recall@10: (1 + 3) / 10
    assert per_user_mixed_recall(per_user, (4, 6)).loc[0] == pytest.approx(0.4)
    result = recall_by_mix(top, answers, [(2, 8), (4, 6), (6, 4)])
    six_four = (6 * 0.25 + 4 * 0.5) / 10
    assert result["6/4"] == pytest.approx((six_four + 1.0) / 2)
    assert result["worst"] == pytest.approx(min(result["2/8"], result["4/6"], result["6/4"]))
    assert result["mean"] == pytest.approx((result["2/8"] + result["4/6"] + result["6/4"]) / 3)


@pytest.mark.parametrize("block_users", [2, 4096])
def test_top_k_pairs_is_lexsort_cut_at_k_per_user(monkeypatch, block_users):
    monkeypatch.setattr(evaluation, "TOP_K_BLOCK_USERS", block_users)
    rng = np.random.default_rng(3)
    keys = rng.choice(40 * 30, size=500, replace=False)  # distinct pairs in random order
    users, items = keys // 30, keys % 30
    scores = rng.integers(0, 4, size=len(keys)).astype(np.float64)  # many ties
    order = np.lexsort((items, -scores, users))
    first = np.r_[True, users[order][1:] != users[order][:-1]]
    rank = np.arange(len(order)) - np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    expected = order[rank < 4]

    positions, ranks = evaluation.top_k_pairs(users, items, scores, 4)
    np.testing.assert_array_equal(positions, expected)
    np.testing.assert_array_equal(ranks, rank[rank < 4] + 1)
    in_pair_order = np.argsort(keys)
    sorted_positions, _ = evaluation.top_k_pairs(
        users[in_pair_order], items[in_pair_order], scores[in_pair_order], 4
    )
    np.testing.assert_array_equal(in_pair_order[sorted_positions], expected)
    assert [len(a) for a in evaluation.top_k_pairs(users[:0], items[:0], scores[:0], 4)] == [0, 0]

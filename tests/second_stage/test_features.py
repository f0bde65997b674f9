"""The ranker's candidates and features, each on hand-built data, and the label wall."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from movie_rec import records
from movie_rec.evaluation import top_k_unseen
from movie_rec.models.baselines import ItemCooccurrence
from movie_rec.models.sequences import user_sequences
from movie_rec.parameters import TabularSettings
from movie_rec.second_stage import candidates as rc
from movie_rec.second_stage import features as rf

DAY = rf.SECONDS_PER_DAY
T0 = int(pd.Timestamp("2010-10-01", tz="UTC").timestamp())  # day 92 is 2011-01-01


def _candidates(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_idx", "item_idx", "score"])
    frame["rank"] = frame.groupby("user_idx").cumcount() + 1
    return frame


@pytest.fixture
def hand() -> dict:
    """Three users, five movies, times in days after 2010-10-01 (UTC).

    user 0: 0 (day 0), 1 (day 10), 2 (day 95); user 1: 0 (day 20), 3 (day 100);
    user 2: 0 (day 50). Last activity years: 2011, 2011, 2010.
    """
    history = pd.DataFrame(
        {
            "user_idx": [0, 0, 0, 1, 1, 2],
            "item_idx": [0, 1, 2, 0, 3, 0],
            "time": T0 + DAY * np.array([0, 10, 95, 20, 100, 50]),
        }
    )
    item_features = pd.DataFrame(
        {
            "item_idx": [0, 1, 2, 3, 4],
            "year": pd.array([1990, 2000, None, 2010, 2020], dtype="Int64"),
            "director": pd.array(["d1", "d2", "d1", None, "d2"], dtype="string"),
            "writer": pd.array(["w1", "w1", "w2", "w3", "w2"], dtype="string"),
            "genre_A": np.array([1, 1, 0, 0, 1], dtype=np.int8),
            "genre_B": np.array([0, 1, 1, 1, 0], dtype=np.int8),
        }
    )
    directors = pd.DataFrame(
        {"item_idx": [0, 1, 2, 4, 4], "director": ["d1", "d2", "d1", "d2", "d3"]}
    )
    writers = pd.DataFrame({"item_idx": [0, 1, 2, 3, 4], "writer": ["w1", "w1", "w2", "w3", "w2"]})
    matrix = sp.csr_matrix(
        (np.ones(len(history), dtype=np.float32), (history["user_idx"], history["item_idx"])),
        shape=(3, 5),
    )
    return {
        "history": history,
        "item_features": item_features,
        "directors": directors,
        "writers": writers,
        "matrix": matrix,
    }


def _features(
    hand: dict, pairs: pd.DataFrame, first_stage: dict | None = None, **config
) -> pd.DataFrame:
    return rf.build_features(
        pairs, first_stage or {}, hand["history"], hand["matrix"], hand["item_features"],
        hand["directors"], hand["writers"],
        replace(TabularSettings().features(), **{"recent_days": 10, **config}),
    )  # fmt: skip


# --- candidates ---------------------------------------------------------------------------


def test_candidate_union_takes_top_n_of_each_model_plus_popular_unseen_only():
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    first = _candidates([(0, 1, 0.9), (0, 2, 0.8), (0, 3, 0.7), (1, 4, 0.5)])
    second = _candidates([(0, 2, 0.4), (0, 0, 0.3)])  # item 0 is seen by user 0
    popular = _candidates([(0, 4, 9.0), (1, 0, 9.0)])
    empty = first.iloc[:0]

    union = rc.candidate_union({"a": first, "b": second, "off": empty}, popular, top_n=2, seen=seen)

    assert union.values.tolist() == [[0, 1], [0, 2], [0, 4], [1, 0], [1, 4]]
    only_user_1 = rc.candidate_union({"a": first}, popular, 2, seen, users=np.array([1]))
    assert only_user_1.values.tolist() == [[1, 0], [1, 4]]


def test_popular_candidates_are_the_most_watched_unseen_movies(hand):
    popular = rc.popular_candidates(hand["matrix"], n_popular=2)
    # popularity: item 0 ×3, items 1–3 ×1, item 4 ×0
    assert popular.loc[popular["user_idx"] == 0, "item_idx"].tolist() == [3, 4]
    assert set(popular.loc[popular["user_idx"] == 1, "item_idx"]) == {1, 2}
    assert set(popular.loc[popular["user_idx"] == 2, "item_idx"]) < {1, 2, 3}


def test_candidate_recall_by_source_counts_each_sources_share_and_what_only_it_holds():
    # model a's rank-3 movie 5 is an answer but past top_n = 2: only n_popular holds it
    a = _candidates([(0, 1, 0.9), (0, 2, 0.8), (0, 5, 0.7), (1, 4, 0.5)])
    b = _candidates([(0, 2, 0.9), (1, 3, 0.9)])
    popular = _candidates([(0, 5, 9.0), (1, 7, 9.0)])
    answers = pd.DataFrame(
        {
            "user_idx": [0, 0, 0, 1],
            "item_idx": [1, 2, 5, 3],
            "kind": ["last", "random", "random", "last"],
        }
    )

    # a first-stage model named "popular" keeps its row beside the n_popular source
    table = rc.candidate_recall_by_source({"a": a, "popular": b}, popular, answers, top_n=2)

    assert table.columns.tolist() == records.columns(records.CANDIDATE_CEILING)
    assert table["source"].tolist() == ["a", "popular", "n_popular", "union"]
    columns = ["recall", "recall_last", "recall_random", "adds", "adds_last", "adds_random"]
    expected = [  # answers: (0,1) last, (0,2) random, (0,5) random, (1,3) last
        [2 / 4, 1 / 2, 1 / 2, 1 / 4, 1 / 2, 0 / 2],  # a: (0,1), (0,2); only a has (0,1)
        [2 / 4, 1 / 2, 1 / 2, 1 / 4, 1 / 2, 0 / 2],  # b: (0,2), (1,3); only b has (1,3)
        [1 / 4, 0 / 2, 1 / 2, 1 / 4, 0 / 2, 1 / 2],  # n_popular: (0,5), which only it has
        [4 / 4, 2 / 2, 2 / 2, np.nan, np.nan, np.nan],
    ]
    np.testing.assert_allclose(table[columns].to_numpy(dtype=float), expected)
    assert table["per_user"].tolist() == [3 / 2, 2 / 2, 2 / 2, 6 / 2]


# --- features -----------------------------------------------------------------------------


def test_columns_follow_the_documented_feature_table(hand):
    pairs = pd.DataFrame({"user_idx": [0, 0], "item_idx": [3, 4]})
    features = _features(hand, pairs, {"m": _candidates([(0, 4, 0.5)])})

    expected = rf.feature_names(["m"], (1, 3, 5), ["genre_A", "genre_B"])
    assert rf.feature_columns(features) == expected
    assert expected[:2] == ["m_score", "m_rank"] and "markov_3" in expected
    assert features["genre_B"].tolist() == [1, 0]
    assert rf.first_stage_names(features) == ["m"]


def test_item_popularity_recent_popularity_and_trend(hand):
    pairs = pd.DataFrame({"user_idx": [2, 2, 2, 2], "item_idx": [1, 2, 3, 4]})
    features = _features(hand, pairs)

    assert features["item_pop"].tolist() == [1, 1, 1, 0]
    # the last 10 days are (day 90, day 100]: days 95 and 100, movies 2 and 3
    assert features["item_pop_recent"].tolist() == [0, 1, 1, 0]
    # movie 2: half of the recent interactions, a sixth of all → trend 3
    np.testing.assert_allclose(features["item_trend"], [0, 3, 3, 0], rtol=1e-6)
    assert features["year"].iloc[[0, 2, 3]].tolist() == [2000, 2010, 2020]
    assert np.isnan(features["year"].iloc[1])
    codes = features[["director", "writer"]].to_numpy().tolist()
    assert codes == [[1, 0], [0, 1], [-1, 2], [1, 1]]  # d1,d2 / w1,w2,w3 sorted; -1 = none


def test_popularity_in_the_window_around_the_users_last_interaction(hand):
    pairs = pd.DataFrame({"user_idx": [2, 2, 2, 2], "item_idx": [1, 2, 3, 4]})
    features = _features(hand, pairs, user_window_days=45)
    # user 2's last interaction is day 50: before = [day 5, day 50), after = (day 50, day 95]
    assert features["item_pop_before_user_end"].tolist() == [1, 0, 0, 0]  # movie 1 at day 10
    assert features["item_pop_after_user_end"].tolist() == [0, 1, 0, 0]  # movie 2 at day 95
    wider = _features(hand, pairs, user_window_days=50)
    assert wider["item_pop_after_user_end"].tolist() == [0, 1, 1, 0]  # movie 3 at day 100


def test_user_length_span_and_year_gaps(hand):
    pairs = pd.DataFrame({"user_idx": [0, 1, 2], "item_idx": [4, 4, 3]})
    features = _features(hand, pairs)

    assert features["user_len"].tolist() == [3, 2, 1]
    assert features["user_span_days"].tolist() == [95, 80, 0]
    # last activity: user 0 day 95 and user 1 day 100 are in 2011, user 2 (day 50) in 2010
    assert features["year_minus_last_activity_year"].tolist() == [9, 9, 0]
    # user 0 watched 1990, 2000 and an unknown year: mean 1995, latest 2000
    assert features["year_vs_user_mean"].tolist() == [25, 20, 20]
    assert features["year_vs_user_latest"].tolist() == [20, 10, 20]


def test_genre_share_counts_the_users_history_in_the_movies_genres(hand):
    pairs = pd.DataFrame({"user_idx": [0, 0, 1], "item_idx": [3, 4, 2]})
    features = _features(hand, pairs)
    # user 0 history: items 0 (A), 1 (A,B), 2 (B) → share A = 2/3, B = 2/3
    # user 1 history: items 0 (A), 3 (B) → A = 1/2, B = 1/2; item 2 is B only
    np.testing.assert_allclose(features["user_genre_share"], [2 / 3, 2 / 3, 1 / 2], rtol=1e-6)


def test_director_and_writer_shares_use_every_person_of_the_movie(hand):
    pairs = pd.DataFrame({"user_idx": [0, 1, 2], "item_idx": [4, 4, 1]})
    features = _features(hand, pairs)
    # item 4: directors d2, d3; writer w2. user 0 (3 movies) has item 1 (d2, w1), item 2 (w2)
    np.testing.assert_allclose(features["user_director_share"], [1 / 3, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(features["user_writer_share"], [1 / 3, 0, 1], rtol=1e-6)


def test_seen_before_user_end_compares_first_watch_with_the_users_last_time(hand):
    pairs = pd.DataFrame({"user_idx": [2, 2, 2], "item_idx": [1, 3, 4]})
    features = _features(hand, pairs)
    # user 2's last time is day 50; item 1 first watched at day 10, item 3 at 100, 4 never
    assert features["seen_before_user_end"].tolist() == [1, 0, 0]


def test_markov_features_vote_with_the_users_last_k_movies(hand):
    pairs = pd.DataFrame({"user_idx": [0, 0, 2, 2, 2], "item_idx": [3, 4, 1, 2, 3]})
    features = _features(hand, pairs)
    # transitions (lags 3, lag weight 0.5^(d-1)): 0→1 1, 0→2 0.5, 1→2 1 (user 0), 0→3 1
    # (user 1); row-normalised T[0] = {1: .4, 2: .2, 3: .4}, T[1] = {2: 1}, T[2] = {}.
    # user 0's last three are 2, 1, 0 (votes 1, .7, .49): movie 3 gets .49 · .4 = .196
    # only from k = 3 on; user 2's last movie is 0.
    tol = {"atol": 1e-5}  # Markov adds a 1e-6 popularity tie-break
    np.testing.assert_allclose(features["markov_1"], [0, 0, 0.4, 0.2, 0.4], **tol)
    np.testing.assert_allclose(features["markov_3"], [0.196, 0, 0.4, 0.2, 0.4], **tol)
    np.testing.assert_allclose(features["markov_5"], features["markov_3"])


def test_recent_cooccurrence_decays_with_the_position_from_the_end():
    # u0 watched 0, 1, 2; u1 0, 2; u2 1, 3. cos(1, 3) = 1/√(2·1); cos(2, 3) = cos(0, 3) = 0
    history = pd.DataFrame(
        {"user_idx": [0, 0, 0, 1, 1, 2, 2], "item_idx": [0, 1, 2, 0, 2, 1, 3],
         "time": [1, 2, 3, 1, 2, 1, 2]}
    )  # fmt: skip
    matrix = sp.csr_matrix((np.ones(7, dtype=np.float32), (history.user_idx, history.item_idx)))
    sequences = user_sequences(history, 3)
    pairs = pd.DataFrame({"user_idx": [0, 1, 2], "item_idx": [3, 1, 0]})

    two = rf.recent_cooccurrence(pairs, sequences, matrix, window=2, decay=0.5, batch_size=2)
    # u0: last two are 2 (weight 1) and 1 (0.5) → (0.5 / 1.5) · cos(1, 3)
    # u1: 2 (1), 0 (0.5) with cos(2, 1) = cos(0, 1) = 1/2; u2: 3 (1), 1 (0.5), cos(1, 0) = 1/2
    np.testing.assert_allclose(two, [1 / 3 / np.sqrt(2), 1 / 2, 1 / 6], rtol=1e-6)
    three = rf.recent_cooccurrence(pairs, sequences, matrix, window=3, decay=0.5, batch_size=2)
    assert three[0] == pytest.approx(0.5 / 1.75 / np.sqrt(2), rel=1e-6)


def test_gap_fit_is_the_mean_two_step_path_through_the_movie_over_consecutive_pairs():
    # u0 0→1→2, u1 0→2, u2 3→1→2, u3 0→2→2, u4 only 3. Next-movie transitions:
    # T[0] = {1: 1/3, 2: 2/3}, T[1] = {2: 1}, T[2] = {2: 1}, T[3] = {1: 1}
    items = [[0, 1, 2], [0, 2], [3, 1, 2], [0, 2, 2], [3]]
    history = pd.DataFrame(
        [(u, i, t) for u, seq in enumerate(items) for t, i in enumerate(seq)],
        columns=["user_idx", "item_idx", "time"],
    )
    pairs = pd.DataFrame({"user_idx": [0, 1, 2, 2, 3, 4], "item_idx": [3, 1, 0, 2, 1, 1]})

    fit = rf.gap_fit(pairs, user_sequences(history, 5), n_items=4, batch_size=8)

    # u0/3: no path through 3; u1/1: T[0,1]·T[1,2]; u2/0: none; u2/2: (T[3,2]·T[2,1] +
    # T[1,2]·T[2,2]) / 2; u3/1: (T[0,1]·T[1,2] + T[2,1]·T[1,2]) / 2; u4: no consecutive pair
    np.testing.assert_allclose(fit, [0.0, 1 / 3, 0.0, 0.5, 1 / 6, 0.0], rtol=1e-6)


def test_first_stage_ranks_get_a_sentinel_when_the_model_did_not_rank_the_movie(hand):
    pairs = pd.DataFrame({"user_idx": [0, 0, 1], "item_idx": [3, 4, 4]})
    m = _candidates([(0, 4, 0.5)])
    far = pd.DataFrame({"user_idx": [0, 1], "item_idx": [4, 4], "score": [2.0, 1.0],
                        "rank": [12, 3]})  # fmt: skip
    features = _features(hand, pairs, {"m": m, "far": far})

    assert features["m_score"].iloc[1] == pytest.approx(0.5)
    assert np.isnan(features["m_score"].iloc[0]) and np.isnan(features["m_score"].iloc[2])
    assert features["m_rank"].tolist() == [rf.UNRANKED, 1, rf.UNRANKED]
    assert features["far_rank"].tolist() == [rf.UNRANKED, 12, 3]
    assert features["best_rank"].tolist() == [rf.UNRANKED, 1, 3]
    assert features["n_models"].tolist() == [0, 2, 1]
    assert features["n_models_top10"].tolist() == [0, 1, 1]


def test_no_feature_reads_the_validation_answers(tiny_data):
    matrix = tiny_data["train_matrix_valid"]
    first_stage = {"cooc": top_k_unseen(ItemCooccurrence(matrix).score, matrix, 30)}
    answers = tiny_data["valid_answers"]
    rng = np.random.default_rng(0)
    scrambled = answers.assign(
        item_idx=rng.integers(0, matrix.shape[1], len(answers)),
        kind=rng.permutation(answers["kind"].to_numpy()),
    )

    def features(valid_answers: pd.DataFrame) -> pd.DataFrame:
        users = np.unique(valid_answers["user_idx"].to_numpy())
        popular = rc.popular_candidates(matrix, 5, users)
        pairs = rc.candidate_union(first_stage, popular, 20, matrix, users)
        return rf.build_features(
            pairs, first_stage, tiny_data["split_train"], matrix, tiny_data["item_features"],
            tiny_data["item_directors"], tiny_data["item_writers"], TabularSettings().features(),
        )  # fmt: skip

    original = features(answers)
    assert len(original) > 0
    pd.testing.assert_frame_equal(original, features(scrambled))
    assert (
        rc.label_pairs(original, answers).tolist() != rc.label_pairs(original, scrambled).tolist()
    )


def test_label_pairs_marks_held_out_answers():
    pairs = pd.DataFrame({"user_idx": [0, 0, 1], "item_idx": [1, 2, 1]})
    answers = pd.DataFrame({"user_idx": [0, 1], "item_idx": [2, 5], "kind": ["last", "random"]})
    assert rc.label_pairs(pairs, answers).tolist() == [0, 1, 0]
    pairs = pd.DataFrame({"user_idx": [0, 0, 1, 1], "item_idx": [1, 2, 1, 5]})
    assert rc.label_pairs(pairs, answers).tolist() == [0, 1, 0, 2]  # last 1, random 2

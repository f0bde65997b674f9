"""The LightGBM second stage: candidate union, each feature on hand-built data, the folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from movie_rec.evaluation import check_candidates, recall_at_k, top_k_unseen
from movie_rec.models import ranker
from movie_rec.models.baselines import ItemCooccurrence
from movie_rec.pipelines.tabular_rec import nodes

FAST = ranker.RankerConfig(
    lgbm={"learning_rate": 0.1, "num_leaves": 7, "min_data_in_leaf": 5, "min_data_per_group": 5},
    max_rounds=30,
    early_stopping_rounds=5,
    seed=3,
    num_threads=1,
)


def _candidates(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_idx", "item_idx", "score"])
    frame["rank"] = frame.groupby("user_idx").cumcount() + 1
    return frame


@pytest.fixture
def hand() -> dict:
    """Three users, five movies; times 0..100 so the last 10% of the span is t >= 90."""
    history = pd.DataFrame(
        {
            "user_idx": [0, 0, 0, 1, 1, 2],
            "item_idx": [0, 1, 2, 0, 3, 0],
            "time": [0, 10, 95, 20, 100, 50],
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


def _features(hand: dict, pairs: pd.DataFrame, first_stage: dict | None = None) -> pd.DataFrame:
    return ranker.build_features(
        pairs, first_stage or {}, hand["history"], hand["matrix"], hand["item_features"],
        hand["directors"], hand["writers"], recent_share=0.1,
    )  # fmt: skip


def test_candidate_union_takes_top_n_of_each_model_plus_popular_unseen_only():
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    first = _candidates([(0, 1, 0.9), (0, 2, 0.8), (0, 3, 0.7), (1, 4, 0.5)])
    second = _candidates([(0, 2, 0.4), (0, 0, 0.3)])  # item 0 is seen by user 0
    popular = _candidates([(0, 4, 9.0), (1, 0, 9.0)])
    empty = first.iloc[:0]

    union = ranker.candidate_union(
        {"a": first, "b": second, "off": empty}, popular, top_n=2, seen=seen
    )

    assert union.values.tolist() == [[0, 1], [0, 2], [0, 4], [1, 0], [1, 4]]
    only_user_1 = ranker.candidate_union({"a": first}, popular, 2, seen, users=np.array([1]))
    assert only_user_1.values.tolist() == [[1, 0], [1, 4]]


def test_popular_candidates_are_the_most_watched_unseen_movies(hand):
    popular = ranker.popular_candidates(hand["matrix"], n_popular=2)
    # popularity: item 0 ×3, items 1–3 ×1, item 4 ×0
    assert popular.loc[popular["user_idx"] == 0, "item_idx"].tolist() == [3, 4]
    assert set(popular.loc[popular["user_idx"] == 1, "item_idx"]) == {1, 2}
    assert set(popular.loc[popular["user_idx"] == 2, "item_idx"]) < {1, 2, 3}


def test_item_features_popularity_recent_popularity_year_and_people(hand):
    pairs = pd.DataFrame({"user_idx": [2, 2, 2, 2], "item_idx": [1, 2, 3, 4]})
    features = _features(hand, pairs)

    assert features["item_pop"].tolist() == [1, 1, 1, 0]
    assert features["item_pop_recent"].tolist() == [0, 1, 1, 0]  # times 95 and 100 are >= 90
    assert features["year"].iloc[[0, 2, 3]].tolist() == [2000, 2010, 2020]
    assert np.isnan(features["year"].iloc[1])
    codes = features[["director", "writer"]].to_numpy().tolist()
    assert codes == [[1, 0], [0, 1], [-1, 2], [1, 1]]  # d1,d2 / w1,w2,w3 sorted; -1 = none


def test_user_features_history_length_and_year_gaps(hand):
    pairs = pd.DataFrame({"user_idx": [0, 1], "item_idx": [4, 4]})
    features = _features(hand, pairs)

    assert features["user_len"].tolist() == [3, 2]
    # user 0 watched 1990, 2000 and an unknown year: mean 1995, latest 2000
    assert features["year_vs_user_mean"].tolist() == [25.0, 20.0]
    assert features["year_vs_user_latest"].tolist() == [20.0, 10.0]


def test_genre_share_counts_the_users_history_in_the_movies_genres(hand):
    pairs = pd.DataFrame({"user_idx": [0, 0, 1], "item_idx": [3, 4, 2]})
    features = _features(hand, pairs)
    # user 0 history: items 0 (A), 1 (A,B), 2 (B) → share A = 2/3, B = 2/3
    # user 1 history: items 0 (A), 3 (B) → A = 1/2, B = 1/2; item 2 is B only
    np.testing.assert_allclose(features["user_genre_share"], [2 / 3, 2 / 3, 1 / 2], rtol=1e-6)


def test_same_director_and_writer_use_every_person_of_the_movie(hand):
    pairs = pd.DataFrame({"user_idx": [0, 1, 2], "item_idx": [4, 4, 1]})
    features = _features(hand, pairs)
    # item 4: directors d2, d3; writer w2. user 0 has item 1 (d2, w1) and item 2 (d1, w2)
    assert features["user_same_director"].tolist() == [1, 0, 0]
    assert features["user_same_writer"].tolist() == [1, 0, 1]  # user 2 has item 0 (w1)


def test_seen_before_user_end_compares_first_watch_with_the_users_last_time(hand):
    pairs = pd.DataFrame({"user_idx": [2, 2, 2], "item_idx": [1, 3, 4]})
    features = _features(hand, pairs)
    # user 2's last time is 50; item 1 first watched at 10, item 3 at 100, item 4 never
    assert features["seen_before_user_end"].tolist() == [1, 0, 0]


def test_after_last_item_counts_transitions_from_the_users_latest_movie(hand):
    pairs = pd.DataFrame({"user_idx": [2, 2, 2, 0], "item_idx": [1, 3, 4, 3]})
    features = _features(hand, pairs)
    # transitions: 0→1, 1→2 (user 0) and 0→3 (user 1); user 2's latest is 0, user 0's is 2
    assert features["after_last_item"].tolist() == [1, 1, 0, 0]


def test_first_stage_score_and_rank_are_missing_when_not_proposed(hand):
    pairs = pd.DataFrame({"user_idx": [0, 0], "item_idx": [3, 4]})
    model = _candidates([(0, 4, 0.5)])
    features = _features(hand, pairs, {"m": model})

    assert features["m_score"].iloc[1] == pytest.approx(0.5)
    assert features["m_rank"].tolist()[1] == 1
    assert features[["m_score", "m_rank"]].iloc[0].isna().all()
    assert features["n_models"].tolist() == [0, 1]
    assert ranker.feature_columns(features)[:2] == ["m_score", "m_rank"]
    assert "genre_A" in features and "genre_B" in features


def test_no_feature_reads_the_validation_answers(tiny_data):
    matrix = tiny_data["train_matrix_valid"]
    first_stage = {"ease": top_k_unseen(ItemCooccurrence(matrix).score, matrix, 30)}
    params = {
        "enabled": True,
        "first_stage_models": ["ease"],
        "top_n": 20,
        "n_popular": 5,
        "recent_share": 0.1,
    }
    answers = tiny_data["valid_answers"]
    rng = np.random.default_rng(0)
    scrambled = answers.assign(
        item_idx=rng.integers(0, matrix.shape[1], len(answers)),
        kind=rng.permutation(answers["kind"].to_numpy()),
    )

    def features(valid_answers: pd.DataFrame) -> pd.DataFrame:
        return nodes.build_features_valid(
            tiny_data["split_train"], matrix, tiny_data["item_features"],
            tiny_data["item_directors"], tiny_data["item_writers"], valid_answers, params,
            **first_stage,
        )  # fmt: skip

    original = features(answers)
    assert len(original) > 0
    pd.testing.assert_frame_equal(original, features(scrambled))
    assert (
        not ranker.label_pairs(original, answers).tolist()
        == ranker.label_pairs(original, scrambled).tolist()
    )


def test_first_stage_list_must_match_the_pipeline_wiring(tiny_data):
    with pytest.raises(ValueError, match="FIRST_STAGE_MODELS"):
        nodes.build_features_final(
            tiny_data["interactions"], tiny_data["train_matrix_full"], tiny_data["item_features"],
            tiny_data["item_directors"], tiny_data["item_writers"],
            {"enabled": True, "first_stage_models": ["ease", "multivae"]},
            ease=pd.DataFrame(),
        )  # fmt: skip


def test_label_pairs_marks_held_out_answers():
    pairs = pd.DataFrame({"user_idx": [0, 0, 1], "item_idx": [1, 2, 1]})
    answers = pd.DataFrame({"user_idx": [0, 1], "item_idx": [2, 5], "kind": ["last", "random"]})
    assert ranker.label_pairs(pairs, answers).tolist() == [0, 1, 0]


def test_assign_folds_is_seeded_balanced_and_covers_every_user():
    users = np.repeat(np.arange(23), 3)
    folds = ranker.assign_folds(users, 5, seed=1)
    assert sorted(folds.index) == list(range(23))
    assert folds.value_counts().tolist() == [5, 5, 5, 4, 4]
    pd.testing.assert_series_equal(folds, ranker.assign_folds(users, 5, seed=1))
    assert not folds.equals(ranker.assign_folds(users, 5, seed=2))


def _planted(
    n_users: int = 60, per_user: int = 12, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Ranking rows where the label follows feature ``signal``; ``noise`` carries nothing."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    signal = rng.random(len(users))
    labels = (signal > 0.8).astype(np.int8)
    features = pd.DataFrame(
        {
            "user_idx": users,
            "item_idx": np.tile(np.arange(per_user), n_users),
            "signal": signal,
            "noise": rng.random(len(users)),
            "director": rng.integers(0, 3, len(users)),
            "writer": rng.integers(0, 3, len(users)),
        }
    )
    return features, labels


def test_every_out_of_fold_score_comes_from_a_model_that_never_saw_the_user():
    features, labels = _planted()
    oof = ranker.out_of_fold_scores(features, labels, 4, FAST)

    users = np.unique(features["user_idx"])
    assert sorted(oof.folds.index) == users.tolist()
    for fold, trained_on in enumerate(oof.trained_on):
        scored_here = oof.folds.index[oof.folds == fold]
        assert len(scored_here) > 0
        assert np.intersect1d(trained_on, scored_here).size == 0
        assert set(trained_on) | set(scored_here) == set(users)
    assert np.isfinite(oof.scores).all()
    # the scores of fold 0's users are exactly those of a model trained without them
    held = features["user_idx"].isin(oof.folds.index[oof.folds == 0]).to_numpy()
    without, rounds = ranker.fit_ranker(
        features.loc[~held].reset_index(drop=True), labels[~held], FAST
    )
    np.testing.assert_allclose(
        oof.scores[held], ranker.predict(without, features.loc[held], rounds)
    )


def test_ranker_learns_a_planted_signal_and_is_deterministic():
    features, labels = _planted()
    oof = ranker.out_of_fold_scores(features, labels, 3, FAST)
    candidates = ranker.rank_candidates(features, oof.scores, k=3)
    answers = features.loc[labels == 1, ["user_idx", "item_idx"]].assign(kind="random")
    by_noise = ranker.rank_candidates(features, features["noise"].to_numpy(), k=3)

    assert (
        recall_at_k(candidates, answers)["recall@10"] > recall_at_k(by_noise, answers)["recall@10"]
    )
    np.testing.assert_array_equal(
        oof.scores, ranker.out_of_fold_scores(features, labels, 3, FAST).scores
    )
    booster, rounds = ranker.fit_ranker(features, labels, FAST, rounds=7)
    assert rounds == 7 and booster.current_iteration() == 7
    importance = ranker.feature_importance(booster)
    assert importance["feature"].iloc[0] == "signal"


def test_fit_ranker_ignores_users_without_any_positive():
    features, labels = _planted()
    no_positive_users = features["user_idx"] >= 30
    cleared = np.where(no_positive_users, 0, labels).astype(np.int8)
    booster, _ = ranker.fit_ranker(features, cleared, FAST, rounds=5)
    reference, _ = ranker.fit_ranker(
        features[~no_positive_users], cleared[~no_positive_users], FAST, 5
    )
    sample = features.iloc[:50]
    np.testing.assert_array_equal(
        ranker.predict(booster, sample), ranker.predict(reference, sample)
    )


def test_rank_candidates_orders_by_score_breaks_ties_by_item_and_keeps_k():
    pairs = pd.DataFrame({"user_idx": [1, 1, 1, 0, 0], "item_idx": [5, 3, 9, 2, 1]})
    ranked = ranker.rank_candidates(pairs, np.array([0.5, 0.5, 0.9, 0.1, 0.2]), k=2)
    assert ranked[["user_idx", "item_idx", "rank"]].values.tolist() == [
        [0, 1, 1], [0, 2, 2], [1, 9, 1], [1, 3, 2],
    ]  # fmt: skip
    check_candidates(ranked, sp.csr_matrix((2, 10), dtype=np.float32), k=2)


def test_sample_users_keeps_whole_groups_of_a_seeded_user_sample():
    features, labels = _planted(n_users=20, per_user=4)
    rows, y = ranker.sample_users(features, labels, max_users=5, seed=0)

    assert rows["user_idx"].nunique() == 5
    assert rows.groupby("user_idx").size().eq(4).all()
    np.testing.assert_array_equal(y, labels[features["user_idx"].isin(rows["user_idx"])])
    again, _ = ranker.sample_users(features, labels, max_users=5, seed=0)
    pd.testing.assert_frame_equal(rows, again)
    unchanged, _ = ranker.sample_users(features, labels, max_users=None, seed=0)
    assert len(unchanged) == len(features)

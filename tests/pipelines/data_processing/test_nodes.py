from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from movie_rec.parameters import PreprocessingSettings
from movie_rec.pipelines.data_processing import nodes as dp
from movie_rec.splits import SplitSettings

SPLIT = SplitSettings(n_last=2, n_random=3, min_history=8, seed=11)


def test_duplicates_keep_the_earliest(caplog):
    raw = pd.DataFrame({"user": [1, 1, 1, 2], "item": [5, 6, 5, 5], "time": [30, 10, 20, 1]})
    ratings = dp.deduplicate_ratings(raw)
    assert len(ratings) == 3
    assert ratings.query("user == 1 and item == 5")["time"].item() == 20
    assert "1 duplicate" in caplog.text


def test_interactions_are_dense_and_time_ordered():
    ratings = pd.DataFrame({"user": [90, 7, 90, 7], "item": [500, 3, 3, 500], "time": [5, 9, 1, 2]})
    user_map, item_map = dp.build_id_maps(ratings)
    assert list(user_map["user"]) == [7, 90] and list(item_map["item"]) == [3, 500]
    inter = dp.index_interactions(ratings, user_map, item_map)
    assert inter.values.tolist() == [[0, 1, 2], [0, 0, 9], [1, 0, 1], [1, 1, 5]]


@pytest.mark.parametrize(
    ("title", "year"),
    [("Heat (1995)", 1995), ("Seven (a.k.a. Se7en) (1995) ", 1995), ("Dark, The (2007-2009)", 2007),
     ("No year", None), ("Year in (1999) middle", None)],
)  # fmt: skip
def test_year_from_title(title, year):
    found = dp.year_from_title(pd.Series([title]))[0]
    assert (found is pd.NA and year is None) or found == year


def test_representative_person_is_the_most_watched():
    people = pd.DataFrame(
        {"item_idx": [0, 0, 1, 2, 2], "director": ["nmA", "nmB", "nmB", "nmC", "nmD"]}
    )
    popularity = pd.Series({0: 10, 1: 50, 2: 5})
    chosen = dp.representative_person(people, "director", popularity)
    # nmA: 10, nmB: 10 + 50 = 60 -> movie 0 takes nmB; movie 2: nmC, nmD tie at 5 -> nmC
    assert chosen.to_dict() == {0: "nmB", 1: "nmB", 2: "nmC"}


def test_item_features_fill_years_and_one_hot():
    item_map = pd.DataFrame({"item_idx": [0, 1, 2], "item": [10, 20, 30]})
    interactions = pd.DataFrame({"user_idx": [0, 0, 1], "item_idx": [0, 1, 1], "time": [1, 2, 3]})
    titles = pd.DataFrame(
        {"item": [10, 20, 30, 99], "title": ["A (2001)", "B (1980)", "C", "Z (1950)"]}
    )
    years = pd.DataFrame({"item": [10], "year": [2001]})
    directors = pd.DataFrame({"item": [10, 20, 20], "director": ["nm1", "nm1", "nm2"]})
    writers = pd.DataFrame(columns=["item", "writer"])  # header-only side file
    genres = pd.DataFrame({"item": [10, 10, 20], "genre": ["Drama", "Comedy", "Drama"]})
    options = PreprocessingSettings()  # every step on
    item_directors, item_writers = dp.build_item_people(item_map, directors, writers)
    features = dp.build_item_features(
        item_map, interactions, titles, years, item_directors, item_writers, genres, options
    )
    assert features["year"].tolist()[:2] == [2001, 1980] and features["year"].isna()[2]
    assert features["director"].tolist()[:2] == ["nm1", "nm1"]
    assert features["genre_Drama"].tolist() == [1, 1, 0]
    assert features["genre_Comedy"].tolist() == [1, 0, 0]
    assert features["n_directors"].tolist() == [1, 2, 0]
    assert len(item_directors) == 3 and item_writers.empty
    plain = dp.build_item_features(
        item_map, interactions, titles, years, item_directors, item_writers, genres,
        PreprocessingSettings(
            fill_year_from_title=False, representative_people=False, genres_one_hot=False
        ),
    )  # fmt: skip
    assert plain["year"].isna().sum() == 2
    assert "director" not in plain and not any(c.startswith("genre_") for c in plain)


def _interactions(lengths):
    rows = [(u, i, 1000 + t) for u, n in enumerate(lengths) for t, i in enumerate(range(n))]
    return pd.DataFrame(rows, columns=["user_idx", "item_idx", "time"])


def test_split_holds_out_last_and_random_without_leakage():
    inter = _interactions([20, 8, 7, 30])
    train, answers = dp.split_validation(inter, SPLIT)
    for user, length in enumerate([20, 8, 7, 30]):
        held = answers[answers.user_idx == user]
        kept = train[train.user_idx == user]
        if length < SPLIT.min_history:
            assert held.empty and len(kept) == length
            continue
        last = held[held.kind == "last"]["item_idx"]
        assert sorted(last) == list(range(length - 2, length))
        rand = held[held.kind == "random"]["item_idx"]
        assert len(rand) == 3 and (rand < length - 2).all()
        assert set(kept.item_idx).isdisjoint(held.item_idx)
        assert len(kept) + len(held) == length
    again_train, again_answers = dp.split_validation(inter, SPLIT)
    pd.testing.assert_frame_equal(answers, again_answers)
    pd.testing.assert_frame_equal(train, again_train)
    _, other = dp.split_validation(inter, replace(SPLIT, seed=12))
    assert not other.equals(answers)


def test_split_holds_out_for_a_seeded_sample_of_at_most_max_users():
    lengths = [20, 8, 25, 30, 12, 40, 18, 9]
    inter = _interactions(lengths)
    eligible = {user for user, length in enumerate(lengths) if length >= SPLIT.min_history}
    train, answers = dp.split_validation(inter, replace(SPLIT, max_users=3))
    held_users = set(answers["user_idx"])
    assert len(held_users) == 3 and held_users <= eligible
    for user in eligible - held_users:  # a user left out keeps the whole history
        assert len(train[train.user_idx == user]) == lengths[user]
    again_train, again = dp.split_validation(inter, replace(SPLIT, max_users=3))
    pd.testing.assert_frame_equal(answers, again)
    pd.testing.assert_frame_equal(train, again_train)
    _, every = dp.split_validation(inter, replace(SPLIT, max_users=len(eligible)))
    assert set(every["user_idx"]) == eligible


def test_split_rejects_min_history_that_leaves_nothing():
    with pytest.raises(ValueError, match="min_history"):
        dp.split_validation(_interactions([10]), replace(SPLIT, min_history=5))


def test_interaction_matrix_is_binary_users_by_items():
    user_map = pd.DataFrame({"user_idx": [0, 1, 2], "user": [1, 2, 3]})
    item_map = pd.DataFrame({"item_idx": [0, 1], "item": [1, 2]})
    inter = pd.DataFrame({"user_idx": [0, 0, 2], "item_idx": [1, 1, 0], "time": [1, 2, 3]})
    matrix = dp.interaction_matrix(inter, user_map, item_map)
    assert matrix.shape == (3, 2)
    np.testing.assert_array_equal(matrix.toarray(), [[0, 1], [0, 0], [1, 0]])

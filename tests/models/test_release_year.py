"""The release-year filter the ensemble applies and the ranker's year features read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movie_rec.models import release_year

DAY = 86_400


def test_user_last_activity_year_is_the_utc_calendar_year_of_the_last_interaction():
    new_year = int(pd.Timestamp("2015-01-01", tz="UTC").timestamp())
    times = [new_year - 200 * DAY, new_year, new_year - 1]  # user 1's is 2014-12-31 23:59:59
    history = pd.DataFrame({"user_idx": [0, 0, 1], "item_idx": [0, 1, 0], "time": times})
    years = release_year.user_last_activity_year(history, n_users=3)
    np.testing.assert_array_equal(years, [2015, 2014, np.nan])
    np.testing.assert_array_equal(release_year.user_last_activity_year(history), [2015, 2014])


def test_release_year_filter_drops_later_movies_and_renumbers_the_ranks():
    candidates = pd.DataFrame(
        {
            "user_idx": [0, 0, 0, 0, 1, 1],
            "item_idx": [4, 2, 1, 3, 4, 0],
            "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
            "rank": [1, 2, 3, 4, 1, 2],
        }
    )
    item_year = np.array([1990, 2000, np.nan, 2012, 2013])
    user_last_year = np.array([2011, 2013])

    kept = release_year.release_year_filter(candidates, item_year, user_last_year, slack=1)
    # user 0 may watch up to 2012: 4 (2013) goes, 2 (unknown year) and 3 (2012) stay
    assert kept[["user_idx", "item_idx", "rank"]].values.tolist() == [
        [0, 2, 1], [0, 1, 2], [0, 3, 3], [1, 4, 1], [1, 0, 2],
    ]  # fmt: skip
    assert kept["score"].tolist() == pytest.approx([0.8, 0.7, 0.6, 0.5, 0.4])
    strict = release_year.release_year_filter(candidates, item_year, user_last_year, slack=0)
    assert strict.loc[strict["user_idx"] == 0, "item_idx"].tolist() == [2, 1]


def test_the_comparison_broadcasts_and_an_unknown_year_never_excludes():
    item_year = np.array([2000.0, 2013.0, np.nan])
    user_last_year = np.array([2011.0, np.nan])
    late = release_year.released_too_late(item_year[None, :], user_last_year[:, None], slack=1)
    np.testing.assert_array_equal(late, [[False, True, False], [False, False, False]])

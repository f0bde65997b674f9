import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from movie_rec import synthetic
from movie_rec.synthetic import GENRES, PRESETS, Preset, generate, main


def test_same_seed_same_data_other_seed_other_data(tiny_raw):
    again = generate("tiny", seed=3)
    for name, table in tiny_raw.items():
        pd.testing.assert_frame_equal(table, again[name])
    other = generate("tiny", seed=4)
    assert not other["train_ratings.csv"].equals(tiny_raw["train_ratings.csv"])


def test_competition_format(tiny_raw):
    ratings = tiny_raw["train_ratings.csv"]
    assert list(ratings.columns) == ["user", "item", "time"]
    assert all(pd.api.types.is_integer_dtype(t) for t in ratings.dtypes)
    assert not ratings.duplicated(["user", "item"]).any()
    assert ratings["item"].max() > len(ratings["item"].unique())  # ids are not dense
    history = ratings.groupby("user").size()
    assert history.min() >= PRESETS["tiny"].min_history
    assert ratings.groupby("user")["time"].apply(lambda t: t.is_monotonic_increasing).all()
    assert ratings["time"].between(1104537600, 1451606400).all()  # 2005 .. 2015

    titles = tiny_raw["titles.tsv"]
    assert titles["title"].str.match(r".+ \(\d{4}\)$").all()
    years = tiny_raw["years.tsv"]
    assert len(years) < len(titles)  # a few movies lack a year
    for table, column in (("directors.tsv", "director"), ("writers.tsv", "writer")):
        people = tiny_raw[table]
        assert people[column].str.fullmatch(r"nm\d{7}").all()
        assert people.groupby("item").size().max() > 1  # several per movie
        assert people["item"].nunique() < len(titles)  # some movies have none
    genres = tiny_raw["genres.tsv"]
    assert set(genres["genre"]) <= set(GENRES)
    assert genres["item"].nunique() == len(titles)  # every movie has a genre
    side_only = set(titles["item"]) - set(ratings["item"])
    assert side_only  # side files name movies nobody watched


def test_sequels_follow_their_first_part(tiny_raw):
    titles = tiny_raw["titles.tsv"].set_index("item")["title"]
    ratings = tiny_raw["train_ratings.csv"]
    nxt = ratings.groupby("user")["item"].shift(-1)
    pairs = pd.DataFrame({"a": ratings["item"].map(titles), "b": nxt.map(titles)}).dropna()
    base = pairs["a"].str.replace(r" \(\d{4}\)$", "", regex=True)
    sequel = pairs["b"].str.replace(r" \(\d{4}\)$", "", regex=True)
    follows = [
        re.fullmatch(re.escape(a) + r" 2", b) is not None for a, b in zip(base, sequel, strict=True)
    ]
    assert sum(follows) > 0


def _next_movie_counts(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """How often each (a, b) pair occurs as b watched right after a, over all users."""
    ratings = tables["train_ratings.csv"]
    following = ratings.groupby("user")["item"].shift(-1)
    pairs = pd.DataFrame({"a": ratings["item"], "b": following}).dropna().astype(int)
    return pairs.value_counts()


def _successor_share(run_continue: float, monkeypatch) -> float:
    """Share of consecutive watches (a, b) of the tiny preset where b is one of a's
    successors in the watch-next graph."""
    monkeypatch.setattr(synthetic, "RUN_CONTINUE", run_continue)
    rng, spec = np.random.default_rng(3), PRESETS["tiny"]
    catalogue = synthetic._make_catalogue(spec, 2, rng)
    times = [synthetic._watch_times(n, rng) for n in synthetic._history_lengths(spec, rng)]
    sequences = synthetic._sample_sequences(
        catalogue, times, spec.block_size, spec.onboarding_fame, rng
    )
    first = np.concatenate([s[:-1] for s in sequences])
    then = np.concatenate([s[1:] for s in sequences])
    return float((catalogue.successors[first] == then[:, None]).any(axis=1).mean())


def _directional_share(counts: pd.Series, min_count: int = 3) -> float:
    """Among pairs seen at least ``min_count`` times, the share seen at least twice as
    often forwards (a then b) as backwards (b then a)."""
    reverse_index = pd.MultiIndex.from_arrays(
        [counts.index.get_level_values("b"), counts.index.get_level_values("a")]
    )
    reverse = counts.reindex(reverse_index, fill_value=0).to_numpy()
    common = counts.to_numpy() >= min_count
    return float((counts.to_numpy()[common] >= 2 * reverse[common]).mean())


def test_runs_follow_the_watch_next_graph_in_one_direction(tiny_raw, monkeypatch):
    # after a watch outside the sign-up, a run goes on to a successor with chance
    # RUN_CONTINUE (less where every successor is seen or not yet released)
    with_runs = _successor_share(synthetic.RUN_CONTINUE, monkeypatch)
    without_runs = _successor_share(0.0, monkeypatch)
    assert with_runs > 0.5 * synthetic.RUN_CONTINUE
    assert with_runs > 2 * without_runs
    runs_counts = _next_movie_counts(tiny_raw)
    without_runs_counts = _next_movie_counts(generate("tiny", seed=3))
    assert _directional_share(runs_counts) > _directional_share(without_runs_counts)


def _successor_picks(taste_sign: float, catalogue: synthetic.Catalogue, movie: int) -> np.ndarray:
    """Which rank of ``movie``'s successors 4,000 users pick right after it, every user's
    taste pointing at (``taste_sign`` 1) or away from (-1) its successor of rank 5."""
    rows = np.arange(4_000)
    successors = catalogue.successors[movie]
    taste = np.tile(taste_sign * catalogue.vectors[successors[5]], (len(rows), 1))
    picked = synthetic._continuations(
        np.full(len(rows), movie),
        np.zeros((len(rows), len(catalogue.years)), dtype=bool),
        rows,
        np.full(len(rows), synthetic.TIME_END),
        taste,
        catalogue,
        np.random.default_rng(1),
    )
    return (picked[:, None] == successors[None, :]).argmax(axis=1)[picked >= 0]


@pytest.mark.parametrize("taste_weight", [synthetic.SUCCESSOR_TASTE, 0.0])
def test_the_successor_watched_next_depends_on_who_watches(monkeypatch, taste_weight):
    monkeypatch.setattr(synthetic, "SEQUEL_FOLLOW", 0.0)
    monkeypatch.setattr(synthetic, "SUCCESSOR_TASTE", taste_weight)
    catalogue = synthetic._make_catalogue(PRESETS["tiny"], 2, np.random.default_rng(0))
    toward = _successor_picks(1.0, catalogue, movie=0)
    away = _successor_picks(-1.0, catalogue, movie=0)
    # every user continues with chance RUN_CONTINUE, to a successor drawn by rank and taste
    assert len(toward) == pytest.approx(4_000 * synthetic.RUN_CONTINUE, rel=0.1)
    share_toward, share_away = (toward == 5).mean(), (away == 5).mean()
    if taste_weight:
        assert share_toward > 3 * share_away
    else:  # the rank prior alone: 1/6 of the weight of rank 0, the same for everyone
        assert share_toward == pytest.approx(share_away, abs=0.02)
        assert (toward == 0).mean() > 3 * share_toward


def test_watch_next_graph_is_directional_and_skips_unwatchable_movies():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, synthetic.LATENT_DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    watchable = np.arange(300) < 290
    successors = synthetic._watch_next_graph(vectors, watchable, rng)
    assert successors.shape == (300, synthetic.N_SUCCESSORS)
    assert (successors != np.arange(300)[:, None]).all()  # never itself
    assert watchable[successors].all()
    assert all(len(set(row)) == synthetic.N_SUCCESSORS for row in successors.tolist())
    edges = {(a, b) for a, row in enumerate(successors.tolist()) for b in row}
    reciprocal = sum((b, a) in edges for a, b in edges) / len(edges)
    assert reciprocal < 0.5  # b following a does not make a follow b
    similarity = np.einsum("ik,ijk->ij", vectors, vectors[successors])
    # Drawn with weight exp(s · similarity), a successor's expected similarity is about
    # s · Var(similarity) = s / LATENT_DIM for random unit vectors (0 for random pairs).
    assert similarity.mean() > 0.5 * synthetic.SUCCESSOR_SIMILARITY / synthetic.LATENT_DIM


def test_users_start_with_the_famous_movies(tiny_raw):
    def first_to_last_popularity(tables: dict[str, pd.DataFrame]) -> float:
        ratings = tables["train_ratings.csv"]
        watchers = ratings["item"].map(ratings.groupby("item").size())
        position = ratings.groupby("user").cumcount()
        from_end = ratings.groupby("user").cumcount(ascending=False)
        return float(watchers[position < 5].mean() / watchers[from_end < 5].mean())

    assert first_to_last_popularity(tiny_raw) > 1.5
    no_fame = dataclasses.replace(PRESETS["tiny"], onboarding_fame=0.0)  # a plain sign-up
    assert first_to_last_popularity(generate(no_fame, seed=3)) < 1.5


def _watches_with_years(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The ratings with the movie's year (from its title) and the calendar year watched."""
    ratings = tables["train_ratings.csv"]
    titles = tables["titles.tsv"].set_index("item")["title"]
    return ratings.assign(
        movie_year=ratings["item"].map(titles.str[-5:-1].astype(int)),
        watch_year=pd.to_datetime(ratings["time"], unit="s").dt.year,
    )


def test_nobody_watches_a_movie_before_its_year(tiny_raw):
    watches = _watches_with_years(tiny_raw)
    assert (watches["movie_year"] >= 2005).mean() > 0.1  # releases fall inside the window
    assert (watches["watch_year"] >= watches["movie_year"]).all()


def test_new_releases_are_watched_soon_after_release(monkeypatch):
    def soon_share(tables: dict[str, pd.DataFrame]) -> float:
        watches = _watches_with_years(tables)
        new = watches[watches["movie_year"] >= 2005]
        return float((new["watch_year"] - new["movie_year"] <= 1).mean())

    with_novelty = soon_share(generate("tiny", seed=5))
    monkeypatch.setattr(synthetic, "NOVELTY_WEIGHT", 0.0)
    availability_only = soon_share(generate("tiny", seed=5))
    assert with_novelty > availability_only + 0.05


def test_long_histories_stay_inside_the_time_window():
    long = Preset(
        n_users=6, n_items=1_300, mean_history=1_100, min_history=1_000, max_history=1_200,
        n_directors=60, n_writers=90,
    )  # fmt: skip
    ratings = generate(long, seed=1)["train_ratings.csv"]
    assert ratings.groupby("user").size().min() >= 1_000
    assert ratings["time"].between(synthetic.TIME_START, synthetic.TIME_END).all()
    assert ratings.groupby("user")["time"].apply(lambda t: t.is_monotonic_increasing).all()
    assert not ratings.duplicated(["user", "time"]).any()


def test_competition_preset_matches_reference_scale():
    spec = PRESETS["competition"]
    assert (spec.n_users, spec.n_items) == (31_360, 6_807)
    assert spec.min_history == 16 and spec.max_history == 2_912
    assert spec.mean_history * spec.n_users == pytest.approx(5_154_471, rel=0.01)


def test_command_line_writes_six_files(tmp_path):
    main(["--preset", "tiny", "--out", str(tmp_path), "--seed", "1"])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        [
            "train_ratings.csv",
            "titles.tsv",
            "years.tsv",
            "directors.tsv",
            "writers.tsv",
            "genres.tsv",
        ]
    )
    header = (tmp_path / "titles.tsv").read_text().splitlines()[0]
    assert header == "item\ttitle"
    ratings = pd.read_csv(tmp_path / "train_ratings.csv")
    assert np.issubdtype(ratings["time"].dtype, np.integer)

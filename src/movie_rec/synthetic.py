"""Synthetic movie-watching data in the competition's raw format, at any size.

The generator plants the structure the real data has, so models have something to learn
and their ranking on it means something:

* **Taste**: every user has a latent taste vector built from a few favourite genres;
  every movie's vector comes from its genres, its main director and its writer, so
  side information predicts who watches what.
* **Popularity head**: a log-normal popularity per movie, higher for recent years. A
  user's first ``ONBOARDING_ITEMS`` watches are their *sign-up* (as on MovieLens, where a
  new user first rates the famous movies they have seen): there the classics (released
  before 2005) count by fame, the one of popularity rank r with weight
  ``r ** -onboarding_fame`` (a :class:`Preset` field), so the most-watched movie is seen
  by about 60% of users (19,699 of 31,360 on the real data) while the end of a history
  stays personal.
* **Blocks and drift**: a user watches in blocks; each block follows a *mood* (one of
  the user's genres, drawn afresh per block) and the taste drifts as a random walk from
  block to block.
* **Order (runs)**: real histories have short-range order: what a user watched last
  predicts the next few movies far better than the rest of the history does (a decayed
  transition model from the last 3 items beats EASE on the held-out last items by about
  a third, while EASE recalls randomly dropped items about 4x better). A directional
  *watch-next graph* plants it: every movie has ``N_SUCCESSORS`` successors, drawn once
  for the catalogue, leaning to similar movies (b following a says nothing about a
  following b). Each movie a block's taste model picks (an *anchor*) starts a run: after
  every watch, the next part of a series comes next (``SEQUEL_FOLLOW``), otherwise with
  chance ``RUN_CONTINUE`` one of the movie's unseen, released successors does, drawn by
  its rank and by the user's taste (``SUCCESSOR_TASTE``), otherwise the block's next
  anchor. The same successors recur across users, so a model of transitions learns them;
  which of a movie's 30 successors comes next depends on who is watching, so a model
  that reads the whole history (SASRec, GRU4Rec) can narrow them to a top 10 where a
  transition model from the last items cannot. A dropped item in the middle keeps its
  neighbours on both sides, which a co-occurrence model like EASE uses. The sign-up
  block has no runs.
* **Release time**: a movie cannot be watched before its release (a random day of its
  year) and is watched most in the months after it, so what a user watches late in
  their history is what came out then; only the order of a history tells when that is.
  Users are active from a few weeks to years (sessions days to months apart).
* **Series**: some movies are sequels, watched right after the part before (above).

``benchmarks/bench_sample_order.py`` prints how these plants show on the validation split.

Files written (docs/architecture.md §3): ``train_ratings.csv`` (user,item,time) and the tab-separated
``titles.tsv``, ``years.tsv`` (a few movies missing; the title always carries the year),
``directors.tsv``, ``writers.tsv`` (IMDb-like ``nm`` ids, several per movie, some movies
with none) and ``genres.tsv``. Side files also name a few movies nobody watched.

Command line::

    python -m movie_rec.synthetic --preset sample --out data/01_raw --seed 42
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

GENRES = (
    "Drama", "Comedy", "Thriller", "Romance", "Action", "Crime", "Adventure",
    "Sci-Fi", "Horror", "Fantasy", "Mystery", "Children", "Animation", "War",
    "Documentary", "Musical", "Western", "Film-Noir",
)  # fmt: skip
# Relative genre frequencies, MovieLens-like: Drama and Comedy dominate, Film-Noir is rare.
GENRE_WEIGHTS = np.array(
    [30, 22, 12, 10, 10, 8, 7, 5, 5, 4, 4, 3, 3, 3, 2, 2, 1.5, 0.7], dtype=float
)
WORDS = (
    "Night Day Love War Star City Dark Last First Blue Red Lost Secret House River "
    "Road Dream Winter Summer Shadow King Queen Ghost Heart Iron Silent Golden Wild "
    "Empire Garden Island Storm Fire Glass Stone Moon Sun Time Fall Rise Return Edge "
    "Game Story Man Woman Girl Boy Family Friends Escape Mission Legend Valley Ocean"
).split()

YEAR_MIN, YEAR_MAX = 1922, 2014
TIME_START = int(pd.Timestamp("2005-01-01").timestamp())
TIME_END = int(pd.Timestamp("2015-12-31").timestamp())
RAW_ITEM_ID_MAX = 119_145
LATENT_DIM = 16
# Strength of each planted signal (see the module docstring).
TASTE_WEIGHT = 4.0  # user taste · movie vector
MOOD_WEIGHT = 3.0  # bonus for the block's mood genre
MOOD_PERSISTENCE = 0.6  # chance a block keeps the previous block's mood
TASTE_DRIFT = 0.5  # random-walk step of the taste between blocks
SERIES_START = 0.05  # chance a movie starts a series
ONBOARDING_ITEMS = 10  # a user's first block (the sign-up) is this long
SEQUEL_FOLLOW = 0.8  # chance the next part is watched right after
RUN_CONTINUE = 0.8  # chance a run goes on to a successor in the watch-next graph
N_SUCCESSORS = 30  # successors per movie in the watch-next graph: more than a top 10 holds
SUCCESSOR_SIMILARITY = 2.0  # weight of movie·movie similarity when successors are drawn
# A run picks among the unseen, released successors by Gumbel-max on
# log(1 / (rank + 1)) + SUCCESSOR_TASTE · taste·movie: the catalogue-wide order of a movie's
# successors, bent by who is watching (after the same film a fan of one genre goes on to
# another sequel-like pick than a fan of another), which the last item alone cannot tell.
SUCCESSOR_TASTE = 5.0
NOVELTY_WEIGHT = 3.0  # bonus for a movie on its release day ...
NOVELTY_DAYS = 365.0  # ... fading by a factor e every this many days
SESSION_GAP_DAYS = (2.0, 60.0)  # range (log-uniform) of a user's mean days between sessions
DAY = 86_400


@dataclass(frozen=True)
class Preset:
    """Size and shape of a generated data set.

    ``onboarding_fame``: in a user's sign-up block the classic of fame rank r weighs
    ``r ** -onboarding_fame``. A larger catalogue needs a smaller exponent for the same
    head. The top ranks keep their weights whatever the size, but with 6,807 movies
    instead of 600 a classic of the same popularity quantile, and every movie released
    later (ranked after the last classic), has an 11x larger rank, so a ~46x smaller
    weight at 1.6: the later movies' share of a sign-up draw falls from 2% to 0.3% and
    the top ranks take the rest. The sign-up block holds only famous movies (no runs),
    so the head is taller than the exponent alone says: at seed 42 the competition
    preset's most-watched movie is seen by 83% of users at 1.45, 67% at 1.2; the
    sample's by 74% at 1.6 and 65% at 1.45 (the real data: 63%).
    """

    n_users: int
    n_items: int
    mean_history: float
    min_history: int
    max_history: int
    n_directors: int
    n_writers: int
    block_size: int = 10
    onboarding_fame: float = 1.6


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        n_users=240, n_items=160, mean_history=36, min_history=16, max_history=120,
        n_directors=40, n_writers=70,
    ),
    "sample": Preset(
        n_users=2_000, n_items=600, mean_history=50, min_history=16, max_history=400,
        n_directors=170, n_writers=330, onboarding_fame=1.45,
    ),
    "medium": Preset(  # a real catalogue's size (3,500 movies) at a tenth of the interactions
        n_users=3_000, n_items=3_500, mean_history=100, min_history=16, max_history=1_500,
        n_directors=900, n_writers=1_700, block_size=15, onboarding_fame=1.2,
    ),
    "competition": Preset(
        n_users=31_360, n_items=6_807, mean_history=164.4, min_history=16, max_history=2_912,
        n_directors=1_340, n_writers=2_989, block_size=20, onboarding_fame=1.15,
    ),
}  # fmt: skip


@dataclass
class Catalogue:
    """The generated movies: attributes and the latent vectors that drive watching."""

    genres: list[np.ndarray]  # genre indices per movie
    years: np.ndarray
    directors: list[np.ndarray]  # director indices per movie (may be empty)
    writers: list[np.ndarray]
    titles: list[str]
    vectors: np.ndarray  # (n, LATENT_DIM)
    genre_matrix: np.ndarray  # (n, n_genres) 0/1
    log_popularity: np.ndarray
    sequel_of: np.ndarray  # index of the previous part, -1 if none
    next_part: np.ndarray  # index of the next part, -1 if none
    successors: np.ndarray  # (n, N_SUCCESSORS) watch-next graph, most likely first
    release_time: np.ndarray  # unix seconds: a random day of the movie's year
    watchable: np.ndarray  # False for the side-file-only movies


def _history_lengths(preset: Preset, rng: np.random.Generator) -> np.ndarray:
    """Log-normal history lengths, clipped to [min, max], scaled to the preset's mean."""
    raw = rng.lognormal(mean=0.0, sigma=1.15, size=preset.n_users)
    low, high = 0.0, 10.0 * preset.mean_history
    for _ in range(60):  # bisection on the scale that hits the target mean
        scale = (low + high) / 2
        lengths = np.clip(preset.min_history + raw * scale, preset.min_history, preset.max_history)
        if lengths.mean() < preset.mean_history:
            low = scale
        else:
            high = scale
    return np.round(lengths).astype(np.int64)


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return rng.permutation(weights / weights.sum())


def _title(rng: np.random.Generator) -> str:
    words = rng.choice(WORDS, size=rng.integers(1, 4), replace=False)
    name = " ".join(words)
    return f"{name}, The" if rng.random() < 0.15 else name


def _people(
    n_movies: int,
    pool: int,
    p_none: float,
    mean_extra: float,
    cap: int,
    primary: np.ndarray,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Per movie: the primary person plus a geometric number of others, or nobody."""
    weights = _zipf_weights(pool, 0.9, rng)
    result = []
    for movie in range(n_movies):
        if rng.random() < p_none:
            result.append(np.empty(0, dtype=np.int64))
            continue
        extra = min(rng.geometric(1.0 / (1.0 + mean_extra)) - 1, cap - 1)
        others = rng.choice(pool, size=extra, p=weights) if extra else np.empty(0, np.int64)
        result.append(np.unique(np.concatenate([[primary[movie]], others])).astype(np.int64))
    return result  # fmt: skip


def _make_catalogue(preset: Preset, n_side_only: int, rng: np.random.Generator) -> Catalogue:
    n = preset.n_items + n_side_only
    n_genres = len(GENRES)
    genre_prior = GENRE_WEIGHTS / GENRE_WEIGHTS.sum()
    genre_vectors = rng.normal(size=(n_genres, LATENT_DIM))
    director_vectors = rng.normal(size=(preset.n_directors, LATENT_DIM))
    writer_vectors = rng.normal(size=(preset.n_writers, LATENT_DIM))
    # Each director works mostly in two home genres.
    director_home = np.stack(
        [
            rng.choice(n_genres, size=2, replace=False, p=genre_prior)
            for _ in range(preset.n_directors)
        ]
    )
    director_weights = _zipf_weights(preset.n_directors, 0.8, rng)

    primary_director = rng.choice(preset.n_directors, size=n, p=director_weights)
    primary_writer = rng.integers(0, preset.n_writers, size=n)
    genres: list[np.ndarray] = []
    for movie in range(n):
        count = int(np.clip(1 + rng.poisson(0.9), 1, 4))
        home = director_home[primary_director[movie]]
        picks = [rng.choice(home), *rng.choice(n_genres, size=count, p=genre_prior)]
        genres.append(np.unique(np.asarray(picks[:count], dtype=np.int64)))
    years = np.clip(YEAR_MAX - np.floor(rng.gamma(1.6, 11.0, size=n)), YEAR_MIN, YEAR_MAX).astype(
        int
    )
    titles = [_title(rng) for _ in range(n)]

    # Series: runs of 2-4 consecutive movie indices share director, genres and base title.
    sequel_of = np.full(n, -1, dtype=np.int64)
    movie = 0
    while movie < preset.n_items - 4:
        if rng.random() < SERIES_START:
            length = int(rng.integers(2, 5))
            for part in range(1, length):
                idx = movie + part
                sequel_of[idx] = idx - 1
                primary_director[idx] = primary_director[movie]
                genres[idx] = genres[movie]
                years[idx] = min(YEAR_MAX, years[idx - 1] + int(rng.integers(1, 5)))
                titles[idx] = f"{titles[movie]} {part + 1}"
            movie += length
        else:
            movie += 1

    directors = _people(n, preset.n_directors, 0.19, 0.25, 6, primary_director, rng)
    writers = _people(n, preset.n_writers, 0.17, 1.2, 24, primary_writer, rng)
    genre_matrix = np.zeros((n, n_genres))
    for movie, movie_genres in enumerate(genres):
        genre_matrix[movie, movie_genres] = 1.0
    genre_part = genre_matrix @ genre_vectors / genre_matrix.sum(1, keepdims=True)
    vectors = (
        genre_part
        + 0.7 * director_vectors[primary_director]
        + 0.4 * writer_vectors[primary_writer]
        + 0.3 * rng.normal(size=(n, LATENT_DIM))
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    recency = (years - YEAR_MIN) / (YEAR_MAX - YEAR_MIN)
    log_popularity = rng.normal(0.0, 1.0, size=n) + 1.0 * recency
    log_popularity[sequel_of >= 0] -= 0.7  # later parts are watched less on their own
    year_start = (years - 1970).astype("datetime64[Y]").astype("datetime64[s]").astype(np.int64)
    release_time = year_start + rng.integers(0, 365 * DAY, size=n)
    watchable = np.arange(n) < preset.n_items
    next_part = np.full(n, -1, dtype=np.int64)
    next_part[sequel_of[sequel_of >= 0]] = np.flatnonzero(sequel_of >= 0)
    successors = _watch_next_graph(vectors, watchable, rng)
    return Catalogue(
        genres=genres, years=years, directors=directors, writers=writers, titles=titles,
        vectors=vectors, genre_matrix=genre_matrix, log_popularity=log_popularity,
        sequel_of=sequel_of, next_part=next_part, successors=successors,
        release_time=release_time, watchable=watchable,
    )  # fmt: skip


def _watch_next_graph(
    vectors: np.ndarray, watchable: np.ndarray, rng: np.random.Generator, chunk: int = 1024
) -> np.ndarray:
    """Per movie, ``N_SUCCESSORS`` other watchable movies drawn without replacement with
    weight ``exp(SUCCESSOR_SIMILARITY · similarity)``, most likely first. Each movie's
    list is drawn on its own, so the graph is directional: b follows a, not a b."""
    n = len(vectors)
    successors = np.empty((n, N_SUCCESSORS), dtype=np.int64)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        logits = (SUCCESSOR_SIMILARITY * vectors[rows] @ vectors.T).astype(np.float32)
        logits[:, ~watchable] = -np.inf
        logits[np.arange(len(rows)), rows] = -np.inf
        successors[rows] = _gumbel_top_k(logits, N_SUCCESSORS, rng)
    return successors


def _user_tastes(
    catalogue: Catalogue, n_users: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Taste vectors and genre preferences (each user favours 1-3 genres)."""
    n_genres = catalogue.genre_matrix.shape[1]
    prior = GENRE_WEIGHTS / GENRE_WEIGHTS.sum()
    genre_pref = np.full((n_users, n_genres), 0.02)
    for user in range(n_users):
        favourites = rng.choice(n_genres, size=int(rng.integers(1, 4)), replace=False, p=prior)
        genre_pref[user, favourites] += rng.dirichlet(np.ones(len(favourites)))
    genre_pref /= genre_pref.sum(1, keepdims=True)
    # A user's taste points at the average movie of their genres, plus personal noise.
    genre_centres = (catalogue.genre_matrix.T @ catalogue.vectors) / np.maximum(
        catalogue.genre_matrix.sum(0)[:, None], 1
    )
    tastes = genre_pref @ genre_centres + 0.35 * rng.normal(size=(n_users, LATENT_DIM))
    return tastes, genre_pref


def _novelty(release_time: np.ndarray, now: np.ndarray) -> np.ndarray:
    """The float32 release bonus ``NOVELTY_WEIGHT · exp(-(now - release) / NOVELTY_DAYS)``
    of movies released at ``release_time`` watched at ``now`` (broadcast against each
    other), -inf before release."""
    age = (now - release_time).astype(np.float32) / np.float32(NOVELTY_DAYS * DAY)
    bonus = np.float32(NOVELTY_WEIGHT) * np.exp(-np.maximum(age, np.float32(0)))
    return np.where(age >= 0, bonus, np.float32(-np.inf))


def _fame(catalogue: Catalogue) -> np.ndarray:
    """``-log(rank)`` of the classics (watchable movies released before the watching
    starts) by popularity; every later movie ranks just below the last classic."""
    classic = catalogue.watchable & (catalogue.release_time < TIME_START)
    n_classics = int(classic.sum())
    rank = np.full(len(classic), n_classics + 1.0)
    by_popularity = np.argsort(-np.where(classic, catalogue.log_popularity, -np.inf))
    rank[by_popularity[:n_classics]] = np.arange(1, n_classics + 1)
    return -np.log(rank)


def _gumbel_top_k(logits: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Per row, ``k`` columns drawn without replacement with chance ∝ ``exp(logit)``
    (Gumbel top-k), most likely first; -1 where fewer than ``k`` logits are finite.
    Overwrites ``logits``."""
    exponential = rng.standard_exponential(size=logits.shape, dtype=np.float32)
    logits -= np.log(exponential + np.float32(1e-30))  # -log Exp(1) is a Gumbel draw
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    keys = np.take_along_axis(logits, top, axis=1)
    order = np.argsort(-keys, axis=1)
    top = np.take_along_axis(top, order, axis=1)
    return np.where(np.isfinite(np.take_along_axis(keys, order, axis=1)), top, -1)


def _sample_sequences(
    catalogue: Catalogue,
    times: list[np.ndarray],
    block_size: int,
    onboarding_fame: float,
    rng: np.random.Generator,
    chunk: int = 2048,
) -> list[np.ndarray]:
    """Item sequences watched at ``times``, one block of ``block_size`` items at a time
    for a chunk of users.

    A block's anchors are drawn without replacement by Gumbel top-k on
    ``taste·item + mood bonus + log popularity + novelty`` at the block's first watch
    time (fame instead of popularity in the ``ONBOARDING_ITEMS``-long sign-up block, see
    :func:`_fame`); each anchor starts a run of continuations (:func:`_fill_blocks`) until
    the block is full. The taste then takes a random-walk step.
    """
    lengths = np.array([len(t) for t in times])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    all_times = np.concatenate(times)
    tastes, genre_pref = _user_tastes(catalogue, len(lengths), rng)
    movie_taste = (TASTE_WEIGHT * catalogue.vectors.T).astype(np.float32)
    mood_bonus = (MOOD_WEIGHT * catalogue.genre_matrix.T).astype(np.float32)
    popularity = np.where(catalogue.watchable, catalogue.log_popularity, -np.inf)
    popularity = popularity.astype(np.float32)
    onboarding = np.where(catalogue.watchable, onboarding_fame * _fame(catalogue), -np.inf)
    onboarding = onboarding.astype(np.float32)
    n_items = len(popularity)
    take = min(max(block_size, ONBOARDING_ITEMS), n_items)
    sequences: list[np.ndarray] = []
    for start in range(0, len(lengths), chunk):
        users = np.arange(start, min(start + chunk, len(lengths)))
        taste = tastes[users].copy()
        seen = np.zeros((len(users), n_items), dtype=bool)
        drawn: list[list[np.ndarray]] = [[] for _ in users]
        remaining = lengths[users].copy()
        mood = np.full(len(users), -1)
        while (remaining > 0).any():
            active = np.flatnonzero(remaining > 0)
            mood_cdf = np.cumsum(genre_pref[users[active]], axis=1)
            fresh = (mood_cdf < rng.random((len(active), 1)) * mood_cdf[:, -1:]).sum(axis=1)
            keep = (mood[active] >= 0) & (rng.random(len(active)) < MOOD_PERSISTENCE)
            mood[active] = np.where(keep, mood[active], fresh)
            position = lengths[users[active]] - remaining[active]
            now = all_times[starts[users[active]] + position]
            signing_up = (position == 0)[:, None]
            scores = taste[active].astype(np.float32) @ movie_taste
            scores += mood_bonus[mood[active]]
            scores += np.where(signing_up, onboarding, popularity)
            scores += _novelty(catalogue.release_time[None, :], now[:, None])
            scores[seen[active]] = -np.inf
            anchors = _gumbel_top_k(scores, take, rng)
            quota = np.minimum(
                np.where(position == 0, ONBOARDING_ITEMS, block_size), remaining[active]
            )
            placed = _fill_blocks(
                anchors, quota, ~signing_up[:, 0], seen, active, now, taste[active], catalogue, rng
            )
            counts = (placed >= 0).sum(axis=1)
            for row, a in enumerate(active):
                drawn[a].append(placed[row, : counts[row]])
            # a user who ran out of released movies stops early
            remaining[active] = np.where(counts > 0, remaining[active] - counts, 0)
            taste[active] += TASTE_DRIFT * rng.normal(size=(len(active), LATENT_DIM))
        sequences.extend(np.concatenate(parts) for parts in drawn)
    return sequences


def _fill_blocks(
    anchors: np.ndarray,
    quota: np.ndarray,
    runs: np.ndarray,
    seen: np.ndarray,
    rows: np.ndarray,
    now: np.ndarray,
    taste: np.ndarray,
    catalogue: Catalogue,
    rng: np.random.Generator,
) -> np.ndarray:
    """One block per user (``rows`` of ``seen``): each unseen anchor in turn (``anchors``
    best first, -1 = none), followed by its run of continuations where ``runs`` (not in
    the sign-up block, where a new user lists famous movies), until ``quota`` items.

    All users advance one slot at a time; the items are marked in ``seen``. Returns the
    ``(len(rows), quota.max())`` items, -1 after a user's last one.
    """
    placed = np.full((len(rows), int(quota.max())), -1, dtype=np.int64)
    current = np.full(len(rows), -1, dtype=np.int64)
    for slot in range(placed.shape[1]):
        current = _continuations(
            np.where(runs, current, -1), seen, rows, now, taste, catalogue, rng
        )
        run_ended = current < 0
        current[run_ended] = _first_unseen(anchors[run_ended], seen, rows[run_ended])
        current[slot >= quota] = -1
        placed[:, slot] = current
        watched = current >= 0
        seen[rows[watched], current[watched]] = True
    return placed


def _first_unseen(anchors: np.ndarray, seen: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per row, the first anchor the user has not seen, -1 when none is left."""
    available = (anchors >= 0) & ~seen[rows[:, None], np.maximum(anchors, 0)]
    first = np.argmax(available, axis=1)
    return np.where(available.any(axis=1), anchors[np.arange(len(anchors)), first], -1)


def _continuations(
    current: np.ndarray,
    seen: np.ndarray,
    rows: np.ndarray,
    now: np.ndarray,
    taste: np.ndarray,
    catalogue: Catalogue,
    rng: np.random.Generator,
) -> np.ndarray:
    """What each user (``rows`` of ``seen``, current ``taste``) watches right after
    ``current``, -1 when the run ends (or there is no current item).

    The next part of a series comes first (``SEQUEL_FOLLOW``); otherwise, with chance
    ``RUN_CONTINUE``, one of the unseen, released successors in the watch-next graph,
    drawn by rank, taste (``SUCCESSOR_TASTE``) and novelty; the run ends when none is left.
    """
    follow_draw, continue_draw = rng.random((2, len(current)))
    item = np.maximum(current, 0)
    released = catalogue.release_time
    sequel = np.maximum(catalogue.next_part[item], 0)
    result = np.where(
        (current >= 0)
        & (catalogue.next_part[item] >= 0)
        & ~seen[rows, sequel]
        & (released[sequel] <= now)
        & (follow_draw < SEQUEL_FOLLOW),
        sequel,
        -1,
    )
    pending = (current >= 0) & (result < 0) & (continue_draw < RUN_CONTINUE)
    candidates = catalogue.successors[item]
    fits = ~seen[rows[:, None], candidates] & (released[candidates] <= now[:, None])
    fits &= pending[:, None]
    rank_prior = -np.log(np.arange(1, N_SUCCESSORS + 1))
    affinity = np.einsum("rk,rsk->rs", taste, catalogue.vectors[candidates])
    logits = rank_prior + SUCCESSOR_TASTE * affinity + rng.gumbel(size=candidates.shape)
    logits[fits] += _novelty(released[candidates], now[:, None])[fits]
    logits[~fits] = -np.inf
    chosen = np.argmax(logits, axis=1)
    picked = fits.any(axis=1)
    result[picked] = candidates[picked, chosen[picked]]
    return result


def _watch_times(length: int, rng: np.random.Generator) -> np.ndarray:
    """Increasing unix times: sessions of quick successive watches, separated by a
    user-specific number of days, squeezed into 2005–2015 when they would overrun it."""
    gap_days = np.exp(rng.uniform(*np.log(SESSION_GAP_DAYS)))
    gaps = np.where(
        rng.random(length) < 0.15,
        rng.exponential(DAY * gap_days, size=length),
        rng.exponential(900, size=length),
    )
    offsets = np.cumsum(np.maximum(gaps, 1.0))
    offsets -= offsets[0]
    window = TIME_END - TIME_START - length
    offsets *= min(1.0, window / max(offsets[-1], 1.0))
    offsets = offsets.astype(np.int64) + np.arange(length)  # strictly increasing
    return rng.integers(TIME_START, TIME_START + max(1, window - int(offsets[-1]))) + offsets


def _raw_ids(n: int, high: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct non-contiguous positive ids up to ``high``, in random order."""
    return rng.permutation(rng.choice(np.arange(1, high + 1), size=n, replace=False))


def _long_table(
    ids: np.ndarray, values: list[np.ndarray], column: str, names: np.ndarray
) -> pd.DataFrame:
    counts = np.array([len(v) for v in values])
    flat = np.concatenate(values).astype(np.int64) if counts.sum() else np.empty(0, np.int64)
    return pd.DataFrame({"item": np.repeat(ids, counts), column: names[flat]})


def generate(preset: str | Preset = "sample", seed: int = 42) -> dict[str, pd.DataFrame]:
    """Generate the six raw tables, keyed by file name; deterministic for a seed."""
    spec = PRESETS[preset] if isinstance(preset, str) else preset
    rng = np.random.default_rng(seed)
    n_side_only = max(2, spec.n_items // 100)
    catalogue = _make_catalogue(spec, n_side_only, rng)
    times = [_watch_times(length, rng) for length in _history_lengths(spec, rng)]
    sequences = _sample_sequences(catalogue, times, spec.block_size, spec.onboarding_fame, rng)

    n_all = len(catalogue.years)
    item_ids = np.sort(_raw_ids(n_all, RAW_ITEM_ID_MAX, rng))
    item_ids = rng.permutation(item_ids)
    user_ids = np.sort(_raw_ids(spec.n_users, spec.n_users * 5, rng))
    ratings = pd.DataFrame(
        {
            "user": np.repeat(user_ids, [len(s) for s in sequences]),
            "item": item_ids[np.concatenate(sequences)],
            # a user who ran out of released movies stops early
            "time": np.concatenate([t[: len(s)] for t, s in zip(times, sequences, strict=True)]),
        }
    )

    movie_order = np.argsort(item_ids)
    missing_year = rng.choice(n_all, size=max(2, n_all // 850), replace=False)
    has_year = np.ones(n_all, dtype=bool)
    has_year[missing_year] = False
    director_names = np.array(
        [f"nm{n:07d}" for n in rng.choice(9_999_999, spec.n_directors, replace=False)]
    )
    writer_names = np.array(
        [f"nm{n:07d}" for n in rng.choice(9_999_999, spec.n_writers, replace=False)]
    )

    titles = pd.DataFrame(
        {
            "item": item_ids,
            "title": [f"{t} ({y})" for t, y in zip(catalogue.titles, catalogue.years, strict=True)],
        }
    ).iloc[movie_order]
    years = pd.DataFrame({"item": item_ids, "year": catalogue.years}).iloc[movie_order]
    years = years[has_year[movie_order]]

    def side(values: list[np.ndarray], column: str, names: np.ndarray) -> pd.DataFrame:
        table = _long_table(item_ids, values, column, names)
        return table.sort_values(["item", column], kind="stable").reset_index(drop=True)

    return {
        "train_ratings.csv": ratings,
        "titles.tsv": titles.reset_index(drop=True),
        "years.tsv": years.reset_index(drop=True),
        "directors.tsv": side(catalogue.directors, "director", director_names),
        "writers.tsv": side(catalogue.writers, "writer", writer_names),
        "genres.tsv": side(catalogue.genres, "genre", np.array(GENRES)),
    }


def write_raw(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> list[Path]:
    """Write the tables in the competition's formats (comma CSV, tab TSV, header rows)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in tables.items():
        path = out / name
        table.to_csv(path, sep="," if name.endswith(".csv") else "\t", index=False)
        paths.append(path)
    return paths


def describe(tables: dict[str, pd.DataFrame]) -> str:
    """A one-paragraph summary of the shape of generated (or real) raw tables."""
    ratings = tables["train_ratings.csv"]
    history = ratings.groupby("user").size()
    popularity = ratings.groupby("item").size()
    return (
        f"{ratings['user'].nunique():,} users, {ratings['item'].nunique():,} movies, "
        f"{len(ratings):,} interactions; history min {history.min()}, mean {history.mean():.1f}, "
        f"max {history.max()}; movie popularity {popularity.min()} … {popularity.max()}; "
        f"{tables['directors.tsv']['director'].nunique():,} directors, "
        f"{tables['writers.tsv']['writer'].nunique():,} writers"
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m movie_rec.synthetic --preset sample --out DIR [--seed S]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="sample")
    parser.add_argument("--out", required=True, help="folder to write the six raw files to")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tables = generate(args.preset, args.seed)
    for path in write_raw(tables, args.out):
        logger.info("wrote %s", path)
    logger.info(describe(tables))


if __name__ == "__main__":
    main()

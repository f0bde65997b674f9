"""Features and labels of the second-stage ranker (:mod:`movie_rec.second_stage.ranker`).

Each candidate (user, movie) pair (:mod:`movie_rec.second_stage.candidates`) gets the
features of
:data:`FEATURES`: the first-stage scores and ranks, order and time signals (transitions
from the user's last items, co-occurrence with the recent ones, popularity around the
user's last activity, release year against it) and static side information.

Every feature reads only a *history* (``split_train`` for the validation fit, all
interactions for the final fit), its matrix and the side tables; the held-out answers
enter solely through
:func:`movie_rec.second_stage.candidates.label_pairs`. Rows must be sorted by user.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from movie_rec.models.markov import Markov, MarkovConfig, recent_positions, transition_matrix
from movie_rec.models.matrices import gram_matrix
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.models.sequences import UserSequences, user_sequences
from movie_rec.second_stage.candidates import PAIR, pair_keys, rows_of
from movie_rec.second_stage.config import FeatureConfig
from movie_rec.second_stage.tables import SECONDS_PER_DAY, item_table, user_table

CATEGORICAL = ["director", "writer"]
SPLIT = "split"  # on extra training rows: the holdout they come from (1, 2, ...; 0 = validation)
UNRANKED = 1000  # the rank feature of a movie a first-stage model did not rank
TOP = 10  # the list length the competition scores
COSINE_BLOCK_ROWS = 1024  # item rows of the cosine co-occurrence normalised at a time

# Every feature column, in order; ``<model>``, ``<k>`` and ``<genre>`` are filled in per run.
FEATURES: dict[str, str] = {
    "<model>_score": "the first-stage model's score (NaN when it did not rank the movie)",
    "<model>_rank": f"the model's rank, 1 = best ({UNRANKED} when it did not rank the movie)",
    "best_rank": f"the best rank any first-stage model gave the movie ({UNRANKED} when none)",
    "n_models": "first-stage models that ranked the movie",
    "n_models_top10": "first-stage models that ranked the movie in their top 10",
    "markov_<k>": "transition score (Markov, lags 3) voted by the user's last <k> movies",
    "gap_fit": "how well the movie fills a gap of the user's history: the mean over the "
    "history's consecutive movies (a, b) of T[a, movie] · T[movie, b], T the next-movie "
    "transition probabilities (a → movie → b)",
    "recent_cooc": "cosine co-occurrence with the user's last cooc_window movies, the j-th "
    "most recent weighted cooc_decay^(j-1), divided by the weights' sum",
    "item_pop": "interactions of the movie in the history",
    "item_pop_recent": "interactions of the movie in the history's last recent_days days",
    "item_trend": "the movie's share of the recent interactions over its share of all of them",
    "item_pop_before_user_end": "interactions of the movie in the user_window_days before "
    "the user's last interaction",
    "item_pop_after_user_end": "interactions of the movie (by others) in the user_window_days "
    "after the user's last interaction",
    "seen_before_user_end": "1 when anyone watched the movie before the user's last interaction",
    "year": "release year (NaN when unknown)",
    "year_minus_last_activity_year": "release year minus the calendar year (UTC) of the "
    "user's last interaction",
    "year_vs_user_mean": "release year minus the mean release year of the user's movies",
    "year_vs_user_latest": "release year minus the latest release year among the user's movies",
    "director": "representative director, categorical code (-1 = none)",
    "writer": "representative writer, categorical code (-1 = none)",
    "user_len": "the user's history length",
    "user_span_days": "days between the user's first and last interaction",
    "user_genre_share": "mean over the movie's genres of the user's history share in that genre",
    "user_director_share": "share of the user's movies sharing a director with the movie",
    "user_writer_share": "share of the user's movies sharing a writer with the movie",
    "<genre>": "1 when the movie has the genre (one column per genre_* of item_features)",
}


# --- per-pair features --------------------------------------------------------------------


def _gather_per_user(
    pairs: pd.DataFrame,
    dense_for: Callable[[np.ndarray], np.ndarray],
    batch_size: int,
) -> np.ndarray:
    """``dense_for(users)[row of user, item]`` for every pair, one user batch at a time.

    ``pairs`` must be sorted by user. The batches are shared out over
    ``torch.get_num_threads()`` threads (the sparse and dense products release the GIL), each
    writing its own rows, so the result does not depend on the thread count; one
    ``batch_size × n_items`` block a thread exists at once.
    """
    user_ids = pairs["user_idx"].to_numpy()
    item_ids = pairs["item_idx"].to_numpy()
    users = np.unique(user_ids)
    out = np.empty(len(pairs), dtype=np.float32)

    def fill(batch: np.ndarray) -> None:
        lo = np.searchsorted(user_ids, batch[0], side="left")
        hi = np.searchsorted(user_ids, batch[-1], side="right")
        rows = np.searchsorted(batch, user_ids[lo:hi])
        out[lo:hi] = np.asarray(dense_for(batch))[rows, item_ids[lo:hi]]

    batches = [users[start : start + batch_size] for start in range(0, len(users), batch_size)]
    with ThreadPoolExecutor(max(1, min(torch.get_num_threads(), len(batches)))) as pool:
        list(pool.map(fill, batches))
    return out


def first_stage_features(
    pairs: pd.DataFrame, first_stage: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """``<model>_score``/``<model>_rank`` per model, then ``best_rank``, ``n_models(_top10)``.

    A movie the model did not rank gets score NaN and rank :data:`UNRANKED`.
    """
    columns = {}
    width = 1 + max(
        [
            int(frame["item_idx"].to_numpy().max(initial=0))
            for frame in [pairs, *first_stage.values()]
        ]
    )
    keys = pair_keys(pairs, width)
    for name, candidates in first_stage.items():
        row = rows_of(keys, pair_keys(candidates, width))
        found = row >= 0
        score = np.full(len(pairs), np.nan, dtype=np.float32)
        rank = np.full(len(pairs), UNRANKED, dtype=np.float32)
        score[found] = candidates["score"].to_numpy(dtype=np.float32)[row[found]]
        rank[found] = candidates["rank"].to_numpy(dtype=np.float32)[row[found]]
        columns[f"{name}_score"], columns[f"{name}_rank"] = score, rank
    ranks = np.column_stack(
        [columns[f"{name}_rank"] for name in first_stage] or [np.full(len(pairs), UNRANKED)]
    ).astype(np.float32)
    columns["best_rank"] = ranks.min(axis=1)
    columns["n_models"] = (ranks < UNRANKED).sum(axis=1).astype(np.float32)
    columns["n_models_top10"] = (ranks <= TOP).sum(axis=1).astype(np.float32)
    return pd.DataFrame(columns)


def transition_features(
    pairs: pd.DataFrame,
    sequences: UserSequences,
    n_items: int,
    markov_k: tuple[int, ...],
    batch_size: int,
) -> pd.DataFrame:
    """``markov_<k>``: the Markov transition score from the user's last ``k`` movies."""
    columns = {}
    for k in markov_k:
        model = fitted(Markov(MarkovConfig(k=k)), TrainingData.of_sequences(sequences, n_items))
        columns[f"markov_{k}"] = _gather_per_user(pairs, model.score, batch_size)
    return pd.DataFrame(columns)


def consecutive_pairs(
    sequences: UserSequences, users: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of consecutive items of the users' histories: ``rows`` (index into
    ``users``), the earlier item and the later one."""
    users = np.asarray(users, dtype=np.int64)
    counts = np.maximum(sequences.lengths()[users] - 1, 0)
    rows = np.repeat(np.arange(len(users)), counts)
    steps = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    positions = sequences.offsets[users][rows] + steps
    return rows, sequences.items[positions], sequences.items[positions + 1]


def gap_fit(
    pairs: pd.DataFrame, sequences: UserSequences, n_items: int, batch_size: int
) -> np.ndarray:
    """``gap_fit``: the mean over the user's consecutive movies ``(a, b)`` of
    ``T[a, movie] · T[movie, b]``, ``T`` the row-normalised next-movie transitions.

    The test drops movies at random from the middle of each history, so each dropped
    movie sat between two movies that are now consecutive; a movie that others watch
    right after ``a`` and right before ``b`` probably filled that gap. This is the
    two-step path probability of a first-order Markov chain (Rendle et al., WWW 2010),
    read in both directions as the cloze task of BERT4Rec (Sun et al., CIKM 2019) is.
    """
    transitions = transition_matrix(sequences, n_items, lags=1, lag_decay=1.0)
    into = transitions.T.tocsr()  # into[b, movie] = T[movie, b]

    def block(users: np.ndarray) -> np.ndarray:
        rows, before, after = consecutive_pairs(sequences, users)
        paths = transitions[before].multiply(into[after]).tocsr()
        counts = np.bincount(rows, minlength=len(users))
        weights = 1.0 / np.maximum(counts[rows], 1)
        mean = sp.csr_matrix((weights, (rows, np.arange(len(rows)))), shape=(len(users), len(rows)))
        return (mean @ paths).toarray()

    return _gather_per_user(pairs, block, max(1, batch_size // 8))


def cosine_cooccurrence(matrix: sp.csr_matrix) -> np.ndarray:
    """Dense items × items ``|U_a ∩ U_b| / sqrt(|U_a| |U_b|)`` with a zero diagonal (float32).

    The counts are EASE's dense Gram matrix (exact in float32), divided a block of rows at a
    time: no sparse items × items product and no second items × items copy."""
    dense = gram_matrix(matrix, torch.device("cpu")).numpy()
    norms = np.sqrt(np.maximum(np.asarray(matrix.sum(axis=0)).ravel(), 1.0))
    for start in range(0, len(dense), COSINE_BLOCK_ROWS):
        block = slice(start, start + COSINE_BLOCK_ROWS)
        dense[block] = dense[block] / np.outer(norms[block], norms)
    np.fill_diagonal(dense, 0.0)
    return dense


def recent_weights(
    sequences: UserSequences, n_items: int, window: int, decay: float
) -> sp.csr_matrix:
    """users × items: the last ``window`` movies, the j-th most recent ``decay^(j-1)``, rows
    summing to 1 (0 for an empty history)."""
    users = np.arange(sequences.n_users)
    rows, ages, positions = recent_positions(sequences, users, window)
    weights = decay ** ages.astype(np.float64)
    totals = np.bincount(rows, weights=weights, minlength=len(users))
    return sp.csr_matrix(
        ((weights / totals[rows]).astype(np.float32), (rows, sequences.items[positions])),
        shape=(len(users), n_items),
    )


def recent_cooccurrence(
    pairs: pd.DataFrame,
    sequences: UserSequences,
    matrix: sp.csr_matrix,
    window: int,
    decay: float,
    batch_size: int,
) -> np.ndarray:
    """``recent_cooc``: Σ_j decay^(j-1) cos(item_j, movie) / Σ_j decay^(j-1), j ≤ window."""
    weights = recent_weights(sequences, matrix.shape[1], window, decay)
    cooc = cosine_cooccurrence(matrix)
    return _gather_per_user(pairs, lambda users: weights[users] @ cooc, batch_size)


def _search_sorted(keys: np.ndarray, needles: np.ndarray, side: str) -> np.ndarray:
    """``np.searchsorted(keys, needles, side)``, the needles looked up in sorted order: at
    millions of pairs the binary searches then walk the keys in cache order."""
    order = np.argsort(needles, kind="stable")
    found = np.empty(len(needles), dtype=np.int64)
    found[order] = np.searchsorted(keys, needles[order], side)
    return found


def window_popularity(
    pairs: pd.DataFrame, history: pd.DataFrame, user_last_time: np.ndarray, days: float
) -> tuple[np.ndarray, np.ndarray]:
    """Interactions of the pair's movie in the ``days`` before / after the user's last one.

    Before is ``[last - days, last)``, after ``(last, last + days]``; the pair's movie is
    unseen by the user, so both count other users only. A user without history gets 0.
    """
    times = history["time"].to_numpy(dtype=np.int64)
    start = times.min(initial=0)
    span = times.max(initial=0) - start + 1
    keys = np.sort(history["item_idx"].to_numpy(dtype=np.int64) * span + (times - start))
    last = user_last_time[pairs["user_idx"].to_numpy()]
    has = np.isfinite(last)
    last = np.where(has, last, start).astype(np.int64) - start
    width = int(days * SECONDS_PER_DAY)
    base = pairs["item_idx"].to_numpy(dtype=np.int64) * span

    def count(lo: np.ndarray, hi: np.ndarray, side: str) -> np.ndarray:
        lo_key, hi_key = base + np.clip(lo, 0, span - 1), base + np.clip(hi, 0, span - 1)
        inside = _search_sorted(keys, hi_key, side) - _search_sorted(keys, lo_key, side)
        return np.where(has, inside, 0).astype(np.float32)

    before = count(last - width, last, "left")
    after = count(last, last + width, "right")
    return before, after


def _people_overlap(people: pd.DataFrame, column: str, n_items: int) -> sp.csr_matrix:
    """Items × items 0/1: the two movies share at least one person of ``column``."""
    codes, _ = pd.factorize(people[column])
    incidence = sp.csr_matrix(
        (np.ones(len(people), dtype=np.float32), (people["item_idx"].to_numpy(), codes)),
        shape=(n_items, max(len(set(codes)), 1)),
    )
    incidence.data[:] = 1.0
    overlap = (incidence @ incidence.T).tocsr()
    overlap.data[:] = 1.0
    return overlap


def _genre_matrix(item_features: pd.DataFrame, n_items: int) -> np.ndarray:
    """Items × genres 0/1 (float32), rows in ``item_idx`` order."""
    genres = [c for c in item_features.columns if c.startswith("genre_")]
    table = item_features.set_index("item_idx")[genres].reindex(np.arange(n_items))
    return table.fillna(0).to_numpy(dtype=np.float32)


def affinity_features(
    pairs: pd.DataFrame,
    history_matrix: sp.csr_matrix,
    genres: np.ndarray,
    director_overlap: sp.csr_matrix,
    writer_overlap: sp.csr_matrix,
    batch_size: int = 1024,
) -> pd.DataFrame:
    """The user's share of the movie's genres, director and writer in their history."""
    history_matrix = sp.csr_matrix(history_matrix, dtype=np.float32)
    lengths = np.maximum(np.asarray(history_matrix.sum(axis=1)).ravel(), 1.0)
    genres_per_item = np.maximum(genres.sum(axis=1), 1.0)

    def genre_share(users: np.ndarray) -> np.ndarray:
        share = (history_matrix[users] @ genres) / lengths[users, None]
        return (share @ genres.T) / genres_per_item[None, :]

    def people_share(overlap: sp.csr_matrix) -> Callable[[np.ndarray], np.ndarray]:
        return lambda users: (history_matrix[users] @ overlap).toarray() / lengths[users, None]

    return pd.DataFrame(
        {
            "user_genre_share": _gather_per_user(pairs, genre_share, batch_size),
            "user_director_share": _gather_per_user(
                pairs, people_share(director_overlap), batch_size
            ),
            "user_writer_share": _gather_per_user(pairs, people_share(writer_overlap), batch_size),
        }
    )


def build_features(
    pairs: pd.DataFrame,
    first_stage: Mapping[str, pd.DataFrame],
    history: pd.DataFrame,
    history_matrix: sp.csr_matrix,
    item_features: pd.DataFrame,
    item_directors: pd.DataFrame,
    item_writers: pd.DataFrame,
    config: FeatureConfig,
) -> pd.DataFrame:
    """One row per candidate pair (sorted by user): ``user_idx, item_idx``, then :data:`FEATURES`.

    Reads only the history, its matrix and the side tables, never the held-out answers.
    """
    n_users, n_items = history_matrix.shape
    sequences = user_sequences(history, n_users)
    items = item_table(history, item_features, n_items, config.recent_days)
    users = user_table(history, items["year"].to_numpy(dtype=np.float64), n_users)
    u, i = pairs["user_idx"].to_numpy(), pairs["item_idx"].to_numpy()
    item_part = items.iloc[i].reset_index(drop=True)
    user_part = users.iloc[u].reset_index(drop=True)
    year = item_part["year"].to_numpy(dtype=np.float32)
    before, after = window_popularity(
        pairs, history, users["last_time"].to_numpy(), config.user_window_days
    )
    affinity = affinity_features(
        pairs, history_matrix, _genre_matrix(item_features, n_items),
        _people_overlap(item_directors, "director", n_items),
        _people_overlap(item_writers, "writer", n_items), config.batch_size,
    )  # fmt: skip
    recent_cooc = recent_cooccurrence(
        pairs, sequences, history_matrix, config.cooc_window, config.cooc_decay, config.batch_size
    )
    columns = pd.DataFrame(
        {
            "gap_fit": gap_fit(pairs, sequences, n_items, config.batch_size),
            "recent_cooc": recent_cooc,
            **{c: item_part[c].to_numpy() for c in ("item_pop", "item_pop_recent", "item_trend")},
            "item_pop_before_user_end": before,
            "item_pop_after_user_end": after,
            "seen_before_user_end": (
                item_part["first_time"].to_numpy() <= user_part["last_time"].to_numpy()
            ).astype(np.float32),
            "year": year,
            "year_minus_last_activity_year": year - user_part["last_activity_year"].to_numpy(),
            "year_vs_user_mean": year - user_part["mean_year"].to_numpy(),
            "year_vs_user_latest": year - user_part["latest_year"].to_numpy(),
            **{c: item_part[c].to_numpy() for c in CATEGORICAL},
            "user_len": user_part["user_len"].to_numpy(),
            "user_span_days": (
                (user_part["last_time"] - user_part["first_time"]) / SECONDS_PER_DAY
            ).to_numpy(dtype=np.float32),
            **{c: affinity[c].to_numpy() for c in affinity.columns},
        }
    )
    float_columns = [c for c in columns if c not in CATEGORICAL]
    columns[float_columns] = columns[float_columns].astype(np.float32)
    genre_names = [c for c in item_features.columns if c.startswith("genre_")]
    genre_part = pd.DataFrame(_genre_matrix(item_features, n_items)[i].astype(np.int8))
    genre_part.columns = genre_names
    return pd.concat(
        [
            pairs[PAIR].reset_index(drop=True),
            first_stage_features(pairs, first_stage),
            transition_features(pairs, sequences, n_items, config.markov_k, config.batch_size),
            columns,
            genre_part,
        ],
        axis=1,
    )


def feature_names(models: list[str], markov_k: tuple[int, ...], genres: list[str]) -> list[str]:
    """The feature columns :func:`build_features` writes, in :data:`FEATURES` order."""
    expand = {
        "<model>_score": [f"{m}_score" for m in models],
        "<model>_rank": [f"{m}_rank" for m in models],
        "markov_<k>": [f"markov_{k}" for k in markov_k],
        "<genre>": genres,
    }
    return [name for key in FEATURES for name in expand.get(key, [key])]


def first_stage_names(features: pd.DataFrame) -> list[str]:
    """The first-stage models of a :func:`build_features` frame (its ``<model>_score`` columns)."""
    return [c.removesuffix("_score") for c in features.columns if c.endswith("_score")]


def feature_columns(features: pd.DataFrame) -> list[str]:
    """Every column of a :func:`build_features` frame except the pair key (and the
    :data:`SPLIT` of extra training rows)."""
    return [c for c in features.columns if c not in PAIR and c != SPLIT]

"""Second stage: a LightGBM lambdarank model over first-stage candidates and side information.

The two-stage shape (cheap candidate generators, then a feature-rich ranker over their
union) follows Covington et al., "Deep Neural Networks for YouTube Recommendations"
(RecSys 2016). The ranker is LambdaMART (Burges, "From RankNet to LambdaRank to
LambdaMART", MSR-TR-2010-82) as implemented by LightGBM's ``lambdarank`` objective
(Ke et al., NeurIPS 2017), one query group per user.

Everything here is plain pandas/numpy/scipy/lightgbm. Features are computed from a
*history* (``split_train`` for the validation fit, all interactions for the final fit) and
the side tables only; the held-out answers enter solely as labels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.sparse as sp

from movie_rec.evaluation import CANDIDATE_COLUMNS, top_k_unseen
from movie_rec.models.baselines import LastItemTransition, MostPopular
from movie_rec.models.sequences import user_sequences

logger = logging.getLogger(__name__)

PAIR = ["user_idx", "item_idx"]
CATEGORICAL = ["director", "writer"]
# Columns that do not depend on which first-stage models or genres there are, in order.
BASE_FEATURES = [
    "item_pop",  # interactions of the movie in the history
    "item_pop_recent",  # interactions of the movie in the last `recent_share` of the time span
    "year",  # release year (NaN when unknown)
    "director",  # representative director, categorical code (-1 = none)
    "writer",  # representative writer, categorical code (-1 = none)
    "user_len",  # the user's history length
    "user_genre_share",  # mean over the movie's genres of the user's history share in that genre
    "user_same_director",  # the user's movies sharing any director with the movie
    "user_same_writer",  # the user's movies sharing any writer with the movie
    "year_vs_user_mean",  # year minus the mean year of the user's movies
    "year_vs_user_latest",  # year minus the latest year among the user's movies
    "seen_before_user_end",  # 1 when anyone watched the movie before the user's last time
    "after_last_item",  # times anyone watched the movie right after the user's latest movie
    "n_models",  # first-stage models that proposed the movie
]


def popular_candidates(
    matrix: sp.csr_matrix, n_popular: int, users: np.ndarray | None = None
) -> pd.DataFrame:
    """The ``n_popular`` most watched movies each user has not seen (via ``top_k_unseen``)."""
    return top_k_unseen(MostPopular(matrix).score, matrix, n_popular, users=users)


def candidate_union(
    first_stage: Mapping[str, pd.DataFrame],
    popular: pd.DataFrame,
    top_n: int,
    seen: sp.csr_matrix,
    users: np.ndarray | None = None,
) -> pd.DataFrame:
    """Distinct unseen ``(user_idx, item_idx)`` pairs: each model's top ``top_n`` plus ``popular``.

    An empty first-stage frame (a disabled model) contributes nothing. Restricted to
    ``users`` when given; sorted by user then item.
    """
    frames = [c.loc[c["rank"] <= top_n, PAIR] for c in first_stage.values() if len(c)]
    union = pd.concat([*frames, popular[PAIR]], ignore_index=True).astype("int64")
    union = union.drop_duplicates()
    if users is not None:
        union = union[union["user_idx"].isin(users)]
    is_seen = np.asarray(
        sp.csr_matrix(seen)[union["user_idx"].to_numpy(), union["item_idx"].to_numpy()]
    ).ravel()
    union = union[is_seen == 0]
    return union.sort_values(PAIR, kind="stable").reset_index(drop=True)


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


def _category_codes(values: pd.Series) -> np.ndarray:
    """Stable integer codes of a string column (sorted categories; -1 = missing)."""
    categories = np.sort(values.dropna().astype(str).unique())
    return pd.Categorical(values.astype("string"), categories=categories).codes.astype(np.int32)


def item_table(
    history: pd.DataFrame, item_features: pd.DataFrame, n_items: int, recent_share: float
) -> pd.DataFrame:
    """Per movie: popularity overall and recent, year, people codes, first watch time."""
    items = history["item_idx"].to_numpy()
    times = history["time"].to_numpy()
    start, end = (times.min(), times.max()) if len(times) else (0, 0)
    recent = items[times >= end - recent_share * (end - start)]
    first_time = np.full(n_items, np.inf)
    np.minimum.at(first_time, items, times.astype(np.float64))
    side = item_features.set_index("item_idx").reindex(np.arange(n_items))
    return pd.DataFrame(
        {
            "item_pop": np.bincount(items, minlength=n_items).astype(np.float32),
            "item_pop_recent": np.bincount(recent, minlength=n_items).astype(np.float32),
            "year": pd.to_numeric(side["year"], errors="coerce").to_numpy(dtype=np.float32),
            "director": _category_codes(side["director"]),
            "writer": _category_codes(side["writer"]),
            "first_time": first_time,
        }
    )


def user_table(history: pd.DataFrame, item_year: np.ndarray, n_users: int) -> pd.DataFrame:
    """Per user: history length, last interaction time, mean and latest year watched."""
    users = history["user_idx"].to_numpy()
    years = pd.Series(item_year[history["item_idx"].to_numpy()]).astype(np.float64)
    by_user = years.groupby(users)
    index = np.arange(n_users)
    return pd.DataFrame(
        {
            "user_len": np.bincount(users, minlength=n_users).astype(np.float32),
            "last_time": pd.Series(history["time"].to_numpy(), index=users)
            .groupby(level=0)
            .max()
            .reindex(index)
            .to_numpy(dtype=np.float64),
            "mean_year": by_user.mean().reindex(index).to_numpy(dtype=np.float32),
            "latest_year": by_user.max().reindex(index).to_numpy(dtype=np.float32),
        }
    )


def _gather_per_user(
    pairs: pd.DataFrame,
    dense_for: Callable[[np.ndarray], np.ndarray],
    batch_size: int,
) -> np.ndarray:
    """``dense_for(users)[row of user, item]`` for every pair, one user batch at a time.

    ``pairs`` must be sorted by user. Only a ``batch_size × n_items`` block exists at once.
    """
    user_ids = pairs["user_idx"].to_numpy()
    item_ids = pairs["item_idx"].to_numpy()
    users = np.unique(user_ids)
    out = np.empty(len(pairs), dtype=np.float32)
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        lo = np.searchsorted(user_ids, batch[0], side="left")
        hi = np.searchsorted(user_ids, batch[-1], side="right")
        rows = np.searchsorted(batch, user_ids[lo:hi])
        out[lo:hi] = dense_for(batch)[rows, item_ids[lo:hi]]
    return out


def affinity_features(
    pairs: pd.DataFrame,
    history_matrix: sp.csr_matrix,
    genres: np.ndarray,
    director_overlap: sp.csr_matrix,
    writer_overlap: sp.csr_matrix,
    batch_size: int = 1024,
) -> pd.DataFrame:
    """User–movie affinities from the user's history row and the movie's side information."""
    history_matrix = sp.csr_matrix(history_matrix, dtype=np.float32)
    lengths = np.maximum(np.asarray(history_matrix.sum(axis=1)).ravel(), 1.0)
    genres_per_item = np.maximum(genres.sum(axis=1), 1.0)

    def genre_share(users: np.ndarray) -> np.ndarray:
        share = (history_matrix[users] @ genres) / lengths[users, None]
        return (share @ genres.T) / genres_per_item[None, :]

    def same_people(overlap: sp.csr_matrix) -> Callable[[np.ndarray], np.ndarray]:
        return lambda users: (history_matrix[users] @ overlap).toarray()

    return pd.DataFrame(
        {
            "user_genre_share": _gather_per_user(pairs, genre_share, batch_size),
            "user_same_director": _gather_per_user(
                pairs, same_people(director_overlap), batch_size
            ),
            "user_same_writer": _gather_per_user(pairs, same_people(writer_overlap), batch_size),
        }
    )


def first_stage_features(
    pairs: pd.DataFrame, first_stage: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """``<model>_score`` and ``<model>_rank`` of each pair (NaN when the model did not propose it)."""
    columns = {}
    for name, candidates in first_stage.items():
        proposed = pairs.merge(
            candidates[[*PAIR, "score", "rank"]], on=PAIR, how="left", sort=False
        )
        columns[f"{name}_score"] = proposed["score"].to_numpy(dtype=np.float32)
        columns[f"{name}_rank"] = proposed["rank"].to_numpy(dtype=np.float32)
    return pd.DataFrame(columns, index=pairs.index)


def after_last_item(
    pairs: pd.DataFrame, history: pd.DataFrame, n_users: int, n_items: int
) -> np.ndarray:
    """How often anyone watched the pair's movie right after the user's latest movie."""
    transitions = LastItemTransition(user_sequences(history, n_users), n_items)
    last = transitions.last[pairs["user_idx"].to_numpy()]
    counts = np.asarray(
        transitions.transitions[np.maximum(last, 0), pairs["item_idx"].to_numpy()]
    ).ravel()
    return np.where(last >= 0, counts, 0.0).astype(np.float32)


def build_features(
    pairs: pd.DataFrame,
    first_stage: Mapping[str, pd.DataFrame],
    history: pd.DataFrame,
    history_matrix: sp.csr_matrix,
    item_features: pd.DataFrame,
    item_directors: pd.DataFrame,
    item_writers: pd.DataFrame,
    recent_share: float = 0.1,
    batch_size: int = 1024,
) -> pd.DataFrame:
    """One row per candidate pair: ``user_idx, item_idx`` then the feature columns.

    Columns: ``<model>_score``/``<model>_rank`` per first-stage model, :data:`BASE_FEATURES`
    and the ``genre_*`` 0/1 columns. Reads only the history, its matrix and the side
    tables, never the held-out answers.
    """
    n_users, n_items = history_matrix.shape
    items = item_table(history, item_features, n_items, recent_share)
    users = user_table(history, items["year"].to_numpy(), n_users)
    genres = _genre_matrix(item_features, n_items)
    u = pairs["user_idx"].to_numpy()
    i = pairs["item_idx"].to_numpy()
    item_part = items.iloc[i].reset_index(drop=True)
    user_part = users.iloc[u].reset_index(drop=True)
    affinity = affinity_features(
        pairs,
        history_matrix,
        genres,
        _people_overlap(item_directors, "director", n_items),
        _people_overlap(item_writers, "writer", n_items),
        batch_size,
    )
    proposed = first_stage_features(pairs, first_stage).reset_index(drop=True)
    base = pd.DataFrame(
        {
            **{c: item_part[c].to_numpy() for c in ("item_pop", "item_pop_recent", "year")},
            **{c: item_part[c].to_numpy() for c in CATEGORICAL},
            "user_len": user_part["user_len"].to_numpy(),
            **{c: affinity[c].to_numpy() for c in affinity.columns},
            "year_vs_user_mean": item_part["year"].to_numpy() - user_part["mean_year"].to_numpy(),
            "year_vs_user_latest": item_part["year"].to_numpy()
            - user_part["latest_year"].to_numpy(),
            "seen_before_user_end": (
                item_part["first_time"].to_numpy() <= user_part["last_time"].to_numpy()
            ).astype(np.float32),
            "after_last_item": after_last_item(pairs, history, n_users, n_items),
            "n_models": proposed[[f"{name}_rank" for name in first_stage]]
            .notna()
            .sum(axis=1)
            .to_numpy(np.float32),
        }
    )
    genre_names = [c for c in item_features.columns if c.startswith("genre_")]
    genre_part = pd.DataFrame(genres[i].astype(np.int8), columns=genre_names)
    return pd.concat(
        [
            pairs[PAIR].reset_index(drop=True),
            proposed,
            base[BASE_FEATURES],
            genre_part,
        ],
        axis=1,
    )


def feature_columns(features: pd.DataFrame) -> list[str]:
    """Every column of a :func:`build_features` frame except the pair key."""
    return [c for c in features.columns if c not in PAIR]


def label_pairs(pairs: pd.DataFrame, answers: pd.DataFrame) -> np.ndarray:
    """1 where ``(user_idx, item_idx)`` is a held-out answer, else 0."""
    truth = answers[PAIR].drop_duplicates().assign(_label=1)
    labelled = pairs[PAIR].merge(truth, on=PAIR, how="left", sort=False)
    return labelled["_label"].fillna(0).to_numpy(dtype=np.int8)


def assign_folds(users: np.ndarray, n_folds: int, seed: int) -> pd.Series:
    """Fold (0..n_folds-1) of each distinct user: a seeded shuffle dealt round-robin."""
    distinct = np.unique(users)
    if n_folds < 2 or n_folds > len(distinct):
        raise ValueError(f"n_folds must be in [2, {len(distinct)}] users, got {n_folds}")
    order = np.random.default_rng(seed).permutation(len(distinct))
    folds = np.empty(len(distinct), dtype=np.int64)
    folds[order] = np.arange(len(distinct)) % n_folds
    return pd.Series(folds, index=distinct, name="fold")


@dataclass(frozen=True)
class RankerConfig:
    """LightGBM settings and the early-stopping split.

    Attributes:
        lgbm: LightGBM training parameters (``learning_rate``, ``num_leaves``...).
        max_rounds: boosting rounds cap.
        early_stopping_share: share of a fold's training users held back for early stopping.
        early_stopping_rounds: rounds without a better NDCG@10 before stopping.
        max_train_users: each model trains on a seeded sample of at most this many users
            (None = all); training time grows with rows, and a few thousand queries are
            plenty for a few dozen features.
        seed: seeds LightGBM and the user splits.
        num_threads: LightGBM threads (0 = OpenMP default).
    """

    lgbm: dict[str, Any] = field(default_factory=dict)
    max_rounds: int = 500
    early_stopping_share: float = 0.1
    early_stopping_rounds: int = 30
    max_train_users: int | None = None
    seed: int = 42
    num_threads: int = 0

    def params(self) -> dict[str, Any]:
        """Training parameters: lambdarank, NDCG@10, seeded and deterministic."""
        return {
            **self.lgbm,
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }


def _group_sizes(user_ids: np.ndarray) -> np.ndarray:
    """Sizes of consecutive runs of equal user ids (rows must be sorted by user)."""
    starts = np.flatnonzero(np.r_[True, user_ids[1:] != user_ids[:-1]])
    return np.diff(np.r_[starts, len(user_ids)])


def _with_positives(user_ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Row mask of users with at least one positive: all-negative groups carry no gradient."""
    has = pd.Series(labels).groupby(user_ids).transform("max").to_numpy()
    return has > 0


def sample_users(
    features: pd.DataFrame, labels: np.ndarray, max_users: int | None, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """All rows of a seeded sample of at most ``max_users`` users (None = every user)."""
    user_ids = features["user_idx"].to_numpy()
    distinct = np.unique(user_ids)
    if max_users is None or len(distinct) <= max_users:
        return features, labels
    chosen = np.random.default_rng(seed).choice(distinct, size=max_users, replace=False)
    mask = np.isin(user_ids, chosen)
    return features.loc[mask].reset_index(drop=True), labels[mask]


def _dataset(rows: pd.DataFrame, labels: np.ndarray, reference: lgb.Dataset | None = None):
    """A LightGBM dataset with one query group per user and the people as categoricals."""
    return lgb.Dataset(
        rows[feature_columns(rows)],
        label=labels,
        group=_group_sizes(rows["user_idx"].to_numpy()),
        categorical_feature=[c for c in CATEGORICAL if c in rows],
        reference=reference,
        free_raw_data=True,
    )


def fit_ranker(
    features: pd.DataFrame,
    labels: np.ndarray,
    config: RankerConfig,
    rounds: int | None = None,
) -> tuple[lgb.Booster, int]:
    """Train on ``features`` (sorted by user); returns the booster and its round count.

    Without ``rounds`` a seeded share of the users is held back and training stops
    early on their NDCG@10; with it, all users train for exactly that many rounds.
    Users whose candidates hold no answer are dropped (no lambdarank gradient), then at
    most ``config.max_train_users`` users are kept.
    """
    keep = _with_positives(features["user_idx"].to_numpy(), labels)
    rows, y = sample_users(
        features.loc[keep].reset_index(drop=True), labels[keep], config.max_train_users, config.seed
    )
    if rounds is not None:
        return lgb.train(config.params(), _dataset(rows, y), num_boost_round=rounds), rounds
    user_ids = rows["user_idx"].to_numpy()
    distinct = np.unique(user_ids)
    n_stop = max(1, round(config.early_stopping_share * len(distinct)))
    stop_users = np.random.default_rng(config.seed).choice(
        distinct, size=min(n_stop, len(distinct) - 1), replace=False
    )
    is_stop = np.isin(user_ids, stop_users)
    train_set = _dataset(rows.loc[~is_stop], y[~is_stop])
    booster = lgb.train(
        config.params(),
        train_set,
        num_boost_round=config.max_rounds,
        valid_sets=[_dataset(rows.loc[is_stop], y[is_stop], reference=train_set)],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )
    return booster, max(int(booster.best_iteration or booster.current_iteration()), 1)


def predict(booster: lgb.Booster, features: pd.DataFrame, rounds: int | None = None) -> np.ndarray:
    """Ranker scores of the feature rows (using the first ``rounds`` trees when given)."""
    if features.empty:
        return np.empty(0, dtype=np.float64)
    return booster.predict(features[feature_columns(features)], num_iteration=rounds)


@dataclass
class OutOfFold:
    """Out-of-fold scores and what each fold model saw.

    Attributes:
        scores: one score per row of the features, from the fold model of its user.
        folds: fold of each user.
        trained_on: per fold, the users its model could train or early-stop on.
        best_iterations: rounds each fold model kept.
    """

    scores: np.ndarray
    folds: pd.Series
    trained_on: list[np.ndarray]
    best_iterations: list[int]


def out_of_fold_scores(
    features: pd.DataFrame, labels: np.ndarray, n_folds: int, config: RankerConfig
) -> OutOfFold:
    """User-grouped K-fold: every user is scored by a model that never saw that user."""
    user_ids = features["user_idx"].to_numpy()
    folds = assign_folds(user_ids, n_folds, config.seed)
    row_fold = folds.reindex(user_ids).to_numpy()
    scores = np.empty(len(features), dtype=np.float64)
    trained_on, best_iterations = [], []
    for fold in range(n_folds):
        held = row_fold == fold
        booster, rounds = fit_ranker(
            features.loc[~held].reset_index(drop=True), labels[~held], config
        )
        scores[held] = predict(booster, features.loc[held], rounds)
        trained_on.append(np.unique(user_ids[~held]))
        best_iterations.append(rounds)
        logger.info("lgbm_ranker fold %d/%d: %d rounds", fold + 1, n_folds, rounds)
    return OutOfFold(scores, folds, trained_on, best_iterations)


def rank_candidates(pairs: pd.DataFrame, scores: np.ndarray, k: int) -> pd.DataFrame:
    """Top ``k`` pairs per user by score as ``user_idx, item_idx, score, rank`` (1 = best).

    Ties break on the smaller item id, so the order is deterministic.
    """
    frame = pd.DataFrame(
        {
            "user_idx": pairs["user_idx"].to_numpy(dtype=np.int64),
            "item_idx": pairs["item_idx"].to_numpy(dtype=np.int64),
            "score": np.asarray(scores, dtype=np.float64),
        }
    )
    frame = frame.sort_values(
        ["user_idx", "score", "item_idx"], ascending=[True, False, True], kind="stable"
    )
    frame["rank"] = frame.groupby("user_idx").cumcount().to_numpy(dtype=np.int64) + 1
    frame = frame[frame["rank"] <= k].reset_index(drop=True)
    return frame.astype({"score": np.float32})[CANDIDATE_COLUMNS]


def feature_importance(booster: lgb.Booster) -> pd.DataFrame:
    """``feature, gain`` of a fitted ranker, largest gain first."""
    gain = booster.feature_importance(importance_type="gain")
    table = pd.DataFrame({"feature": booster.feature_name(), "gain": gain})
    return table.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)

"""Second stage: a LightGBM lambdarank model over first-stage candidates and side information.

The two-stage shape (cheap candidate generators, then a feature-rich ranker over their
union) follows Covington et al., "Deep Neural Networks for YouTube Recommendations"
(RecSys 2016). The ranker is LambdaMART (Burges, "From RankNet to LambdaRank to
LambdaMART", MSR-TR-2010-82) as implemented by LightGBM's ``lambdarank`` objective
(Ke et al., NeurIPS 2017), one query group per user.

The candidates, their features and labels come from :mod:`movie_rec.second_stage.features`;
this module trains, scores and ranks them. Training is user-grouped K-fold, repeated over
``bags`` seeded fold assignments: every validation user is scored out of fold by the mean
of one model per bag that never saw them, and the final candidates the same way, by the
first fold model of each bag (cross-validation bagging: on a few hundred users a single ranker's scores vary
with its early-stopping split as much as a feature changes them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import lightgbm as lgb
import numpy as np
import pandas as pd

from movie_rec.evaluation import CANDIDATE_COLUMNS, top_k_pairs
from movie_rec.second_stage.config import RankerConfig
from movie_rec.second_stage.features import CATEGORICAL, SPLIT, feature_columns

logger = logging.getLogger(__name__)


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
class LabelledRows:
    """Candidate rows (:func:`movie_rec.second_stage.features.build_features`, each with its
    :data:`~movie_rec.second_stage.features.SPLIT`) and their grades (:func:`label_pairs`)."""

    features: pd.DataFrame
    labels: np.ndarray


def query_ids(rows: pd.DataFrame) -> np.ndarray:
    """One id per query, a (split, user) pair: a user's rows of the validation split (no
    :data:`SPLIT` column, or 0 there) and of each extra split are separate queries."""
    return _query_of(_split_of(rows), rows["user_idx"].to_numpy(dtype=np.int64))


def _query_of(splits: np.ndarray, users: np.ndarray) -> np.ndarray:
    """The query id of each (split, user): the user's id in the validation split (0)."""
    return splits * (int(users.max(initial=0)) + 1) + users


def _group_sizes(query: np.ndarray) -> np.ndarray:
    """Sizes of consecutive runs of equal query ids (rows must be sorted by query)."""
    starts = np.flatnonzero(np.r_[True, query[1:] != query[:-1]])
    return np.diff(np.r_[starts, len(query)])


def _with_positives(query: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Row mask of queries with at least one positive: all-negative groups carry no gradient."""
    has = pd.Series(labels).groupby(query).transform("max").to_numpy()
    return has > 0


def _split_of(rows: pd.DataFrame) -> np.ndarray:
    """Each row's holdout (0 = the validation split, or no :data:`SPLIT` column)."""
    if SPLIT not in rows:
        return np.zeros(len(rows), dtype=np.int64)
    return rows[SPLIT].fillna(0).to_numpy(dtype=np.int64)


def _user_sample(users: np.ndarray, max_users: int | None, seed: int) -> np.ndarray:
    """Row mask of a seeded sample of at most ``max_users`` distinct users (None = all)."""
    distinct = np.unique(users)
    if max_users is None or len(distinct) <= max_users:
        return np.ones(len(users), dtype=bool)
    chosen = np.random.default_rng(seed).choice(distinct, size=max_users, replace=False)
    return np.isin(users, chosen)


def _negative_sample(labels: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Row mask of every answer and a seeded ``share`` of the other rows."""
    if share >= 1:
        return np.ones(len(labels), dtype=bool)
    return (labels > 0) | (np.random.default_rng(seed).random(len(labels)) < share)


def training_rows(
    features: pd.DataFrame,
    labels: np.ndarray,
    config: RankerConfig,
    held: np.ndarray | None = None,
    extra: LabelledRows | None = None,
) -> LabelledRows:
    """The rows a model trains on, chosen on ids and labels before any row is copied.

    The rows not ``held`` out, then the ``extra`` rows of the same users; of those, the
    queries with an answer (all-negative groups carry no lambdarank gradient), then all
    queries of a seeded sample of at most ``config.max_train_users`` users, then every
    answer and a seeded ``config.negative_share`` of the other rows. Only the chosen rows
    are copied: at scale the candidates are millions of rows of dozens of features.
    """
    kept = np.ones(len(features), dtype=bool) if held is None else ~held
    parts = [(features, labels, np.flatnonzero(kept))]
    if extra is not None and not extra.features.empty:
        held_users = np.unique(features["user_idx"].to_numpy()[~kept])
        extra_users = extra.features["user_idx"].to_numpy()
        parts.append(
            (extra.features, extra.labels, np.flatnonzero(~np.isin(extra_users, held_users)))
        )
    users = np.concatenate([rows["user_idx"].to_numpy(np.int64)[at] for rows, _, at in parts])
    splits = np.concatenate([_split_of(rows)[at] for rows, _, at in parts])
    y = np.concatenate([grades[at] for _, grades, at in parts])
    query = _query_of(splits, users)
    chosen = _with_positives(query, y)
    chosen[chosen] = _user_sample(users[chosen], config.max_train_users, config.seed)
    chosen[chosen] = _negative_sample(y[chosen], config.negative_share, config.seed)
    pieces, offset = [], 0
    for rows, _, at in parts:
        pieces.append(rows.iloc[at[chosen[offset : offset + len(at)]]])
        offset += len(at)
    return LabelledRows(pd.concat(pieces, ignore_index=True), y[chosen])


def feature_matrix(rows: pd.DataFrame) -> np.ndarray:
    """The feature columns as one float32 block, LightGBM's own precision (a pandas frame
    would widen every column to float64 beside int codes: twice the memory)."""
    columns = feature_columns(rows)
    block = np.empty((len(rows), len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        block[:, j] = rows[column].to_numpy(dtype=np.float32)
    return block


def _dataset(
    rows: pd.DataFrame,
    labels: np.ndarray,
    config: RankerConfig,
    reference: lgb.Dataset | None = None,
) -> lgb.Dataset:
    """A LightGBM dataset with one query group per user and the people as categoricals.

    For the binary objective the label is "a held-out answer" and each answer row weighs its
    kind's gain (:data:`KIND_GRADES` gives the grade of each kind)."""
    weight = None
    if config.objective == "binary":
        gains = np.asarray(config.label_gain(), dtype=np.float64)
        weight = np.where(labels > 0, gains[labels], 1.0 / config.negative_share)
        labels = (labels > 0).astype(np.int8)
    return lgb.Dataset(
        feature_matrix(rows),
        label=labels,
        weight=weight,
        group=_group_sizes(query_ids(rows)),
        feature_name=feature_columns(rows),
        categorical_feature=[c for c in CATEGORICAL if c in rows],
        reference=reference,
        free_raw_data=True,
    )


def fit_ranker(
    rows: LabelledRows, config: RankerConfig, rounds: int | None = None
) -> tuple[lgb.Booster, int]:
    """Train on exactly ``rows`` (sorted by query, see :func:`training_rows`); returns the
    booster and its round count.

    Without ``rounds`` a seeded share of the users is held back and training stops early on
    their NDCG@10 (or log loss); with it, all users train for exactly that many rounds.
    """
    features, y = rows.features, rows.labels
    if rounds is not None:
        return lgb.train(
            config.params(), _dataset(features, y, config), num_boost_round=rounds
        ), rounds
    user_ids = features["user_idx"].to_numpy()
    distinct = np.unique(user_ids)
    n_stop = max(1, round(config.early_stopping_share * len(distinct)))
    stop_users = np.random.default_rng(config.seed).choice(
        distinct, size=min(n_stop, len(distinct) - 1), replace=False
    )
    is_stop = np.isin(user_ids, stop_users)
    train_set = _dataset(features.loc[~is_stop], y[~is_stop], config)
    booster = lgb.train(
        config.params(),
        train_set,
        num_boost_round=config.max_rounds,
        valid_sets=[_dataset(features.loc[is_stop], y[is_stop], config, reference=train_set)],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )
    return booster, max(int(booster.best_iteration or booster.current_iteration()), 1)


PREDICT_CHUNK_ROWS = 1 << 19  # rows converted to float32 and scored at a time (~2 MB a column)
PREDICT_THREADS = 0  # LightGBM threads when scoring (0 = every core; rows score independently)


@dataclass
class FoldModel:
    """One fold model: its booster, the rounds it kept and the users it could learn from."""

    booster: lgb.Booster
    rounds: int
    trained_on: np.ndarray

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return mean_prediction([self], features)


def mean_prediction(
    models: list[FoldModel], features: pd.DataFrame, rows: np.ndarray | None = None
) -> np.ndarray:
    """The mean score of ``models`` on the feature rows at positions ``rows`` (all rows when
    None), in chunks: each chunk is converted once, for every model, and memory stays flat
    however many rows and models there are."""
    positions = np.arange(len(features)) if rows is None else np.asarray(rows)
    scores = np.zeros(len(positions), dtype=np.float64)
    columns = feature_columns(features)
    for start in range(0, len(positions), PREDICT_CHUNK_ROWS):
        chunk = positions[start : start + PREDICT_CHUNK_ROWS]
        block = feature_matrix(features.iloc[chunk][columns])
        for model in models:
            scores[start : start + len(chunk)] += model.booster.predict(
                block, num_iteration=model.rounds, num_threads=PREDICT_THREADS
            )
    return scores / max(len(models), 1)


@dataclass
class OutOfFold:
    """Out-of-fold scores and the fold models behind them.

    Attributes:
        scores: one score per row of the features: the mean over the bags of the fold
            model of its user (one that never saw the user).
        folds: per bag, the fold of each user.
        models: per bag, its fold models in fold order.
    """

    scores: np.ndarray
    folds: list[pd.Series]
    models: list[list[FoldModel]]

    @property
    def best_iterations(self) -> list[int]:
        """Rounds each fold model kept, bag after bag."""
        return [model.rounds for bag in self.models for model in bag]

    def final_models(self) -> list[FoldModel]:
        """The first fold model of each bag: their mean scores the users none of the fold
        models saw (the final candidates, :func:`mean_prediction`) as a validation user is
        scored out of fold, by one model a bag; scoring with every fold model would cost
        ``n_folds`` times as much (at the competition's size, 10.7M pairs: minutes)."""
        return [bag[0] for bag in self.models]


def out_of_fold_scores(
    features: pd.DataFrame,
    labels: np.ndarray,
    n_folds: int,
    config: RankerConfig,
    extra: LabelledRows | None = None,
) -> OutOfFold:
    """User-grouped K-fold, once per bag: every user is scored by models that never saw them.

    ``extra`` rows (other holdouts of the same users, :mod:`movie_rec.second_stage.holdouts`) only
    train: a fold model learns from the extra rows of its training users, never from those
    of the users it scores.
    """
    user_ids = features["user_idx"].to_numpy()
    scores = np.zeros(len(features), dtype=np.float64)
    bag_folds, bag_models = [], []
    for bag in range(config.bags):
        bag_config = replace(config, seed=config.seed + bag)
        folds = assign_folds(user_ids, n_folds, bag_config.seed)
        row_fold = folds.reindex(user_ids).to_numpy()
        models = []
        for fold in range(n_folds):
            held = row_fold == fold
            rows = training_rows(features, labels, bag_config, held, extra)
            booster, rounds = fit_ranker(rows, bag_config)
            del rows
            model = FoldModel(booster, rounds, np.unique(user_ids[~held]))
            scores[held] += mean_prediction([model], features, np.flatnonzero(held))
            models.append(model)
            logger.info(
                "lgbm_ranker bag %d/%d fold %d/%d: %d rounds",
                bag + 1, config.bags, fold + 1, n_folds, rounds,
            )  # fmt: skip
        bag_folds.append(folds)
        bag_models.append(models)
    return OutOfFold(scores / config.bags, bag_folds, bag_models)


def rank_candidates(pairs: pd.DataFrame, scores: np.ndarray, k: int) -> pd.DataFrame:
    """Top ``k`` pairs per user by score as ``user_idx, item_idx, score, rank`` (1 = best).

    Ties break on the smaller item id, so the order is deterministic.
    """
    users = pairs["user_idx"].to_numpy(dtype=np.int64)
    items = pairs["item_idx"].to_numpy(dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    top, rank = top_k_pairs(users, items, scores, k)
    frame = pd.DataFrame(
        {"user_idx": users[top], "item_idx": items[top], "score": scores[top], "rank": rank}
    )
    return frame.astype({"score": np.float32})[CANDIDATE_COLUMNS]


def feature_importance(boosters: list[lgb.Booster]) -> pd.DataFrame:
    """``feature, gain``: each feature's mean gain over the boosters, largest first."""
    gain = np.mean([booster.feature_importance(importance_type="gain") for booster in boosters], 0)
    table = pd.DataFrame({"feature": boosters[0].feature_name(), "gain": gain})
    return table.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)

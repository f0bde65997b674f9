"""The second-stage ranker's candidates, their labels and the recall ceiling they set.

The candidates of a user are the union of every first-stage model's top ``top_n`` and the
most popular unseen movies (Covington et al., "Deep Neural Networks for YouTube
Recommendations", RecSys 2016); :func:`candidate_recall_by_source` says how many of the
held-out answers each source holds and what only it holds; :func:`label_pairs` grades the
candidates that are answers (the only place the answers meet the ranker's rows).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movie_rec import records
from movie_rec.evaluation import top_k_unseen
from movie_rec.models.baselines import MostPopular, PopularConfig
from movie_rec.models.protocol import TrainingData, fitted

PAIR = ["user_idx", "item_idx"]
POPULAR_SOURCE = "n_popular"  # the candidate source of the most popular unseen movies


def popular_candidates(
    matrix: sp.csr_matrix, n_popular: int, users: np.ndarray | None = None
) -> pd.DataFrame:
    """The ``n_popular`` most watched movies each user has not seen (via ``top_k_unseen``)."""
    popular = fitted(MostPopular(PopularConfig()), TrainingData(matrix))
    return top_k_unseen(popular.score, matrix, n_popular, users=users)


def pair_keys(frame: pd.DataFrame, width: int) -> np.ndarray:
    """One int64 key per ``(user_idx, item_idx)`` row, ``user · width + item``: sorting the keys
    sorts by user then item (``width`` above every item id)."""
    return frame["user_idx"].to_numpy(np.int64) * width + frame["item_idx"].to_numpy(np.int64)


def distinct_keys(keys: np.ndarray) -> np.ndarray:
    """The distinct keys, sorted (one sort: ``np.unique`` hashes, 10x slower on 16M keys)."""
    ordered = np.sort(keys)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def rows_of(keys: np.ndarray, table_keys: np.ndarray) -> np.ndarray:
    """For each key, the row of ``table_keys`` (distinct) that holds it, -1 where none does: a
    left join on sorted integer keys instead of a pandas merge of two columns."""
    if len(table_keys) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    order = np.argsort(table_keys, kind="stable")
    ordered = table_keys[order]
    at = np.minimum(np.searchsorted(ordered, keys), len(ordered) - 1)
    return np.where(ordered[at] == keys, order[at], -1)


def _top_pairs(candidates: pd.DataFrame, top_n: int) -> pd.DataFrame:
    return candidates.loc[candidates["rank"] <= top_n, PAIR]


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
    width = seen.shape[1]
    frames = [_top_pairs(c, top_n) for c in first_stage.values() if len(c)]
    keys = distinct_keys(np.concatenate([pair_keys(f, width) for f in [*frames, popular[PAIR]]]))
    user, item = keys // width, keys % width
    if users is not None:
        kept = np.isin(user, users)
        user, item = user[kept], item[kept]
    unseen = np.asarray(sp.csr_matrix(seen)[user, item]).ravel() == 0
    return pd.DataFrame({"user_idx": user[unseen], "item_idx": item[unseen]})


def _contains(pairs: pd.DataFrame, truth: pd.DataFrame, width: int) -> np.ndarray:
    """For each row of ``truth``, whether ``pairs`` holds its (user, item)."""
    return rows_of(pair_keys(truth, width), pair_keys(pairs, width)) >= 0


def candidate_recall_by_source(
    first_stage: Mapping[str, pd.DataFrame],
    popular: pd.DataFrame,
    answers: pd.DataFrame,
    top_n: int,
) -> pd.DataFrame:
    """The recall ceiling of each candidate source and what it adds to the others
    (:data:`movie_rec.records.CANDIDATE_CEILING`, the report's candidate ceiling).

    One row per first-stage model (its top ``top_n``), ``n_popular`` (the most popular unseen
    movies, ``popular``) and ``union`` (all of them): ``recall`` is the share of the held-out
    answers the source contains, ``adds`` the share it contains and no other source does
    (missing for the union), each also per ``kind`` (``recall_last``, ``adds_random``, ...);
    ``per_user`` the mean candidates per answered user.
    """
    truth = answers[[*PAIR, "kind"]].drop_duplicates(PAIR).reset_index(drop=True)
    answered = truth["user_idx"].unique()
    sources = {name: _top_pairs(c, top_n) for name, c in first_stage.items()}
    sources[POPULAR_SOURCE] = popular[PAIR]
    width = 1 + max(
        int(f["item_idx"].to_numpy().max(initial=0)) for f in [truth, *sources.values()]
    )
    hits = {name: _contains(pairs, truth, width) for name, pairs in sources.items()}
    kinds = {"": np.ones(len(truth), dtype=bool)}
    kinds |= {f"_{kind}": (truth["kind"] == kind).to_numpy() for kind in ("last", "random")}

    def shares(column: str, hit: np.ndarray | None) -> dict[str, float]:
        return {
            f"{column}{suffix}": hit[rows].mean() if hit is not None and rows.any() else np.nan
            for suffix, rows in kinds.items()
        }

    def per_user(pairs: pd.DataFrame) -> float:
        return pairs["user_idx"].isin(answered).sum() / max(len(answered), 1)

    every = distinct_keys(np.concatenate([pair_keys(pairs, width) for pairs in sources.values()]))
    all_pairs = pd.DataFrame({"user_idx": every // width})

    rows = []
    for name, hit in hits.items():
        others = [h for other, h in hits.items() if other != name]
        covered = np.logical_or.reduce(others) if others else np.zeros_like(hit)
        adds = hit & ~covered
        rows.append({"source": name, **shares("recall", hit), **shares("adds", adds),
                     "per_user": per_user(sources[name])})  # fmt: skip
    union = np.logical_or.reduce(list(hits.values()))
    rows.append({"source": "union", **shares("recall", union), **shares("adds", None),
                 "per_user": per_user(all_pairs)})  # fmt: skip
    return records.checked(records.CANDIDATE_CEILING, pd.DataFrame(rows))


KIND_GRADES = {"last": 1, "random": 2}  # the relevance grade of a held-out answer, by kind


def label_pairs(pairs: pd.DataFrame, answers: pd.DataFrame) -> np.ndarray:
    """The grade of ``(user_idx, item_idx)``: :data:`KIND_GRADES` of its kind where it is a
    held-out answer, else 0. The ranker's ``kind_gain`` says what each grade is worth."""
    truth = answers[[*PAIR, "kind"]].drop_duplicates(PAIR)
    width = 1 + max(int(frame["item_idx"].to_numpy().max(initial=0)) for frame in (pairs, truth))
    row = rows_of(pair_keys(pairs, width), pair_keys(truth, width))
    labels = np.zeros(len(pairs), dtype=np.int8)
    labels[row >= 0] = truth["kind"].map(KIND_GRADES).to_numpy(dtype=np.int8)[row[row >= 0]]
    return labels

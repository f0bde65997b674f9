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
    frames = [_top_pairs(c, top_n) for c in first_stage.values() if len(c)]
    union = pd.concat([*frames, popular[PAIR]], ignore_index=True).astype("int64")
    union = union.drop_duplicates()
    if users is not None:
        union = union[union["user_idx"].isin(users)]
    is_seen = np.asarray(
        sp.csr_matrix(seen)[union["user_idx"].to_numpy(), union["item_idx"].to_numpy()]
    ).ravel()
    union = union[is_seen == 0]
    return union.sort_values(PAIR, kind="stable").reset_index(drop=True)


def _contains(pairs: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """For each row of ``truth``, whether ``pairs`` holds its (user, item)."""
    marked = truth[PAIR].merge(pairs.drop_duplicates().assign(_in=True), on=PAIR, how="left")
    return marked["_in"].fillna(False).to_numpy(dtype=bool)


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
    hits = {name: _contains(pairs, truth) for name, pairs in sources.items()}
    kinds = {"": np.ones(len(truth), dtype=bool)}
    kinds |= {f"_{kind}": (truth["kind"] == kind).to_numpy() for kind in ("last", "random")}

    def shares(column: str, hit: np.ndarray | None) -> dict[str, float]:
        return {
            f"{column}{suffix}": hit[rows].mean() if hit is not None and rows.any() else np.nan
            for suffix, rows in kinds.items()
        }

    def per_user(pairs: pd.DataFrame) -> float:
        return pairs["user_idx"].isin(answered).sum() / max(len(answered), 1)

    rows = []
    for name, hit in hits.items():
        others = [h for other, h in hits.items() if other != name]
        covered = np.logical_or.reduce(others) if others else np.zeros_like(hit)
        adds = hit & ~covered
        rows.append({"source": name, **shares("recall", hit), **shares("adds", adds),
                     "per_user": per_user(sources[name])})  # fmt: skip
    union = np.logical_or.reduce(list(hits.values()))
    all_pairs = pd.concat(list(sources.values()), ignore_index=True).drop_duplicates()
    rows.append({"source": "union", **shares("recall", union), **shares("adds", None),
                 "per_user": per_user(all_pairs)})  # fmt: skip
    return records.checked(records.CANDIDATE_CEILING, pd.DataFrame(rows))


KIND_GRADES = {"last": 1, "random": 2}  # the relevance grade of a held-out answer, by kind


def label_pairs(pairs: pd.DataFrame, answers: pd.DataFrame) -> np.ndarray:
    """The grade of ``(user_idx, item_idx)``: :data:`KIND_GRADES` of its kind where it is a
    held-out answer, else 0. The ranker's ``kind_gain`` says what each grade is worth."""
    truth = answers[[*PAIR, "kind"]].drop_duplicates(PAIR)
    truth = truth.assign(_label=truth["kind"].map(KIND_GRADES))[[*PAIR, "_label"]]
    labelled = pairs[PAIR].merge(truth, on=PAIR, how="left", sort=False)
    return labelled["_label"].fillna(0).to_numpy(dtype=np.int8)

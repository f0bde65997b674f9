"""More labelled queries for the second stage: further holdouts of the validated users.

The validation split gives the ranker one labelled query per validated user, a few hundred
on small data, and its out-of-fold scores are all it learns from. Each *extra split* holds
out again, with another seed, the last ``n_last`` and ``n_random`` random items of each
validated user's training history (``split_train``, so another cut point and other gaps),
refits the closed-form first stages on what remains with their tuned hyperparameters and
labels the candidates they rank for those users: one more query per user, whose answers
are never in its own training rows. The iterative (neural) models are too costly to refit
per split: on extra rows their columns are missing, as for a movie they did not rank.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movie_rec.evaluation import top_k_unseen
from movie_rec.models.config import ParamsConfig
from movie_rec.models.protocol import FitRun, TrainingData
from movie_rec.registry import ITERATIVE, first_stage_models, spec
from movie_rec.splits import SplitSettings, history_matrix, holdout_split, sample_users

logger = logging.getLogger(__name__)


def refittable_models() -> list[str]:
    """First-stage models cheap enough to refit per extra split: the closed-form ones."""
    return [name for name in first_stage_models() if not spec(name).can(ITERATIVE)]


@dataclass(frozen=True)
class ExtraSplit:
    """One extra holdout of the validation split's training history.

    Attributes:
        index: 1, 2, ... (0 is the validation split itself).
        history: the interactions kept, ordered by user then time.
        matrix: their users × items matrix (the validation matrix's shape).
        answers: the held-out ``user_idx, item_idx, kind``.
    """

    index: int
    history: pd.DataFrame
    matrix: sp.csr_matrix
    answers: pd.DataFrame

    @property
    def users(self) -> np.ndarray:
        return np.unique(self.answers["user_idx"].to_numpy())


def extra_splits(
    split_train: pd.DataFrame,
    users: np.ndarray,
    shape: tuple[int, int],
    split: SplitSettings,
    count: int,
    max_users: int | None,
) -> Iterator[ExtraSplit]:
    """``count`` holdouts of ``split_train`` as ``split`` holds out (seeds ``seed + 1``,
    ``seed + 2``, ...), each for a seeded sample of at most ``max_users`` of ``users``."""
    for index in range(1, count + 1):
        seed = split.seed + index
        chosen = sample_users(users, max_users, seed)
        kept, answers = holdout_split(
            split_train, replace(split, seed=seed, max_users=None), users=chosen
        )
        yield ExtraSplit(index, kept, history_matrix(kept, shape), answers)


def refit_candidates(
    split: ExtraSplit,
    hyperparameters: Mapping[str, ParamsConfig],
    run: FitRun,
    k: int,
    batch_size: int,
) -> dict[str, pd.DataFrame]:
    """Each named model refit on ``split``'s history with its ``hyperparameters``: the top
    ``k`` unseen movies of the split's users."""
    data = TrainingData(split.matrix, split.history)
    candidates = {}
    for name, config in hyperparameters.items():
        model = spec(name).model(config)
        model.fit(data, replace(run, name=name))
        candidates[name] = top_k_unseen(
            model.score, split.matrix, k, users=split.users, batch_size=batch_size
        )
    return candidates

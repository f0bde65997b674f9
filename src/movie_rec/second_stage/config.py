"""The second stage's configs, in a module of their own so that reading the settings
(:class:`movie_rec.parameters.TabularSettings`, which builds them) does not import LightGBM."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from movie_rec.second_stage.candidates import KIND_GRADES

OBJECTIVES = ("lambdarank", "binary")


@dataclass(frozen=True)
class RankerConfig:
    """LightGBM settings, the objective, the early-stopping split and the bags (built by
    :meth:`movie_rec.parameters.TabularSettings.ranker`, where the defaults are).

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
        kind_gain: what a held-out answer of each kind (``last``, ``random``) is worth: in
            the lambdarank NDCG, LightGBM's ``label_gain`` of its grade; in the binary
            objective, the weight of its row. Equal gains train for the split's own mix.
        objective: ``lambdarank`` (LambdaMART on NDCG@10 per user) or ``binary`` (each
            candidate's chance of being a held-out answer, log loss).
        bags: seeded repeats of the K-fold training (seed, seed + 1, ...).
        negative_share: the binary objective trains on every answer and a seeded share of
            the other candidates, each kept one weighing ``1 / negative_share`` (an unbiased
            log loss on fewer rows); 1 keeps every row.
    """

    lgbm: dict[str, Any]
    max_rounds: int
    early_stopping_share: float
    early_stopping_rounds: int
    max_train_users: int | None
    seed: int
    num_threads: int
    kind_gain: dict[str, float]
    objective: str
    bags: int
    negative_share: float

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.bags < 1:
            raise ValueError(f"bags must be at least 1, got {self.bags}")
        if not 0 < self.negative_share <= 1:
            raise ValueError(f"negative_share must be in (0, 1], got {self.negative_share}")
        if self.negative_share < 1 and self.objective != "binary":
            raise ValueError("negative_share below 1 needs the binary objective (lambdarank "
                             "ranks within a query and takes no row weights)")  # fmt: skip

    def label_gain(self) -> list[float]:
        """LightGBM's gain of each grade (0 = not an answer, then :data:`KIND_GRADES`)."""
        gains = [0.0] * (max(KIND_GRADES.values()) + 1)
        for kind, grade in KIND_GRADES.items():
            gains[grade] = float(self.kind_gain[kind])
        return gains

    def params(self) -> dict[str, Any]:
        """Training parameters: the objective, its early-stopping metric (NDCG@10 or log
        loss), seeded and deterministic."""
        if self.objective == "lambdarank":
            objective = {"metric": "ndcg", "eval_at": [10], "label_gain": self.label_gain()}
        else:
            objective = {"metric": "binary_logloss"}
        return {
            **self.lgbm,
            "objective": self.objective,
            **objective,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }


@dataclass(frozen=True)
class FeatureConfig:
    """Windows and decays of the order and time features (see :data:`FEATURES`), built by
    :meth:`movie_rec.parameters.TabularSettings.features`, where the defaults are."""

    markov_k: tuple[int, ...]
    cooc_window: int
    cooc_decay: float
    recent_days: float
    user_window_days: float
    batch_size: int

"""User+item EASE: item EASE blended with a user×user EASE (the "hybrid EASE" of the
competition's best private score: item λ≈660, user λ≈4,573).

User EASE is EASE on ``Xᵀ``: each user is reconstructed from the other users,
``S_u = Σ_{v≠u} C_vu x_v`` with ``C = I − P·diag(1/diag P)`` and the users×users
``P = (XXᵀ + λI)⁻¹`` (31,360² at the competition's scale). It never has to be formed.
Woodbury gives ``P = (1/λ)(I − X G⁻¹ Xᵀ)`` with the items×items ``G = XᵀX + λI``, so

    (PX)_u = (1/λ)(x_u − x_u G⁻¹ XᵀX) = (1/λ) x_u (I − G⁻¹(G − λI)) = x_u G⁻¹
    P_uu   = (1/λ)(1 − x_u G⁻¹ x_uᵀ)

and, since ``C_vu = −P_vu / P_uu`` off the diagonal and ``C_uu = 0``,

    S_u = −(1/P_uu) Σ_{v≠u} P_vu x_v = −((PX)_u − P_uu x_u) / P_uu = x_u − x_u G⁻¹ / P_uu.

That is exact, and costs one items×items inverse plus, per user, the same sparse × dense
product as item EASE (``P_uu > 0`` because ``P`` is positive definite).

Both models predict the binary row ``x_u`` (an unseen item's score estimates how likely
the user is to have it), so their scores share a scale and are blended linearly:
``(1 − w)·item + w·user``. ``p`` is EDLAE's emphasis on the item model only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from movie_rec.models.config import ParamsConfig
from movie_rec.models.ease import (
    EASE,
    EASEConfig,
    ItemWeights,
    check_regularisation,
    factorisation_dtype,
    regularised_inverse,
)

if TYPE_CHECKING:
    from movie_rec.models.protocol import FitRun, TrainingData


@dataclass(frozen=True)
class UserItemEASEConfig(ParamsConfig):
    """Item EASE's λ, user EASE's λ, the user model's share ``user_weight`` of the blend
    (0 is item EASE alone, 1 user EASE alone) and EDLAE's ``p`` for the item model."""

    item_lam: float = 660.0
    user_lam: float = 4573.0
    user_weight: float = 0.5
    p: float = 0.0

    def __post_init__(self) -> None:
        check_regularisation(self.item_lam, self.p)
        check_regularisation(self.user_lam)
        if not 0.0 <= self.user_weight <= 1.0:
            raise ValueError(f"user_weight must be in [0, 1], got {self.user_weight}")


def user_ease_scores(rows: sp.csr_matrix, inverse: ItemWeights, lam: float) -> torch.Tensor:
    """User EASE's ``S_u = x_u − λ·x_u G⁻¹ / (1 − x_u G⁻¹ x_uᵀ)`` for a batch of user rows,
    given ``G⁻¹ = (XᵀX + λI)⁻¹`` (see the module docstring)."""
    projected = inverse.left_multiply(rows)  # x_u G⁻¹
    dense = torch.from_numpy(rows.toarray()).to(projected.device)
    quadratic = (projected * dense).sum(dim=1, keepdim=True)  # x_u G⁻¹ x_uᵀ
    return dense - projected * (lam / (1.0 - quadratic))


class UserItemEASE:
    """Item EASE and user EASE fitted on one matrix, scored as their blend.

    Args:
        config: both λs, the blend weight and EDLAE's ``p``.
        dtype: the factorisations' precision (by default ``factorisation_dtype`` of the device).
    """

    def __init__(self, config: UserItemEASEConfig, dtype: torch.dtype | None = None) -> None:
        self.config = config
        self.dtype = dtype
        self.item_model = EASE(EASEConfig(config.item_lam, config.p), dtype)
        self.user_inverse: ItemWeights | None = None
        self.matrix: sp.csr_matrix | None = None

    def fit(self, data: TrainingData, run: FitRun) -> None:
        """Fit both models from the data's ``XᵀX`` on the run's device."""
        self.item_model.fit(data, run)
        self.matrix = self.item_model.matrix
        gram = data.gram(run.device)
        dtype = factorisation_dtype(gram.device, self.dtype)
        inverse = regularised_inverse(gram, self.config.user_lam, dtype).to(torch.float32)
        self.user_inverse = ItemWeights(inverse, run.device)

    def score(self, users: np.ndarray) -> torch.Tensor:
        """``(1 − w)·item EASE + w·user EASE`` for ``users``: ``(len(users), n_items)``."""
        if self.user_inverse is None or self.matrix is None:
            raise RuntimeError("UserItemEASE.score called before fit")
        weight = self.config.user_weight
        item = self.item_model.score(users)
        user = user_ease_scores(self.matrix[users], self.user_inverse, self.config.user_lam)
        return item.mul_(1.0 - weight).add_(user, alpha=weight)

"""ADMM SLIM: Steck, Dimakopoulou, Riabov, Jebara, "ADMM SLIM: Sparse Recommendations for
Many Users", WSDM 2020.

SLIM's item×item weights ``C`` minimise

    ½‖X − XC‖² + λ₁‖C‖₁ + ½λ₂‖C‖²   subject to   diag(C) = 0,  C ≥ 0,

which ADMM splits into a ridge step on a copy ``B`` (with the zero diagonal, solved in closed
form like EASE) and a proximal step on ``C`` (soft-threshold, then clip at zero), tied by the
scaled dual ``Γ`` (Algorithm 1 of the paper)::

    P = (XᵀX + (λ₂ + ρ)I)⁻¹                        once
    B̃ = P(XᵀX + ρC − Γ)                            = I − (λ₂ + ρ)P + P(ρC − Γ)
    B = B̃ − P·diag(γ),   γ = diag(B̃) / diag(P)     zero diagonal
    C = (B + Γ/ρ − λ₁/ρ)₊                           non-negative, L1-shrunk
    Γ = Γ + ρ(B − C)

until the primal residual ``‖B − C‖`` and the dual residual ``ρ‖C − C_prev‖`` are both
below ``tolerance`` relative to ``max(‖B‖, ‖C‖)`` and ``ρ‖C‖`` (the stopping rule of Boyd,
Parikh, Chu, Peleato, Eckstein, "Distributed Optimization and Statistical Learning via the
Alternating Direction Method of Multipliers", 2011, §3.3.1, with relative tolerances only),
or for ``iterations`` at most. An iteration costs one
items³ product; the objective, another items³ product, is computed only when tracked.
``P`` comes from a float64 Cholesky on the device; the iterations run in float32. A user's
scores are ``x_u C``, multiplied as EASE's are (:class:`movie_rec.models.ease.ItemWeights`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from movie_rec.models.config import ParamsConfig
from movie_rec.models.ease import ItemItemModel, regularised_inverse


@dataclass(frozen=True)
class ADMMSLIMConfig(ParamsConfig):
    """Hyperparameters: λ₁ (L1), λ₂ (L2) and the ADMM penalty ρ; how long ADMM runs: at most
    ``iterations``, stopping once both residuals are within the relative ``tolerance`` (0 runs
    every iteration); ``track_objective`` records the SLIM objective of every iteration."""

    l1: float = 3.0
    l2: float = 200.0
    rho: float = 4000.0
    iterations: int = 50
    tolerance: float = 1e-2
    track_objective: bool = False

    def __post_init__(self) -> None:
        if self.l1 < 0 or self.l2 < 0 or self.rho <= 0 or self.iterations < 1:
            raise ValueError(f"ADMM SLIM needs l1, l2 >= 0, rho > 0, iterations >= 1: {self}")
        if self.tolerance < 0:
            raise ValueError(f"ADMM SLIM's tolerance must be >= 0, got {self.tolerance}")


@dataclass
class ADMMTrace:
    """Per iteration: the primal and dual residuals (relative) and, when tracked, the objective."""

    primal: list[float] = field(default_factory=list)
    dual: list[float] = field(default_factory=list)
    objective: list[float] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.primal)


def slim_objective(gram: torch.Tensor, weights: torch.Tensor, l1: float, l2: float) -> float:
    """``½‖X − XC‖² + λ₁‖C‖₁ + ½λ₂‖C‖²`` from the Gram matrix ``G = XᵀX`` alone.

    ``‖X − XC‖² = tr G − 2·tr(CᵀG) + tr(CᵀGC)``; every trace is an element-wise sum.
    """
    f64 = torch.float64
    squared_error = (
        torch.diagonal(gram).sum(dtype=f64)
        - 2 * (weights * gram).sum(dtype=f64)
        + (weights * (gram @ weights)).sum(dtype=f64)
    )
    return float(
        0.5 * squared_error
        + l1 * weights.abs().sum(dtype=f64)
        + 0.5 * l2 * weights.pow(2).sum(dtype=f64)
    )


def relative_residuals(
    ridge: torch.Tensor, weights: torch.Tensor, previous: torch.Tensor
) -> tuple[float, float]:
    """ADMM's primal residual ``‖B − C‖`` and dual residual ``ρ‖C − C_prev‖`` (Frobenius),
    each relative to the size of what it measures: ``max(‖B‖, ‖C‖)`` and ``ρ‖C‖`` (0 where
    that is 0). Relative to ``‖Γ‖``, as Boyd et al. scale the dual one, a large ρ would
    never let it pass although ``C`` has stopped moving."""

    def ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> float:
        return float(numerator / denominator) if denominator > 0 else 0.0

    norm = torch.linalg.norm
    primal = ratio(norm(ridge - weights), torch.maximum(norm(ridge), norm(weights)))
    return primal, ratio(norm(weights - previous), norm(weights))


def admm_slim_weights(gram: torch.Tensor, config: ADMMSLIMConfig) -> tuple[torch.Tensor, ADMMTrace]:
    """The float32 weights ``C`` for a Gram matrix ``XᵀX``, and the iterations' trace."""
    rho, l1 = config.rho, config.l1
    precision64 = regularised_inverse(gram, config.l2 + rho, torch.float64)
    precision = precision64.float()
    ridge_part = torch.eye(len(gram), dtype=torch.float32, device=gram.device)
    ridge_part.sub_(precision64, alpha=config.l2 + rho)  # P·XᵀX = I − (λ₂ + ρ)P
    del precision64
    precision_diagonal = torch.diagonal(precision).clone()
    gram = gram.float()
    weights = torch.zeros_like(precision)
    dual = torch.zeros_like(precision)
    trace = ADMMTrace()
    for _ in range(config.iterations):
        ridge = ridge_part + precision @ (rho * weights - dual)
        ridge -= precision * (torch.diagonal(ridge) / precision_diagonal)  # zero diagonal
        previous, weights = weights, (ridge + (dual - l1) / rho).clamp_(min=0)
        weights.diagonal().zero_()
        dual += rho * (ridge - weights)
        primal, dual_residual = relative_residuals(ridge, weights, previous)
        trace.primal.append(primal)
        trace.dual.append(dual_residual)
        if config.track_objective:
            trace.objective.append(slim_objective(gram, weights, l1, config.l2))
        if max(primal, dual_residual) <= config.tolerance:
            break
    return weights, trace


class ADMMSLIM(ItemItemModel):
    """Fitted ADMM SLIM weights ``C`` plus the interaction matrix they score.

    Args:
        config: λ₁, λ₂, ρ and the iteration count.
    """

    def __init__(self, config: ADMMSLIMConfig) -> None:
        super().__init__(config)
        self.trace = ADMMTrace()

    def solve_weights(self, gram: torch.Tensor) -> torch.Tensor:
        weights, self.trace = admm_slim_weights(gram, self.config)
        return weights

    @property
    def density(self) -> float:
        """Share of non-zero weights (ADMM SLIM's point: a sparse C)."""
        return float((self.weights > 0).float().mean())

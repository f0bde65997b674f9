"""EASE: Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019, with the
dropout emphasis of EDLAE: Steck, "Autoencoders that don't overfit towards the Identity",
NeurIPS 2020.

An item×item linear model with a closed form: with Gram matrix ``XᵀX``, the regularised
``G = XᵀX + Λ`` and ``P = G⁻¹``, the weights are ``B = I − P · diag(1 / diag(P))``, i.e.
``B_ij = −P_ij / P_jj`` off the diagonal and ``B_jj = 0``. A user's scores are ``x_u B``.
Plain EASE has ``Λ = λI``; EDLAE's emphasised denoising (dropout probability ``p``) adds
``p / (1 − p) · diag(XᵀX)``, so an item is regularised in proportion to its popularity
(``p = 0`` is plain EASE; the zero diagonal is kept).

The Gram matrix is computed once (it depends on neither λ nor p), so tuning costs one
Cholesky factorisation per trial. How the CPU path stays fast at the competition's scale
(31k users × 6.8k items, 2 cores):

* Gram: :func:`movie_rec.models.matrices.gram_matrix` (dense GEMMs for long histories,
  a sparse product for the rest).
* Factorisation: scipy's LAPACK Cholesky and inverse (``potrf``, ``potri``: about twice as
  fast as torch's MKL ones on these AMD CPUs), in float64 on the CPU (so the weights do not
  depend on LAPACK's thread count) and float32 on CUDA (:func:`factorisation_dtype`).
* Scoring: ``B`` is kept as contiguous column panels and a batch of user rows, in CSC order,
  multiplies each panel: every weight row is read once per batch instead of once per
  interaction, which makes the product about three times faster than CSR × the whole ``B``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch
from scipy.linalg import lapack

from movie_rec.models.config import ParamsConfig
from movie_rec.models.protocol import Reason

if TYPE_CHECKING:
    from movie_rec.models.protocol import FitRun, TrainingData

PANEL_WIDTH = 1024


@dataclass(frozen=True)
class EASEConfig(ParamsConfig):
    """λ (the L2 weight; 300–500 was best on the real 31k-user data) and EDLAE's dropout
    probability ``p`` in [0, 1) (0 is plain EASE)."""

    lam: float = 400.0
    p: float = 0.0

    def __post_init__(self) -> None:
        check_regularisation(self.lam, self.p)


def check_regularisation(lam: float, p: float = 0.0) -> None:
    if lam <= 0:
        raise ValueError(f"EASE needs a positive lambda, got {lam}")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"EDLAE's dropout probability p must be in [0, 1), got {p}")


def regularised_inverse(
    gram: torch.Tensor, diagonal: torch.Tensor | float, dtype: torch.dtype
) -> torch.Tensor:
    """``(gram + diag(diagonal))⁻¹`` by Cholesky in ``dtype``, as a row-major tensor."""
    regularised = gram.to(dtype=dtype, copy=True)
    regularised.diagonal().add_(diagonal)
    if regularised.device.type == "cpu":
        return torch.from_numpy(_lapack_inverse(regularised.numpy()))
    factor = torch.linalg.cholesky(regularised)
    del regularised
    # cholesky_inverse returns the symmetric inverse column-major: its transpose is row-major
    return torch.cholesky_inverse(factor).mT


def _lapack_inverse(regularised: np.ndarray) -> np.ndarray:
    """The row-major inverse of a symmetric positive definite matrix (overwritten) by
    scipy's LAPACK ``potrf`` + ``potri``: about twice as fast here as torch's Cholesky and
    ``cholesky_inverse`` (MKL) on the project's AMD CPUs."""
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (regularised,))
    # a symmetric C-ordered matrix's transpose is the same matrix in Fortran order: no copy
    factor, info = potrf(regularised.T, lower=1, overwrite_a=1, clean=0)
    if info == 0:
        inverse, info = potri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"LAPACK Cholesky inversion failed with info={info}")
    inverse = mirror_lower_triangle(inverse)  # potri fills the lower triangle only
    return inverse.T if inverse.flags.f_contiguous else inverse


SYMMETRISE_BLOCK = 512  # rows of the lower triangle mirrored at a time


def mirror_lower_triangle(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` with its upper triangle overwritten by its lower one's transpose, in place.

    ``potri`` fills one triangle only; mirroring it block by block copies half the matrix
    once, instead of two triangular copies of the whole and a transposed sum."""
    n = len(matrix)
    for start in range(0, n, SYMMETRISE_BLOCK):
        stop = min(start + SYMMETRISE_BLOCK, n)
        block = matrix[start:stop, start:stop]
        block[np.triu_indices(stop - start, 1)] = block.T[np.triu_indices(stop - start, 1)]
        matrix[start:stop, stop:] = matrix[stop:, start:stop].T
    return matrix


def factorisation_dtype(device: torch.device, requested: torch.dtype | None = None) -> torch.dtype:
    """``requested`` when given; else float64 on the CPU, where LAPACK's float32 results move
    in the seventh digit with its thread count (OMP_NUM_THREADS: a Dask worker's 1 against a
    plain run's all cores), enough to reorder near-ties; float64's differences vanish in the
    float32 weights. float32 on CUDA.
    """
    if requested is not None:
        return requested
    return torch.float64 if device.type == "cpu" else torch.float32


def emphasis_diagonal(gram: torch.Tensor, lam: float, p: float) -> torch.Tensor:
    """EDLAE's ``λ + p / (1 − p) · diag(XᵀX)``, what the Gram diagonal gets."""
    return lam + p / (1.0 - p) * gram.diagonal()


def ease_weights(
    gram: torch.Tensor, lam: float, p: float = 0.0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The row-major float32 item×item weights ``B``, factorised in ``dtype``."""
    check_regularisation(lam, p)
    precision = regularised_inverse(gram, emphasis_diagonal(gram, lam, p).to(dtype), dtype)
    weights = precision.div_(-precision.diagonal().clone())  # column j divided by −P_jj
    weights.diagonal().zero_()
    return weights.float()


class ItemWeights:
    """An items×items matrix that batches of sparse user rows multiply, laid out for speed.

    On the CPU it is stored as contiguous column panels (see the module docstring) and the
    panels are shared out over ``torch.get_num_threads()`` threads; on a GPU it is one
    dense tensor that densified user rows multiply.
    """

    def __init__(self, matrix: torch.Tensor, device: torch.device) -> None:
        self.device = device
        self.matrix: torch.Tensor | None = None
        self.panels: list[np.ndarray] = []
        if device.type == "cpu":
            dense = matrix.float().cpu().numpy()
            self.panels = [
                np.ascontiguousarray(dense[:, start : start + PANEL_WIDTH])
                for start in range(0, dense.shape[1], PANEL_WIDTH)
            ]
        else:
            self.matrix = matrix.float().to(device).contiguous()

    def left_multiply(self, rows: sp.csr_matrix) -> torch.Tensor:
        """``rows @ matrix`` as a float32 tensor on the device."""
        if self.matrix is not None:
            return torch.from_numpy(rows.toarray()).to(self.device) @ self.matrix
        columns = sp.csc_matrix(rows, dtype=np.float32)
        with ThreadPoolExecutor(torch.get_num_threads()) as pool:
            parts = list(pool.map(columns.__matmul__, self.panels))
        return torch.from_numpy(np.hstack(parts))

    def to_tensor(self) -> torch.Tensor:
        """The whole matrix as one row-major tensor (on the device)."""
        if self.matrix is not None:
            return self.matrix
        return torch.from_numpy(np.hstack(self.panels))


def history_product(history_items: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``x · W`` for the binary history ``x``: the scores of every item."""
    items = np.unique(np.asarray(history_items, dtype=np.int64))
    return weights[items].sum(axis=0, dtype=np.float64).astype(np.float32)


def history_terms(history_items: np.ndarray, weights: np.ndarray, item: int) -> list[Reason]:
    """The positive terms ``W[j, item]`` of ``x · W[:, item]`` over the watched items ``j``,
    largest first (ties to the smaller index); with the negative ones they sum to the score."""
    items = np.unique(np.asarray(history_items, dtype=np.int64))
    terms = weights[items, item].astype(np.float64)
    order = np.lexsort((items, -terms))
    return [Reason("item", int(items[i]), float(terms[i])) for i in order if terms[i] > 0]


class ItemItemModel:
    """Item×item weights ``W`` solved from ``XᵀX``, plus the interaction matrix ``X`` whose
    rows they score (``x_u W``): what EASE and ADMM SLIM share. A subclass solves ``W``.
    A score is a sum over the watched items, so a new history folds in as the same product
    and its terms are the reasons (:class:`movie_rec.models.protocol.Explains`)."""

    def __init__(self, config: ParamsConfig) -> None:
        self.config = config
        self.device = torch.device("cpu")
        self.item_weights: ItemWeights | None = None
        self.matrix: sp.csr_matrix | None = None
        self._weights_array: np.ndarray | None = None

    def solve_weights(self, gram: torch.Tensor) -> torch.Tensor:
        """The items×items weights for the Gram matrix ``XᵀX`` (on the device)."""
        raise NotImplementedError

    def fit(self, data: TrainingData, run: FitRun) -> None:
        """Solve the weights from the data's ``XᵀX`` (computed once per data) on the run's device."""
        self.device = run.device
        self.matrix = sp.csr_matrix(data.matrix, dtype=np.float32)
        self.item_weights = ItemWeights(self.solve_weights(data.gram(run.device)), self.device)
        self._weights_array = None

    def weights_array(self) -> np.ndarray:
        """``W`` as a CPU numpy array, made once per fit (what fold-ins and reasons read)."""
        if getattr(self, "_weights_array", None) is None:
            self._weights_array = self.weights.detach().cpu().numpy()
        return self._weights_array

    def history_scores(self, history_items: np.ndarray) -> np.ndarray:
        """``x · W`` for the binary history ``x``: a new history scores as a fitted user."""
        return history_product(history_items, self.weights_array())

    def explain(
        self, item: int, history_items: np.ndarray, user: int | None = None
    ) -> list[Reason]:
        """The watched items ``j`` with positive terms ``W[j, item]`` of the item's score."""
        return history_terms(history_items, self.weights_array(), item)

    @property
    def weights(self) -> torch.Tensor:
        """``W`` as one row-major float32 tensor."""
        if self.item_weights is None:
            raise RuntimeError(f"{type(self).__name__}.weights read before fit")
        return self.item_weights.to_tensor()

    def score(self, users: np.ndarray) -> torch.Tensor:
        """Scores of every item for ``users``: a ``(len(users), n_items)`` tensor on the device."""
        if self.item_weights is None or self.matrix is None:
            raise RuntimeError(f"{type(self).__name__}.score called before fit")
        return self.item_weights.left_multiply(self.matrix[users])


class EASE(ItemItemModel):
    """Fitted EASE weights ``B`` plus the interaction matrix they score.

    Args:
        config: λ and EDLAE's ``p``.
        dtype: the factorisation's precision (the weights are float32 either way); by default
            :func:`factorisation_dtype` of the device.
    """

    def __init__(self, config: EASEConfig, dtype: torch.dtype | None = None) -> None:
        super().__init__(config)
        self.dtype = dtype

    def solve_weights(self, gram: torch.Tensor) -> torch.Tensor:
        dtype = factorisation_dtype(gram.device, self.dtype)
        return ease_weights(gram, self.config.lam, self.config.p, dtype)

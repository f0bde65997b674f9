"""What a model costs on a data set before it runs: the estimate behind ``enabled: auto``.

A fit's work is counted in floating-point operations from the data's shape (users U, movies
I, interactions N) and the model's settings, by the terms that dominate it:

* EASE factors and inverts an I × I matrix (about I³) after a sparse Gram (Σ_u n_u²);
  user+item EASE does it twice (its user side goes through Woodbury, items-sized);
  ADMM-SLIM adds one I × I product (2·I³) an iteration, at most ``iterations`` of them.
* The autoencoders and the neural sequence models pay, per update, a batch of examples
  through their layers (an autoencoder's first layer reads only a user's movies) and an
  output over every movie (``2·hidden·I`` a position with a full
  softmax), three times over for the backward pass, for at most ``max_updates`` updates,
  plus a forward pass over the validation users at every evaluation. The final fit pays the
  validation fit's budget again, or only ``final_updates`` where it continues that fit.
* markov, sknn and popular are sparse counts: a few operations per interaction
  (sknn: per pair of users that share a movie).

Seconds are the work over a fixed throughput per device and kind of work, plus a fixed
cost a fit (:data:`THROUGHPUT`, sustained float32 operations a second measured on a 2-core
CPU and read off GPU runs), not timings of the machine at hand, so the same data and
parameters make the same choice everywhere.
A run's figure is an upper bound: early stopping, pruning and ADMM-SLIM's residual stop
end most fits before their budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import scipy.sparse as sp

from movie_rec.models.admm_slim import ADMMSLIMConfig
from movie_rec.models.autoencoder import AutoencoderConfig
from movie_rec.models.ease import EASEConfig
from movie_rec.models.sequential.bert4rec import BERT4RecConfig
from movie_rec.models.sequential.data import HorizonConfig, SequentialConfig
from movie_rec.models.sequential.gru4rec import GRU4RecConfig
from movie_rec.models.sequential.srgnn import SRGNNConfig
from movie_rec.models.sequential.transformer import TransformerConfig
from movie_rec.models.sknn import SKNNConfig
from movie_rec.models.training import TrainConfig
from movie_rec.models.user_ease import UserItemEASEConfig

BACKWARD = 3  # a training step's forward + backward pass, in forward passes
RANKING = 1000.0  # operations a (user, movie) score costs to mask, rank and keep in a top k


@dataclass(frozen=True)
class DataShape:
    """The sizes a model's cost grows with."""

    users: int
    items: int
    interactions: int

    @classmethod
    def of(cls, matrix: sp.spmatrix) -> DataShape:
        return cls(int(matrix.shape[0]), int(matrix.shape[1]), int(matrix.nnz))

    @property
    def mean_history(self) -> float:
        return self.interactions / max(self.users, 1)


@dataclass(frozen=True)
class Throughput:
    """Sustained float32 operations a second: dense linear algebra (the Gram matrix,
    factorisations, scoring every movie), neural training of small batched layers (the
    sequence models: embeddings of 64, softmax, optimizer) and large products (ADMM-SLIM's
    items × items iterations, the autoencoders' batches of 500 histories through layers as
    wide as the catalogue), which the CPU runs about three times faster; and the seconds
    every fit pays whatever its size (a tuning trial's bookkeeping, handing its scores on)."""

    dense: float
    neural: float
    products: float
    per_fit: float


THROUGHPUT = {
    "cpu": Throughput(dense=6e10, neural=4e10, products=1.3e11, per_fit=0.08),
    "cuda": Throughput(dense=2e13, neural=1e12, products=2e13, per_fit=0.08),
}


@dataclass(frozen=True)
class FitCost:
    """Fits' work in operations, split by the kind of throughput that runs it, and how many
    fits it takes."""

    dense: float = 0.0
    neural: float = 0.0
    products: float = 0.0
    fits: float = 0.0

    def __add__(self, other: FitCost) -> FitCost:
        return FitCost(
            self.dense + other.dense,
            self.neural + other.neural,
            self.products + other.products,
            self.fits + other.fits,
        )

    def __mul__(self, times: float) -> FitCost:
        return FitCost(
            self.dense * times, self.neural * times, self.products * times, self.fits * times
        )

    def seconds(self, device: str) -> float:
        speed = THROUGHPUT["cuda" if device.startswith("cuda") else "cpu"]
        return (
            self.dense / speed.dense
            + self.neural / speed.neural
            + self.products / speed.products
            + self.fits * speed.per_fit
        )


@dataclass(frozen=True)
class Budget:
    """An iterative fit's updates and its evaluations (each a forward pass over the users)."""

    updates: int
    evaluations: int

    @classmethod
    def validated(cls, train: TrainConfig) -> Budget:
        """A fit with early stopping: the whole budget, an evaluation every ``eval_every``."""
        return cls(train.max_updates, train.max_updates // train.eval_every + 1)

    @classmethod
    def final(cls, train: TrainConfig) -> Budget:
        """The final fit: the budget again, or the ``final_updates`` that continue the
        validation fit; one pass over the users scores them."""
        updates = train.max_updates if train.final_updates is None else train.final_updates
        return cls(updates, 1)


def fit_cost(
    config: object, train: TrainConfig, shape: DataShape, budget: Budget | None = None
) -> FitCost:
    """One fit of a model with ``config`` (and, if iterative, ``budget``: by default the
    validation fit's under ``train``)."""
    budget = budget or Budget.validated(train)
    one_fit = FitCost(fits=1.0)
    for kind, cost in _COSTS:
        if isinstance(config, kind):
            return cost(config, budget, shape) + one_fit
    return _sparse_counts(shape) + one_fit


def run_cost(config: object, train: TrainConfig, shape: DataShape, trials: int) -> FitCost:
    """A model's whole run: ``trials`` tuning fits, the validation fit and the final fit."""
    final = fit_cost(config, train, shape, Budget.final(train))
    return fit_cost(config, train, shape) * (trials + 1) + final


def _gram(shape: DataShape) -> float:
    return 2.0 * shape.interactions * shape.mean_history


def _item_scores(shape: DataShape) -> float:
    """A history times an items × items matrix, and every user's top-k over every movie."""
    return 2.0 * shape.interactions * shape.items + RANKING * shape.users * shape.items


def _ease(config: EASEConfig, budget: Budget, shape: DataShape) -> FitCost:
    return FitCost(dense=_gram(shape) + shape.items**3 + _item_scores(shape))


def _user_ease(config: UserItemEASEConfig, budget: Budget, shape: DataShape) -> FitCost:
    return FitCost(dense=_gram(shape) + 2.0 * shape.items**3 + 2.0 * _item_scores(shape))


def _admm_slim(config: ADMMSLIMConfig, budget: Budget, shape: DataShape) -> FitCost:
    iterations = 2.0 * shape.items**3 * config.iterations
    return FitCost(dense=_gram(shape) + shape.items**3 + _item_scores(shape), products=iterations)


def _autoencoder(config: AutoencoderConfig, budget: Budget, shape: DataShape) -> FitCost:
    """The encoder's first layer sums a hidden-wide row per movie of a user's history; the
    decoder's last layer multiplies into every movie."""
    per_user = 2.0 * (
        (shape.mean_history + shape.items) * config.hidden + 3.0 * config.hidden * config.latent
    )
    training = budget.updates * config.batch_size * per_user * BACKWARD
    evaluation = budget.evaluations * shape.users * per_user
    return FitCost(products=training + evaluation)


def _block(config: SequentialConfig) -> float:
    """One position through the model's layers (before the output over the movies)."""
    if isinstance(config, TransformerConfig):
        attention = 4.0 * config.max_len * config.hidden
        return config.layers * (24.0 * config.hidden**2 + attention)
    if isinstance(config, GRU4RecConfig):
        return config.layers * 12.0 * config.hidden**2
    if isinstance(config, SRGNNConfig):
        return (config.steps + 1) * 12.0 * config.hidden**2
    return 12.0 * config.hidden**2


def _outputs(config: SequentialConfig, shape: DataShape) -> float:
    """The output layer a training position pays: a softmax over every movie, or over the
    sampled negatives; BERT4Rec pays it only at its masked positions."""
    width = shape.items
    if isinstance(config, HorizonConfig) and config.loss != "ce":
        width = min(shape.items, config.negatives)
    share = config.mask_prob if isinstance(config, BERT4RecConfig) else 1.0
    return share * 2.0 * config.hidden * width


def _sequential(config: SequentialConfig, budget: Budget, shape: DataShape) -> FitCost:
    positions = config.max_len  # windows and scored histories are padded to max_len
    per_position = _block(config) + _outputs(config, shape)
    training = budget.updates * config.batch_size * positions * per_position * BACKWARD
    scoring = shape.users * (positions * _block(config) + 2.0 * config.hidden * shape.items)
    return FitCost(neural=training + budget.evaluations * scoring)


def _sknn(config: SKNNConfig, budget: Budget, shape: DataShape) -> FitCost:
    """Every user against the users who share one of their recent movies."""
    recent = min(config.recent, shape.mean_history)
    viewers = shape.interactions / max(shape.items, 1)
    return FitCost(dense=2.0 * shape.users * recent * viewers + _item_scores(shape))


def _sparse_counts(shape: DataShape) -> FitCost:
    return FitCost(dense=20.0 * shape.interactions + _item_scores(shape))


_COSTS = (
    (UserItemEASEConfig, _user_ease),
    (EASEConfig, _ease),
    (ADMMSLIMConfig, _admm_slim),
    (AutoencoderConfig, _autoencoder),
    (SequentialConfig, _sequential),
    (SKNNConfig, _sknn),
)

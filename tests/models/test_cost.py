from dataclasses import replace

import pytest
import scipy.sparse as sp

from movie_rec.models.admm_slim import ADMMSLIMConfig
from movie_rec.models.cost import THROUGHPUT, DataShape, FitCost, fit_cost, run_cost
from movie_rec.models.ease import EASEConfig
from movie_rec.models.markov import MarkovConfig
from movie_rec.models.multivae import MultiVAEConfig
from movie_rec.models.recvae import RecVAEConfig
from movie_rec.models.sequential.gru4rec import GRU4RecConfig
from movie_rec.models.sequential.sasrec import SASRecConfig
from movie_rec.models.training import TrainConfig

TRAIN = TrainConfig(max_updates=1000, eval_every=100)


def test_the_shape_of_a_matrix():
    matrix = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 2], [1, 3, 0])), shape=(3, 5))
    assert DataShape.of(matrix) == DataShape(users=3, items=5, interactions=3)
    assert DataShape.of(matrix).mean_history == 1.0


def test_an_item_item_model_grows_with_movies_cubed():
    small, large = DataShape(1000, 8000, 50_000), DataShape(1000, 16_000, 50_000)
    for config in (EASEConfig(), ADMMSLIMConfig()):
        ratio = fit_cost(config, TRAIN, large).seconds("cpu") / fit_cost(
            config, TRAIN, small
        ).seconds("cpu")
        assert 7.5 < ratio <= 8.0
    admm = fit_cost(ADMMSLIMConfig(iterations=50), TRAIN, small)
    ease = fit_cost(EASEConfig(), TRAIN, small)
    assert admm.products / ease.dense > 50  # 2·I³ an iteration


def _trained(cost: FitCost) -> float:
    return cost.neural + cost.products


def test_a_neural_model_grows_with_its_updates_and_its_output_with_movies():
    shape = DataShape(2000, 600, 100_000)
    for config in (SASRecConfig(max_len=50), GRU4RecConfig(max_len=50), MultiVAEConfig()):
        short = _trained(fit_cost(config, TRAIN, shape))
        long = _trained(fit_cost(config, TrainConfig(max_updates=4000, eval_every=100), shape))
        assert long / short == pytest.approx(4.0, rel=0.01)

    for config in (SASRecConfig, GRU4RecConfig):

        def cost(items: int, config: type = config, **loss) -> float:
            return fit_cost(
                config(max_len=50, **loss), TRAIN, DataShape(2000, items, 100_000)
            ).neural

        growth = cost(6000) - cost(3000)
        assert growth == pytest.approx(cost(3000) - cost(0), rel=1e-9) and growth > 0  # linear
        sampled = {"loss": "sampled", "negatives": 256}
        assert cost(6000, **sampled) - cost(3000, **sampled) < growth / 10  # only scoring grows


def test_a_run_is_its_trials_and_two_fits_and_a_gpu_is_faster():
    shape = DataShape(1000, 3000, 80_000)
    one = fit_cost(EASEConfig(), TRAIN, shape)
    run = run_cost(EASEConfig(), TRAIN, shape, trials=20)
    assert run.dense == pytest.approx(22 * one.dense) and run.fits == 22
    work = replace(one, fits=0.0)
    assert one.seconds("cpu") - work.seconds("cpu") == pytest.approx(THROUGHPUT["cpu"].per_fit)
    assert work.seconds("cuda:0") < work.seconds("cpu") / 100
    assert (one + FitCost(neural=THROUGHPUT["cpu"].neural)).seconds("cpu") == pytest.approx(
        one.seconds("cpu") + 1.0
    )
    wide = DataShape(1000, 6000, 80_000)
    markov = (
        fit_cost(MarkovConfig(), TRAIN, wide).dense / fit_cost(MarkovConfig(), TRAIN, shape).dense
    )
    assert markov < 2.0  # sparse counts and scoring: no items³ term


def test_the_autoencoders_and_admm_slims_iterations_run_at_the_large_products_rate():
    shape = DataShape(3000, 3400, 500_000)
    for config in (MultiVAEConfig(), RecVAEConfig()):
        cost = fit_cost(config, TRAIN, shape)
        assert cost.neural == 0.0 and cost.dense == 0.0 and cost.products > 0.0
        cpu = THROUGHPUT["cpu"]
        assert cost.seconds("cpu") == pytest.approx(cost.products / cpu.products + cpu.per_fit)
    assert THROUGHPUT["cpu"].products > THROUGHPUT["cpu"].neural
    # the encoder reads a hidden-wide row per movie of a history, the decoder writes one per
    # movie of the catalogue: a longer history costs what as many more movies cost
    base = fit_cost(RecVAEConfig(), TRAIN, shape).products
    longer = fit_cost(RecVAEConfig(), TRAIN, DataShape(3000, 3400, 1_000_000)).products
    wider = fit_cost(RecVAEConfig(), TRAIN, DataShape(3000, 6800, 500_000)).products
    assert longer > base
    assert (longer - base) / (500_000 / 3000) == pytest.approx((wider - base) / 3400)
    admm = fit_cost(ADMMSLIMConfig(iterations=30), TRAIN, shape)
    assert admm.products == pytest.approx(30 * 2.0 * 3400**3)
    assert admm.dense == pytest.approx(fit_cost(EASEConfig(), TRAIN, shape).dense)


def test_a_final_fit_that_continues_costs_its_own_updates_only():
    shape = DataShape(3000, 3400, 500_000)
    for config in (RecVAEConfig(), GRU4RecConfig(max_len=50)):

        def run(final_updates: int | None, config: object = config) -> float:
            train = replace(TRAIN, final_updates=final_updates)
            return run_cost(config, train, shape, trials=0).seconds("cpu")

        validation = fit_cost(config, TRAIN, shape).seconds("cpu")
        scoring = run(0) - validation
        assert 0 < scoring < validation / 50  # one pass over the users, no updates
        per_update = (run(100) - run(0)) / 100
        assert run(400) - run(0) == pytest.approx(400 * per_update)
        assert run(None) == pytest.approx(run(TRAIN.max_updates))  # a replay: the whole budget
        assert run(None) < 2 * validation  # the final fit does not evaluate

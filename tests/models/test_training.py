import math

import pytest
import torch

from movie_rec.models.training import TrainConfig, lr_factor, train

CPU = torch.device("cpu")


class Recorder:
    """A one-weight model, batches of a pass and a loss that log what the loop did."""

    def __init__(self, batches_per_pass: int = 3) -> None:
        self.model = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.zeros_(self.model.weight)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.batches_per_pass = batches_per_pass
        self.passes: list[int] = []
        self.rates: list[float] = []

    def batches(self, pass_index: int):
        self.passes.append(pass_index)
        yield from range(self.batches_per_pass)

    def loss(self, batch: int) -> torch.Tensor:
        self.rates.append(self.optimizer.param_groups[0]["lr"])
        return (self.model.weight.sum() - 1.0) ** 2 + batch

    def run(self, config: TrainConfig, evaluate=None, stop_at=None):
        return train(
            self.model,
            self.optimizer,
            self.batches,
            self.loss,
            evaluate,
            config,
            CPU,
            "test",
            stop_at=stop_at,
        )


def scripted(scores):
    """An evaluate() returning the given scores in turn."""
    values = iter(scores)
    return lambda: next(values)


def test_without_validation_it_trains_exactly_the_budget():
    recorder = Recorder(batches_per_pass=3)
    result = recorder.run(TrainConfig(max_updates=10, eval_every=4, progress=False))
    assert result.updates == 10 and len(recorder.rates) == 10
    assert result.passes == 4 and recorder.passes == [1, 2, 3, 4]
    assert result.best_update == 10 and math.isnan(result.best_score)
    # one record every eval_every updates and one at the end
    assert [row["update"] for row in result.history] == [4, 8, 10]
    assert [row["pass"] for row in result.history] == [2, 3, 4]
    assert result.evaluations == 3


def test_history_loss_is_the_mean_since_the_last_evaluation():
    recorder = Recorder(batches_per_pass=3)  # the loss of batch b is b + (w - 1)^2
    recorder.optimizer.param_groups[0]["lr"] = 0.0  # w stays 0: batch b's loss is b + 1
    result = recorder.run(TrainConfig(max_updates=6, eval_every=2, progress=False))
    # batches 0,1 | 2,0 | 1,2  → losses 1,2 | 3,1 | 2,3
    assert [row["loss"] for row in result.history] == pytest.approx([1.5, 2.0, 2.5])


def test_patience_is_counted_in_evaluations_and_the_best_weights_are_kept():
    recorder = Recorder(batches_per_pass=5)
    weights = []

    def evaluate() -> float:
        weights.append(recorder.model.weight.detach().clone())
        return [0.1, 0.3, 0.2, 0.3, 0.25, 0.9][len(weights) - 1]

    config = TrainConfig(max_updates=100, eval_every=2, patience=3, progress=False)
    result = recorder.run(config, evaluate)
    # best 0.3 at the 2nd evaluation (update 4); 0.2, 0.3 (not better), 0.25 → 3 without gain
    assert [row["recall@10"] for row in result.history] == [0.1, 0.3, 0.2, 0.3, 0.25]
    assert result.evaluations == 5 and result.updates == 10
    assert result.best_update == 4 and result.best_score == 0.3
    torch.testing.assert_close(recorder.model.weight, weights[1])
    assert [row["update"] for row in result.history] == [2, 4, 6, 8, 10]


def test_a_better_score_resets_the_patience():
    recorder = Recorder()
    config = TrainConfig(max_updates=100, eval_every=1, patience=2, progress=False)
    result = recorder.run(config, scripted([0.1, 0.0, 0.2, 0.1, 0.1, 0.9]))
    assert result.evaluations == 5 and result.best_update == 3


def test_the_budget_ends_a_run_that_keeps_improving():
    recorder = Recorder()
    config = TrainConfig(max_updates=7, eval_every=3, patience=1, progress=False)
    result = recorder.run(config, scripted([0.1, 0.2, 0.3]))
    assert [row["update"] for row in result.history] == [3, 6, 7]
    assert result.best_update == 7 and result.best_score == 0.3


def test_warmup_then_linear_decay():
    config = TrainConfig(max_updates=14, warmup_updates=4, decay="linear", min_lr_ratio=0.2)
    # warm-up: update u (0-based) uses (u + 1) / 4; then 1 → 0.2 over the 10 updates left
    expected = [0.25, 0.5, 0.75, 1.0] + [1.0 - 0.8 * step / 10 for step in range(10)]
    assert [lr_factor(u, config) for u in range(14)] == pytest.approx(expected)
    assert lr_factor(14, config) == pytest.approx(0.2)
    assert lr_factor(100, config) == pytest.approx(0.2)


def test_cosine_decay_and_none():
    config = TrainConfig(max_updates=10, decay="cosine", min_lr_ratio=0.0)
    assert lr_factor(0, config) == pytest.approx(1.0)
    assert lr_factor(5, config) == pytest.approx(0.5)
    assert lr_factor(10, config) == pytest.approx(0.0)
    assert lr_factor(2, config) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)))
    flat = TrainConfig(max_updates=10, warmup_updates=2)
    assert [lr_factor(u, flat) for u in range(4)] == [0.5, 1.0, 1.0, 1.0]


def test_the_loop_applies_the_schedule_to_every_group():
    recorder = Recorder()
    config = TrainConfig(max_updates=6, warmup_updates=2, decay="linear", progress=False)
    recorder.run(config)
    expected = [0.1 * lr_factor(u, config) for u in range(6)]
    assert recorder.rates == pytest.approx(expected)


def test_stop_at_reproduces_the_schedule_of_the_full_run():
    config = TrainConfig(
        max_updates=20, eval_every=5, warmup_updates=3, decay="cosine", progress=False
    )
    full, cut = Recorder(), Recorder()
    full.run(config)
    result = cut.run(config, stop_at=8)
    assert result.updates == 8 and result.best_update == 8
    assert cut.rates == pytest.approx(full.rates[:8])
    assert [row["update"] for row in result.history] == [5, 8]


def test_bad_settings_are_errors_and_from_params_ignores_other_keys():
    with pytest.raises(ValueError, match="decay"):
        TrainConfig(decay="step")
    with pytest.raises(ValueError, match="at least 1"):
        TrainConfig(eval_every=0)
    config = TrainConfig.from_params({"max_updates": 7, "lr": 0.1, "decay": "linear"})
    assert config.max_updates == 7 and config.decay == "linear"


def test_empty_batches_are_an_error():
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="no batch"):
        train(model, optimizer, lambda _: iter(()), None, None, TrainConfig(), CPU, "empty")


def test_the_progress_bar_writes_no_frames_when_the_output_is_not_a_terminal(capsys):
    recorder = Recorder(batches_per_pass=3)
    recorder.run(TrainConfig(max_updates=12, eval_every=4, progress=True))
    captured = capsys.readouterr()  # pytest's captured streams are not terminals
    assert "\r" not in captured.err and "it/s" not in captured.err

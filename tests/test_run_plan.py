"""The run plan: which first-stage models run, by their estimated cost, logged before the
first model node."""

from __future__ import annotations

from types import SimpleNamespace

import scipy.sparse as sp

from movie_rec.hooks import RuntimeHooks
from movie_rec.models.cost import DataShape
from movie_rec.parameters import model_settings, run_plan
from movie_rec.registry import first_stage_models, spec


def with_budget(params: dict, minutes: float) -> dict:
    budget = {"cpu": minutes, "cuda": minutes}
    return {**params, "runtime": {**params["runtime"], "auto_max_minutes": budget}}


def test_auto_turns_off_exactly_the_models_whose_estimate_exceeds_the_budget(shipped):
    params = shipped
    shape = DataShape(3000, 3500, 270_000)
    everything = run_plan(with_budget(params, 1e9), shape, "cpu")
    assert [row.model for row in everything] == first_stage_models()
    auto = {row.model: row.minutes for row in everything if row.enabled == "auto"}
    shared = [row for row in everything if row.enabled == "auto" and row.budget_minutes == 1e9]
    assert len(shared) >= 2 and all(row.runs for row in shared)  # no model's own budget
    budget = (min(auto.values()) + max(auto.values())) / 2
    for row in run_plan(with_budget(params, budget), shape, "cpu"):
        if row.enabled == "auto":
            own = model_settings(row.model, params[spec(row.model).pipeline]).auto_max_minutes
            assert row.budget_minutes == (budget if own is None else own.cpu)
            assert row.runs == (row.minutes <= row.budget_minutes)
            assert row.minutes == auto[row.model] or row.trials == 0  # untuned: tuning auto
        else:
            assert row.runs is row.enabled
    on_gpu = {row.model: row.minutes for row in run_plan(params, shape, "cuda")}
    assert all(on_gpu[row.model] < row.minutes for row in everything if row.minutes > 0)


def test_a_models_own_budget_replaces_the_runtimes_either_way(shipped):
    shape = DataShape(3000, 3500, 270_000)
    section = {**shipped["general_rec"]["recvae"], "enabled": "auto", "auto_max_minutes": None}
    shared = model_settings("recvae", {"recvae": section}).auto_on(shape, "cpu", 1e9)
    assert shared.on and "runtime.auto_max_minutes.cpu = 1e+09" in str(shared)
    for own, on in ((shared.minutes * 0.99, False), (shared.minutes * 1.01, True)):
        section["auto_max_minutes"] = {"cpu": own, "cuda": 30.0}
        settings = model_settings("recvae", {"recvae": section})
        for runtime_budget in (0.0, 1e9):
            choice = settings.auto_on(shape, "cpu", runtime_budget)
            assert choice.on is on and choice.budget_minutes == own
            assert "its own auto_max_minutes.cpu" in str(choice)


def test_tuning_auto_tunes_while_the_tuned_run_fits_and_else_keeps_the_fixed_values(shipped):
    section = {**shipped["general_rec"]["admm_slim"], "enabled": "auto"}
    section["tuning"] = {**section["tuning"], "enabled": "auto", "n_trials": 12}
    settings = model_settings("admm_slim", {"common": {}, "admm_slim": section})
    shape = DataShape(3000, 3500, 270_000)
    untuned = settings.run_cost(shape, 0).seconds("cpu") / 60
    tuned = settings.run_cost(shape, 12).seconds("cpu") / 60
    assert tuned > 6 * untuned  # 12 trials and two fits against the two fits alone
    chosen = {
        budget: settings.auto_on(shape, "cpu", budget)
        for budget in (tuned, (tuned + untuned) / 2, untuned * 0.99)
    }
    assert [(c.trials, c.on) for c in chosen.values()] == [(12, True), (0, True), (0, False)]
    assert [c.minutes for c in chosen.values()] == [tuned, untuned, untuned]
    always_tuned = {**section, "tuning": {**section["tuning"], "enabled": True}}
    always = model_settings("admm_slim", {"admm_slim": always_tuned})
    choice = always.auto_on(shape, "cpu", (tuned + untuned) / 2)
    assert (choice.trials, choice.on) == (12, False)  # tuning true: the tuned run or nothing


def test_the_plan_is_logged_once_before_the_first_model_node(shipped, caplog):
    hooks = RuntimeHooks()
    hooks.params = with_budget(shipped, 0.0)
    hooks.params["runtime"]["device"] = "cpu"
    matrix = sp.random(300, 200, density=0.05, format="csr", random_state=0)
    with caplog.at_level("INFO", logger="movie_rec.hooks"):
        hooks.before_node_run(SimpleNamespace(namespace=None), {"train_matrix_valid": matrix})
        assert "run plan" not in caplog.text  # a data_processing node: no plan yet
        for _ in range(2):
            hooks.before_node_run(SimpleNamespace(namespace="ease"), {"train_matrix_valid": matrix})
    assert caplog.text.count("run plan on cpu for 300 users x 200 movies") == 1
    rows = [r.getMessage().removeprefix("run plan | ") for r in caplog.records]
    assert all("\n" not in row for row in rows)  # one model a record, readable in a log file
    lines = {row.split()[0]: row.split() for row in rows if not row.startswith("run plan")}
    for name in ("sasrec", "gru4rec", "multivae"):
        assert lines[name][1] == "auto" and lines[name][-1] == "off"  # budget 0
    assert lines["ease"][-1] == "on"


def test_a_hook_without_a_context_logs_no_plan(caplog):
    """A Dask worker runs the node hooks of a fresh hook object, with no context."""
    matrix = sp.random(30, 20, density=0.1, format="csr", random_state=0)
    with caplog.at_level("INFO", logger="movie_rec.hooks"):
        RuntimeHooks().before_node_run(
            SimpleNamespace(namespace="ease"), {"train_matrix_valid": matrix}
        )
    assert "run plan" not in caplog.text

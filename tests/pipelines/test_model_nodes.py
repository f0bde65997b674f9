"""The registry and the nodes every registered model runs, in memory on tiny data."""

from __future__ import annotations

import re
from dataclasses import replace

import optuna
import pandas as pd
import pytest
import torch
import yaml

from movie_rec.evaluation import CANDIDATE_COLUMNS, check_candidates
from movie_rec.models.cost import DataShape
from movie_rec.models.ease import EASEConfig
from movie_rec.parameters import CandidateSettings, TuningSettings
from movie_rec.pipelines.model_nodes import ModelNodes, Validation
from movie_rec.records import Skipped
from movie_rec.registry import KINDS, MODELS, PIPELINES, models_of, spec
from movie_rec.runtime import AutoBudget, RuntimeSettings, configure_kernels
from tests.conftest import REPO_ROOT, TEST_SPLIT, process

RUNTIME = RuntimeSettings(device="cpu", seed=5)
CANDIDATES = CandidateSettings(k=20, batch_size=64)


def parameters(pipeline: str) -> dict:
    text = (REPO_ROOT / "conf" / "base" / f"parameters_{pipeline}.yml").read_text()
    return yaml.safe_load(text)[pipeline]


def test_every_registered_model_has_a_known_pipeline_kind_and_parameter_section():
    for name, entry in MODELS.items():
        assert entry.name == name
        assert entry.pipeline in PIPELINES and entry.kind in KINDS
        if entry.model is not None:
            section = parameters(entry.pipeline)[name]
            assert section["enabled"] in (True, False, "auto")


def test_models_of_a_pipeline_and_unknown_names():
    assert [m.name for m in models_of("general_rec")][:3] == ["popular", "ease", "user_ease"]
    assert "markov" in [m.name for m in models_of("sequential_rec")]
    with pytest.raises(KeyError, match="registered models: popular, ease"):
        spec("ease_plus")
    with pytest.raises(ValueError, match="unknown pipeline"):
        models_of("ensembling")


def test_enabled_auto_runs_a_model_while_its_estimate_fits_the_budget(tiny_data, caplog):
    matrix = tiny_data["train_matrix_valid"]
    common, own = _ease_settings(enabled="auto")
    settings = ModelNodes("ease").settings(common, own)

    def budget(minutes: float) -> RuntimeSettings:
        return replace(RUNTIME, auto_max_minutes=AutoBudget(cpu=minutes))

    minutes = settings.auto(budget(0.0), matrix).minutes
    assert 0 < minutes < 1  # three tuning trials and two fits of EASE on 120 movies
    assert settings.runs_on(budget(minutes * 1.01), matrix)
    assert not settings.runs_on(budget(minutes * 0.99), matrix)
    assert ModelNodes("ease").settings(*_ease_settings(enabled=True)).runs_on(RUNTIME, matrix)
    assert not ModelNodes("ease").settings(*_ease_settings(enabled=False)).runs_on(RUNTIME, matrix)

    data = (tiny_data["split_train"], matrix, tiny_data["valid_answers"])
    over = budget(minutes / 2)
    with caplog.at_level("INFO", logger="movie_rec.pipelines.model_nodes"):
        empty, skipped, _ = ModelNodes("ease").fit_valid(
            *data, EASEConfig(**own["hyperparameters"]), common, own, over, CANDIDATES
        )
    assert empty.empty and skipped == Skipped("ease")
    assert re.search(
        r"ease: enabled auto: about [\d.]+ min on cpu by estimate "
        r"\(3 tuning trials and two fits\), over .*: off",
        caplog.text,
    )
    final = ModelNodes("ease").fit_final(
        tiny_data["interactions"], tiny_data["train_matrix_full"],
        EASEConfig(**own["hyperparameters"]), skipped, skipped, common, own,
        budget(1e9), CANDIDATES,
    )  # fmt: skip
    assert final[0].empty and final[2] == Skipped("ease")  # the validation fit's choice


def test_validation_on_last_reads_only_the_last_answers(tiny_data):
    answers, matrix = tiny_data["valid_answers"], tiny_data["train_matrix_valid"]
    last = Validation.on(answers, matrix, "last", 64)
    assert set(last.answers["kind"]) == {"last"}
    assert len(Validation.on(answers, matrix, "overall", 64).answers) == len(answers)
    with pytest.raises(ValueError, match="stop_on"):
        Validation.on(answers, matrix, "random", 64)


def _ease_settings(enabled: bool = True) -> tuple[dict, dict]:
    own = {
        "enabled": enabled,
        "hyperparameters": {"lam": 50.0, "p": 0.0},
        "tuning": {
            "enabled": True,
            "n_trials": 3,
            "search_space": {"lam": {"type": "float", "low": 1.0, "high": 500.0, "log": True}},
        },
    }
    return {}, own


def test_fit_valid_gives_valid_candidates_and_a_disabled_model_writes_empty_ones(tiny_data):
    nodes = ModelNodes("ease")
    common, own = _ease_settings()
    data = (tiny_data["split_train"], tiny_data["train_matrix_valid"], tiny_data["valid_answers"])
    candidates, report, model = nodes.fit_valid(
        *data, EASEConfig(**own["hyperparameters"]), common, own, RUNTIME, CANDIDATES
    )
    check_candidates(candidates, tiny_data["train_matrix_valid"], CANDIDATES.k)
    assert report.model == "ease" and report.hyperparameters["lam"] == 50.0
    assert model == Skipped("ease")  # its final fit refits: nothing to hand over
    common, off = _ease_settings(enabled=False)
    empty, skipped, _ = nodes.fit_valid(
        *data, EASEConfig(**off["hyperparameters"]), common, off, RUNTIME, CANDIDATES
    )
    assert empty.empty and list(empty.columns) == CANDIDATE_COLUMNS
    assert skipped == Skipped("ease")


def test_tuning_auto_runs_the_study_only_while_the_tuned_run_fits_the_budget(
    tiny_data, tmp_path, caplog
):
    common, own = _ease_settings()
    own["tuning"]["enabled"] = "auto"
    matrix = tiny_data["train_matrix_valid"]
    settings = ModelNodes("ease").settings(common, own)
    shape = DataShape.of(matrix)
    untuned, tuned = (settings.run_cost(shape, n).seconds("cpu") / 60 for n in (0, 3))
    tuning = TuningSettings(storage_dir=str(tmp_path), max_eval_users=None, batch_size=64)

    def tune(budget: float):
        runtime = replace(RUNTIME, auto_max_minutes=AutoBudget(cpu=budget))
        return ModelNodes("ease").tune(
            tiny_data["split_train"], matrix, tiny_data["valid_answers"],
            common, own, tuning, runtime,
        )  # fmt: skip

    with caplog.at_level("INFO", logger="movie_rec.pipelines.model_nodes"):
        fixed, none = tune((untuned + tuned) / 2)
    assert fixed == EASEConfig(**own["hyperparameters"]) and none.empty
    assert "ease: tuning auto: the tuned run is over the budget by estimate" in caplog.text
    best, trials = tune(tuned)
    assert len(trials) == 3 and best.lam == trials.loc[trials["value"].idxmax(), "params_lam"]


def test_a_study_resumes_on_the_same_split_and_restarts_on_another(tiny_raw, tiny_data, tmp_path):
    nodes = ModelNodes("ease")
    common, own = _ease_settings()
    tuning = TuningSettings(storage_dir=str(tmp_path), max_eval_users=None, batch_size=64)

    def tune(data: dict):
        return nodes.tune(
            data["split_train"], data["train_matrix_valid"], data["valid_answers"],
            common, own, tuning, RUNTIME,
        )  # fmt: skip

    best, trials = tune(tiny_data)
    assert len(trials) == 3 and best.lam == trials.loc[trials["value"].idxmax(), "params_lam"]
    storage = f"sqlite:///{tmp_path / 'optuna_movie_rec.db'}"

    def studies() -> dict[str, int]:
        return {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}

    assert list(studies().values()) == [3]
    again_best, again = tune(tiny_data)
    assert again_best == best and list(studies().values()) == [3]  # resumed, no new trial
    pd.testing.assert_frame_equal(
        again.drop(columns="duration_seconds"), trials.drop(columns="duration_seconds")
    )
    other_split = process(tiny_raw, replace(TEST_SPLIT, seed=TEST_SPLIT.seed + 1))
    tune(other_split)
    assert sorted(studies().values()) == [3, 3]  # another split: a study of its own


def test_kernels_deterministic_on_the_cpu_and_on_cuda_only_when_asked():
    try:
        configure_kernels(torch.device("cuda"))
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        configure_kernels(torch.device("cuda"), cuda_deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        configure_kernels(torch.device("cpu"))
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cuda.matmul.allow_tf32


def _multivae_settings(final_updates: int | None) -> tuple[dict, dict]:
    own = {
        "enabled": True,
        "hyperparameters": {"hidden": 16, "latent": 8, "batch_size": 32},
        "train": {"max_updates": 30, "eval_every": 10, "final_updates": final_updates},
        "tuning": {"enabled": False},
    }
    return {}, own


def test_a_final_fit_that_continues_starts_from_the_validation_fits_kept_weights(tiny_data):
    nodes = ModelNodes("multivae")
    valid = (tiny_data["split_train"], tiny_data["train_matrix_valid"], tiny_data["valid_answers"])
    final = (tiny_data["interactions"], tiny_data["train_matrix_full"])
    common, own = _multivae_settings(final_updates=0)
    config = nodes.settings(common, own).hyperparameters
    _, report, model = nodes.fit_valid(*valid, config, common, own, RUNTIME, CANDIDATES)
    kept = {name: value.clone() for name, value in model.net.state_dict().items()}

    as_is, fitted, as_is_report = nodes.fit_final(
        *final, config, report, model, common, own, RUNTIME, CANDIDATES
    )
    check_candidates(as_is, tiny_data["train_matrix_full"], CANDIDATES.k)
    assert as_is_report.training.updates == report.best_update  # not one update more
    for name, value in fitted.net.state_dict().items():
        assert torch.equal(value, kept[name])
    assert fitted.beta == model.config.beta_cap * report.best_update / 2000  # β from there on

    common, own = _multivae_settings(final_updates=5)
    _, moved, moved_report = nodes.fit_final(
        *final, config, report, model, common, own, RUNTIME, CANDIDATES
    )
    assert moved_report.training.updates == report.best_update + 5
    assert not torch.equal(moved.net.decoder[-1].weight, kept["decoder.2.weight"])
    for name, value in model.net.state_dict().items():  # the validation fit's model unchanged
        assert torch.equal(value, kept[name])

    with pytest.raises(ValueError, match="rerun its fit_valid"):
        nodes.fit_final(
            *final, config, report, Skipped("multivae"), common, own, RUNTIME, CANDIDATES
        )


def test_only_a_model_trained_in_updates_may_continue_its_validation_fit():
    with pytest.raises(ValueError, match=r"ease\.train\.final_updates"):
        ModelNodes("ease").settings({}, {"train": {"final_updates": 0}})

"""The parameter schema: the shipped parameters pass, each bad one stops the run at once with
its file, dotted key, value and what is allowed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from movie_rec.params_schema import ParameterError, parameter_problems, validate_parameters
from tests.conftest import run_pipeline


def changed(params: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``params`` with dotted ``key`` set to ``value``."""
    result = copy.deepcopy(params)
    *parents, leaf = key.split(".")
    node = result
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return result


def messages(params: dict[str, Any]) -> list[str]:
    return [str(problem) for problem in parameter_problems(params)]


def test_the_shipped_parameters_pass(shipped):
    assert messages(shipped) == []
    validate_parameters(shipped)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "sequential_rec.sasrec.hyperparameters.loss",
            "focal",
            "parameters_sequential_rec.yml: sequential_rec.sasrec.hyperparameters.loss = "
            "'focal': expected one of ce, sampled, bce",
        ),
        (
            "data_processing.split.n_random",
            20,
            "parameters_data_processing.yml: data_processing.split.n_last + n_random = 24 "
            "must be smaller than min_history = 16",
        ),
        (
            "sequential_rec.sknn.stop_on",
            "random",
            "parameters_sequential_rec.yml: sequential_rec.sknn.stop_on = 'random': "
            "expected one of overall, last",
        ),
        (
            "general_rec.ease.enabled",
            "maybe",
            "parameters_general_rec.yml: general_rec.ease.enabled = 'maybe': "
            "expected one of true, false, auto",
        ),
        (
            "runtime.device",
            "tpu",
            "parameters.yml: runtime.device = 'tpu': expected one of auto, cpu, cuda or cuda:N",
        ),
        (
            "ensembling.weighted_rank.head",
            40,
            "parameters_ensembling.yml: ensembling.weighted_rank.head = 40 "
            "must not exceed max_cutoff = 30",
        ),
        (
            "general_rec.multivae.tuning.pruner.interval_steps",
            0,
            "parameters_general_rec.yml: general_rec.multivae.tuning.pruner = "
            "{'n_startup_trials': 2, 'n_warmup_steps': 10, 'interval_steps': 0}: "
            "Pruning interval steps must be at least 1, but got interval_steps=0.",
        ),
        (
            "runtime.dask_address",
            "scheduler",
            "parameters.yml: runtime.dask_address = 'scheduler': "
            "expected a scheduler address such as tcp://HOST:8786",
        ),
        (
            "tuning.storage",
            "redis://host:6379",
            "parameters.yml: tuning.storage = 'redis://host:6379': "
            "expected an RDB URL (postgresql, mysql, sqlite) or the path of a journal file",
        ),
        (
            "general_rec.ease.tuning.search_space.lam",
            {"type": "float", "low": 5000.0, "high": 10.0, "log": True},
            "parameters_general_rec.yml: general_rec.ease.tuning.search_space.lam.low = 5000.0 "
            "must be smaller than high = 10.0",
        ),
    ],
)
def test_a_bad_value_is_named_with_its_file_key_value_and_choices(shipped, key, value, expected):
    assert messages(changed(shipped, key, value)) == [expected]


@pytest.mark.parametrize(
    ("key", "value", "parts"),
    [
        ("foo", 1, ["parameters", "foo = 1", "unknown key", "runtime, candidates"]),
        (
            "general_rec.nope",
            {"enabled": True},
            ["parameters_general_rec.yml: general_rec.nope", "not a registered", "ease, user_ease"],
        ),
        (
            "general_rec.ease.hyperparameters.alpha",
            1.0,
            [
                "parameters_general_rec.yml: general_rec.ease.hyperparameters.alpha = 1.0",
                "not a hyperparameter of ease; expected one of lam, p",
            ],
        ),
        (
            "candidates.k",
            -5,
            ["parameters.yml: candidates.k = -5", "greater than or equal to 1"],
        ),
        (
            "ensembling.models",
            ["nope"],
            [
                "parameters_ensembling.yml: ensembling.models = ['nope']",
                "unknown model(s) ['nope']",
                "ease, user_ease",
            ],
        ),
    ],
)
def test_an_unknown_or_out_of_range_value_names_what_is_allowed(shipped, key, value, parts):
    (message,) = messages(changed(shipped, key, value))
    for part in parts:
        assert part in message


def test_a_bad_common_value_is_reported_once_where_it_is_written(shipped):
    # sknn sets its own stop_on; every other sequential model inherits common's
    bad = changed(shipped, "sequential_rec.common.stop_on", "random")
    assert messages(bad) == [
        "parameters_sequential_rec.yml: sequential_rec.common.stop_on = 'random': "
        "expected one of overall, last"
    ]


def test_every_value_a_search_space_draws_must_build_the_models_config(shipped):
    bad = changed(
        shipped, "general_rec.ease.tuning.search_space.p", {"type": "float", "low": 0, "high": 1}
    )
    (message,) = messages(bad)
    assert message.startswith(
        "parameters_general_rec.yml: general_rec.ease.tuning.search_space.p.high = 1: invalid p"
    )
    assert "[0, 1)" in message  # EASEConfig's own check


def test_a_search_space_key_must_be_a_hyperparameter_of_the_model(shipped):
    bad = changed(
        shipped,
        "sequential_rec.markov.tuning.search_space.depth",
        {"type": "int", "low": 1, "high": 3},
    )
    (message,) = messages(bad)
    assert message.startswith(
        "parameters_sequential_rec.yml: sequential_rec.markov.tuning.search_space.depth: "
        "not a hyperparameter of markov"
    )
    assert "k, lags, lag_decay, recency_decay, tie_break" in message


def test_every_problem_is_listed_in_one_error(shipped):
    bad = changed(changed(shipped, "candidates.k", 0), "runtime.device", "tpu")
    with pytest.raises(ParameterError) as raised:
        validate_parameters(bad)
    assert len(raised.value.problems) == 2
    assert "candidates.k = 0" in str(raised.value) and "runtime.device = 'tpu'" in str(raised.value)


def test_bad_parameters_stop_a_kedro_run_before_any_node(kedro_project):
    with pytest.raises(ParameterError, match=r"data_processing.split.n_last \+ n_random = 30"):
        run_pipeline(kedro_project, "data_processing", {"data_processing.split.n_last": 24})
    written = [path for path in (kedro_project / "data").rglob("*") if path.is_file()]
    assert all(path.is_relative_to(kedro_project / "data" / "01_raw") for path in written)
    assert not (kedro_project / "data" / "02_intermediate").exists()

"""Settings resolved once: a model's section over `common` as one typed object that every
reader uses, each default stated once (the dataclasses), the YAML holding only what differs."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from movie_rec.models.ease import EASEConfig
from movie_rec.models.sequential.s3rec import SECTION, S3RecConfig
from movie_rec.models.training import TrainConfig
from movie_rec.parameters import (
    CandidateSettings,
    EnsemblingSettings,
    EvaluationSettings,
    KindGain,
    ModelSettings,
    PreprocessingSettings,
    ReportingSettings,
    SettingsSource,
    Study,
    TabularSettings,
    TuningSettings,
    model_settings,
    model_source,
)
from movie_rec.pipelines.model_nodes import ModelNodes
from movie_rec.pipelines.sequential_rec.nodes import fine_tuned_models, pretrain_s3rec
from movie_rec.records import FitReport, Skipped
from movie_rec.registry import models_of
from movie_rec.runtime import RuntimeSettings
from movie_rec.splits import SplitSettings
from tests.conftest import REPO_ROOT

RUNTIME = RuntimeSettings(device="cpu", seed=3)
CANDIDATES = CandidateSettings(k=10, batch_size=64)
MODEL_PIPELINES = ("general_rec", "sequential_rec")


def test_a_section_merges_over_common_one_level_deep():
    common = {"train": {"max_updates": 10, "patience": 3}, "stop_on": "last"}
    own = {"train": {"patience": 7}, "enabled": True}
    source = SettingsSource("sequential_rec", "sasrec", common, own)
    assert source.merged == {
        "train": {"max_updates": 10, "patience": 7},
        "stop_on": "last",
        "enabled": True,
    }
    assert common["train"]["patience"] == 3
    assert source.path("train", "patience") == ("sequential_rec", "sasrec", "train", "patience")
    assert source.path("train", "max_updates") == (
        "sequential_rec",
        "common",
        "train",
        "max_updates",
    )
    settings = source.settings(EASEConfig)
    assert settings.train == TrainConfig(max_updates=10, patience=7) and settings.enabled is True


def test_what_no_section_sets_is_the_dataclass_default():
    settings = model_settings("ease", {"common": {}, "ease": {}})
    assert settings == ModelSettings(hyperparameters=EASEConfig())
    assert (settings.enabled, settings.stop_on, settings.train) == (False, "overall", TrainConfig())
    assert settings.tuning == Study() and settings.tuning.pruner == {}  # Optuna's defaults
    common = {"tuning": {"pruner": {"n_startup_trials": 2, "n_warmup_steps": 1}}}
    tuned = model_settings("ease", {"common": common, "ease": {"tuning": {"pruner": {}}}})
    assert tuned.tuning.pruner == {}  # a nested section replaces common's one level down
    assert EnsemblingSettings.from_params({}).release_filter.slack == 1


def without_enabled(section: dict[str, Any], enabled: Any) -> dict[str, Any]:
    """A pipeline's parameters with ``enabled`` only in ``common``."""
    result = copy.deepcopy(section)
    for name, own in result.items():
        if name != "common":
            own.pop("enabled", None)
    result["common"]["enabled"] = enabled
    return result


@pytest.mark.parametrize("pipeline", MODEL_PIPELINES)
def test_enabled_in_common_is_honoured_by_every_model(shipped, tiny_data, pipeline):
    matrix, history = tiny_data["train_matrix_valid"], tiny_data["split_train"]
    for enabled in (True, False, "auto"):
        params = without_enabled(shipped[pipeline], enabled)
        for spec in models_of(pipeline):
            assert model_settings(spec.name, params).enabled == enabled
    off = without_enabled(shipped[pipeline], False)
    for spec in models_of(pipeline):
        candidates, report, _ = ModelNodes(spec.name).fit_valid(
            history, matrix, tiny_data["valid_answers"], spec.config(), off["common"],
            off[spec.name], RUNTIME, CANDIDATES,
        )  # fmt: skip
        assert candidates.empty and report == Skipped(spec.name)
    on = without_enabled(shipped[pipeline], True)
    first = models_of(pipeline)[0].name  # the cheapest of each pipeline
    candidates, report, _ = ModelNodes(first).fit_valid(
        history, matrix, tiny_data["valid_answers"], models_of(pipeline)[0].config(),
        on["common"], on[first], RUNTIME, CANDIDATES,
    )  # fmt: skip
    assert not candidates.empty and isinstance(report, FitReport)


def test_s3rec_pretraining_follows_the_fine_tuned_models_enabled_in_common(shipped, tiny_data):
    assert fine_tuned_models() == ["s3rec_sasrec", "s3rec_bert4rec"]
    matrix = tiny_data["train_matrix_valid"]
    tiny = {"hyperparameters": {"hidden": 16, "max_len": 8, "pretrain_updates": 2}}
    side = [tiny_data[name] for name in ("item_features", "item_directors", "item_writers")]

    def pretrained(enabled: Any) -> dict[str, Any] | Skipped:
        params = without_enabled(shipped["sequential_rec"], enabled)
        params[SECTION] = tiny
        params["common"]["train"] = {**params["common"]["train"], "progress": False}
        return pretrain_s3rec(tiny_data["split_train"], matrix, *side, params, RUNTIME)

    assert pretrained(False) == Skipped(SECTION)
    payload = pretrained(True)
    assert payload["config"]["n_items"] == matrix.shape[1] and "backbone" in payload
    assert payload["config"]["hidden"] == 16


def changes_something(params: dict[str, Any], pipeline: str, section: str, path: list) -> bool:
    """Whether removing ``path`` from ``section`` changes any model's resolved settings (or
    S3Rec pre-training's)."""
    configs = {spec.name: spec.config for spec in models_of(pipeline)}
    if pipeline == "sequential_rec":
        configs[SECTION] = S3RecConfig

    def resolved(section_params: dict[str, Any]) -> list[ModelSettings]:
        return [
            model_source(pipeline, name, section_params).settings(config)
            for name, config in configs.items()
        ]

    trimmed = copy.deepcopy(params)
    node = trimmed[section]
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return resolved(params) != resolved(trimmed)


@pytest.mark.parametrize("pipeline", MODEL_PIPELINES)
def test_the_parameter_files_set_no_value_equal_to_its_default(shipped, pipeline):
    params = shipped[pipeline]
    if pipeline == "sequential_rec":
        assert SECTION not in params  # pre-training runs on its defaults
    redundant = [
        f"{pipeline}.{section}.{group}.{key}"
        for section, own in params.items()
        for group in ("hyperparameters", "train")
        for key in (own.get(group) or {})
        if not changes_something(params, pipeline, section, [group, key])
    ]
    assert redundant == []


def test_the_ensembling_file_sets_only_what_differs_from_its_dataclass(shipped):
    section = shipped["ensembling"]
    defaults = EnsemblingSettings().to_dict()
    assert [key for key, value in section.items() if defaults[key] == value] == []
    settings = EnsemblingSettings.from_params(section)
    assert settings.priority_order[0] == "lgbm_ranker" and settings.weighted_rank.head == 10


SETTINGS_SECTIONS = [
    (("runtime",), RuntimeSettings),
    (("candidates",), CandidateSettings),
    (("tuning",), TuningSettings),
    (("data_processing", "preprocessing"), PreprocessingSettings),
    (("evaluation",), EvaluationSettings),
    (("data_processing", "split"), SplitSettings),
    (("tabular_rec",), TabularSettings),
    (("ensembling",), EnsemblingSettings),
    (("reporting",), ReportingSettings),
]


@pytest.mark.parametrize(("path", "settings_type"), SETTINGS_SECTIONS)
def test_a_settings_section_sets_only_what_differs_from_its_dataclass(shipped, path, settings_type):
    section = shipped[path[0]] if len(path) == 1 else shipped[path[0]][path[1]]
    defaults = settings_type().to_dict()
    assert [key for key, value in section.items() if defaults[key] == value] == []
    assert settings_type.from_params(section).to_dict() == {**defaults, **section}


def test_the_tabular_settings_build_the_second_stages_configs(shipped):
    section = shipped["tabular_rec"]
    settings = TabularSettings.from_params({**section, "markov_k": [1, 2], "cooc_window": 5})
    assert settings.features().markov_k == (1, 2) and settings.features().cooc_window == 5
    ranker = settings.ranker(seed=7)
    assert ranker.seed == 7 and ranker.lgbm == section["lgbm"]
    assert ranker.kind_gain == {"last": settings.kind_gain.last, "random": 1.5}
    with pytest.raises(ValueError, match="negative_share"):
        TabularSettings(objective="lambdarank")  # row weights need the binary objective


def test_no_code_restates_a_settings_default_by_reading_its_key_with_a_fallback():
    fields = {
        field.name
        for _, settings_type in SETTINGS_SECTIONS
        for field in dataclasses.fields(settings_type)
    }
    restated = [
        f"{path}:{number}"
        for path in sorted((REPO_ROOT / "src").rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(f'.get("{name}", ' in line for name in fields)
    ]
    assert restated == []


def test_nodes_receive_their_sections_as_settings_built_once_per_run(kedro_project):
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(kedro_project)
    overrides = {"tabular_rec": {"n_folds": 2, "kind_gain": {"last": 3.0}}}
    with KedroSession.create(project_path=kedro_project, runtime_params=overrides) as session:
        catalog = session.load_context().catalog
        read = {name for name in pipelines["__default__"].inputs() if name.startswith("params:")}
    typed = {f"params:{'.'.join(path)}" for path, _ in SETTINGS_SECTIONS}
    model_sections = {name for name in read if name.split(":")[1].split(".")[0] in MODEL_PIPELINES}
    assert read - model_sections == typed  # every other section a node reads is typed
    for path, settings_type in SETTINGS_SECTIONS:
        assert type(catalog.load(f"params:{'.'.join(path)}")) is settings_type
    tabular = catalog.load("params:tabular_rec")
    assert tabular.n_folds == 2 and tabular.kind_gain == KindGain(last=3.0)

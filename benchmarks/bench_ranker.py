"""Benchmark: second-stage variants judged out of fold on kept projects, first stages untouched.

For each project (a folder ``bench_real.py --keep DIR`` left, ``DIR/seed_S``) the validation
candidates of every first-stage model it ran are read through the project's catalog and the
ranker's features built once, as ``tabular_rec`` builds them with the project's parameters.
Each variant (``NAME:KEY=VALUE,...`` over ``tabular_rec``'s parameters: ``bags=1``,
``objective=lambdarank``, ``lgbm.learning_rate=0.1``, ``kind_gain.random=2``, and
``drop=PATTERN`` to leave out the feature columns matching a shell pattern, ``markov_*`` or
``*_score_z``, repeatable;
``extra_splits=N`` trains on the rows of the first N extra holdouts too, built once per
project for the largest N asked) is trained out of fold as the ranker trains (user-grouped
folds, every bag) and its top 10 judged on every validated user. Prints per variant and project Recall@10 overall / last /
random and per mix with the ratio to EASE's list, then the mean ratio ± its standard error
over the projects.

    python benchmarks/bench_ranker.py --projects DIR/seed_42 DIR/seed_1 DIR/seed_2 \
        --variants default "lambdarank:objective=lambdarank" "one_bag:bags=1"
"""

from __future__ import annotations

import argparse
import time
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from movie_rec.evaluation import recall_at_k, recall_by_mix
from movie_rec.parameters import CandidateSettings, EvaluationSettings, TabularSettings
from movie_rec.pipelines.tabular_rec.nodes import (
    HYPERPARAMETERS,
    build_features_extra,
    build_features_valid,
)
from movie_rec.registry import first_stage_models
from movie_rec.runtime import RuntimeSettings
from movie_rec.second_stage import ranker
from movie_rec.second_stage.candidates import label_pairs
from movie_rec.second_stage.features import SPLIT
from movie_rec.second_stage.holdouts import refittable_models
from movie_rec.splits import SplitSettings

REFERENCE = "ease"
INPUTS = ("split_train", "train_matrix_valid", "item_features", "item_directors",
          "item_writers", "valid_answers")  # fmt: skip


def parse_variant(text: str) -> tuple[str, dict[str, str], list[str]]:
    """``NAME:KEY=VALUE,...`` → (name, parameter overrides, dropped column patterns)."""
    name, _, settings = text.partition(":")
    overrides, drops = {}, []
    for item in filter(None, settings.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--variants: expected KEY=VALUE in {text!r}, got {item!r}")
        if key == "drop":
            drops.append(value)
        else:
            overrides[key] = value
    return name, overrides, drops


def with_overrides(params: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """``tabular_rec``'s parameters with ``KEY=VALUE`` set; ``SECTION.KEY`` sets a key of a
    mapping parameter (``lgbm.num_leaves``, ``kind_gain.random``)."""
    params = {key: dict(value) if isinstance(value, dict) else value
              for key, value in params.items()}  # fmt: skip
    for key, value in overrides.items():
        section, _, leaf = key.rpartition(".")
        (params.setdefault(section, {}) if section else params)[leaf] = yaml.safe_load(value)
    return params


def project_inputs(project: Path) -> tuple[dict[str, Any], dict[str, pd.DataFrame], dict, dict]:
    """The project's parameters, its validation inputs, each first stage's candidates and
    the refittable models' hyperparameters."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.config_loader["parameters"]  # as written
        inputs = {name: catalog.load(name) for name in INPUTS}
        first_stage = {m: catalog.load(f"{m}.candidates_valid") for m in first_stage_models()}
        tuned = {m + HYPERPARAMETERS: catalog.load(f"{m}.hyperparameters")
                 for m in refittable_models()}  # fmt: skip
    return params, inputs, first_stage, tuned


def extra_rows(
    params: dict[str, Any],
    inputs: dict,
    first_stage: dict,
    tuned: dict,
    features: pd.DataFrame,
    count: int,
) -> ranker.LabelledRows:
    """The labelled rows of ``count`` extra holdouts, as ``tabular_rec`` builds them."""
    refit = {m: first_stage[m] for m in refittable_models()}
    return build_features_extra(
        **inputs, features_valid=features,
        settings=TabularSettings.from_params({**params["tabular_rec"], "extra_splits": count}),
        split=SplitSettings.from_params(params["data_processing"]["split"]),
        runtime=RuntimeSettings.from_params(params["runtime"]),
        candidates=CandidateSettings.from_params(params["candidates"]), **refit, **tuned,
    )  # fmt: skip


def extra_of(rows: ranker.LabelledRows, count: int, kept: list[str]) -> ranker.LabelledRows:
    """The rows of the first ``count`` extra holdouts, with the ``kept`` columns."""
    mask = (rows.features[SPLIT] <= count).to_numpy()
    return ranker.LabelledRows(rows.features.loc[mask, [*kept, SPLIT]], rows.labels[mask])


def judged(ranked: pd.DataFrame, answers: pd.DataFrame, mixes: list) -> dict[str, float]:
    overall = recall_at_k(ranked, answers)
    return {**overall, **recall_by_mix(ranked, answers, [tuple(mix) for mix in mixes])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=Path, nargs="+", required=True)
    parser.add_argument("--variants", nargs="+", default=["default"])
    args = parser.parse_args()
    variants = [parse_variant(text) for text in args.variants]
    ratios: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in variants}
    most = max(int(overrides.get("extra_splits", 0)) for _, overrides, _ in variants)
    for project in args.projects:
        params, inputs, first_stage, tuned = project_inputs(project)
        answers = inputs["valid_answers"]
        mixes = EvaluationSettings.from_params(params["evaluation"]).pairs()
        tabular = TabularSettings.from_params(params["tabular_rec"])
        features, _ = build_features_valid(**inputs, settings=tabular, **first_stage)
        started = time.perf_counter()
        extra = extra_rows(params, inputs, first_stage, tuned, features, most)
        print(f"{project}: {most} extra splits in {time.perf_counter() - started:.0f} s")
        reference = judged(first_stage[REFERENCE], answers, mixes)
        print(
            f"\n{project}: {REFERENCE} " + "  ".join(f"{k} {v:.4f}" for k, v in reference.items())
        )
        for name, overrides, drops in variants:
            started = time.perf_counter()
            settings = with_overrides(params["tabular_rec"], overrides)
            kept = [c for c in features.columns if not any(fnmatch(c, d) for d in drops)]
            frame = features[kept]
            tabular = TabularSettings.from_params(settings)
            config = tabular.ranker(RuntimeSettings.from_params(params["runtime"]).seed)
            oof = ranker.out_of_fold_scores(
                frame, label_pairs(frame, answers), tabular.n_folds, config,
                extra_of(extra, tabular.extra_splits, kept),
            )  # fmt: skip
            figures = judged(ranker.rank_candidates(frame, oof.scores, 10), answers, mixes)
            ratios[name].append({k: v / reference[k] for k, v in figures.items()})
            print(f"  {name:<20} {time.perf_counter() - started:5.0f} s  "
                  + "  ".join(f"{k} {v:.4f}" for k, v in figures.items()))  # fmt: skip
    print(f"\nratio to {REFERENCE}, mean ± standard error over {len(args.projects)} projects")
    for name, rows in ratios.items():
        table = pd.DataFrame(rows)
        se = table.std(ddof=1) / np.sqrt(len(table)) if len(table) > 1 else table.mean() * 0
        print(f"  {name:<20} " + "  ".join(
            f"{k} {table[k].mean():.4f}±{se[k]:.4f}" for k in table.columns))  # fmt: skip


if __name__ == "__main__":
    main()

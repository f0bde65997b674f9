"""Project commands: ``kedro recommend`` shows recommendations and why, without a rerun.

Kedro adds the click group ``cli`` of ``<package>/cli.py`` to its project commands
(``KedroCLI.project_groups`` in ``kedro/framework/cli/cli.py``), so from the project root:

    kedro recommend --user 52                     # the submission's 10 rows and their reasons
    kedro recommend --user 52 --model markov      # a registered model's own top 10 (and reasons)
    kedro recommend --history 75282,82726,94892   # a new user's history (raw ids, oldest first)

Everything is read through the project's catalog (``conf/``), from the files the last
``kedro run`` left under ``data/``; nothing is refitted. The reasons beside the submission
are those of :data:`movie_rec.registry.EXPLAINER`'s fit; which models explain or fold in a
history is the registry's (:class:`movie_rec.registry.Capability`); whether a model is
enabled is read from the parameters (:mod:`movie_rec.parameters`).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
from kedro.framework.session import KedroSession

from movie_rec.explain import Explainer, top_unseen, user_top_unseen
from movie_rec.models.protocol import Reason
from movie_rec.parameters import model_settings
from movie_rec.records import Skipped
from movie_rec.registry import EXPLAINER, FOLDS_IN, MODELS, ModelSpec, models_that, spec

N_RECOMMENDATIONS = 10
FOLD_IN_MODELS = models_that(FOLDS_IN)
GENRE_PREFIX = "genre_"
DATA_PROCESSING_RUN = "kedro run --pipelines=data_processing"
QUIET_LOGGERS = ("kedro", "movie_rec")


class RecommendError(click.ClickException):
    """A one-line error (exit code 1, no traceback)."""


@click.group(name="movie_rec")
def cli() -> None:
    """movie_rec project commands."""


@cli.command()
@click.option("--user", "user_id", type=int, help="Raw user id (as in train_ratings.csv).")
@click.option(
    "--history",
    help="A new user's raw movie ids, oldest first, comma-separated (e.g. 75282,82726,94892).",
)
@click.option(
    "--model",
    "model_name",
    help="Recommend with this model's persisted final fit instead of the submission "
    f"(with --history: one of {', '.join(FOLD_IN_MODELS)}; default {EXPLAINER}).",
)
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
@click.pass_obj
def recommend(
    metadata: Any, user_id: int | None, history: str | None, model_name: str | None, env: str | None
) -> None:
    """The 10 recommendations of a user or of a new history, and why each was chosen."""
    if (user_id is None) == (history is None):
        raise RecommendError("give exactly one of --user ID or --history ID,ID,...")
    with quiet():
        project = ProjectData.open(Path(metadata.project_path), env)
        if history is not None:
            result = recommend_history(project, parse_ids(history), model_name or EXPLAINER)
        elif model_name is not None:
            result = recommend_with_model(project, user_id, model_name)
        else:
            result = recommend_submission(project, user_id)
        table = result.table(project)
    click.echo(result.title)
    click.echo(format_table(table))


@contextmanager
def quiet() -> Iterator[None]:
    """Keep Kedro's INFO lines and warnings (session, dataset loads) out of the table."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def processed_dataset(name: str) -> cached_property:
    """A ``ProjectData`` attribute: the data_processing output ``name``, loaded on first use."""
    return cached_property(lambda project: project.load(name, DATA_PROCESSING_RUN))


@dataclass
class ProjectData:
    """The catalog's datasets, loaded on first use, with clear errors for missing files."""

    catalog: Any
    params: dict[str, Any]
    project_path: Path

    user_map = processed_dataset("user_map")
    item_map = processed_dataset("item_map")
    seen = processed_dataset("train_matrix_full")
    interactions = processed_dataset("interactions")

    @classmethod
    def open(cls, project_path: Path, env: str | None) -> ProjectData:
        os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
        context = KedroSession.create(project_path=project_path, env=env).load_context()
        return cls(context.catalog, context.params, project_path.resolve())

    def load(self, name: str, produced_by: str) -> Any:
        if not self.catalog.exists(name):
            raise RecommendError(f"{self.path(name)} is missing: `{produced_by}` writes it")
        return self.catalog.load(name)

    def path(self, name: str) -> str:
        """Where a dataset lives, relative to the project when it is inside it."""
        path = Path(str(self.catalog.get(name)._describe().get("filepath", name)))
        inside = path.is_absolute() and path.is_relative_to(self.project_path)
        return str(path.relative_to(self.project_path) if inside else path)

    @cached_property
    def item_features(self) -> pd.DataFrame:
        return self.load("item_features", DATA_PROCESSING_RUN).set_index("item_idx")

    def user_index(self, user_id: int) -> int:
        match = self.user_map.loc[self.user_map["user"] == user_id, "user_idx"]
        if match.empty:
            raise RecommendError(
                f"user {user_id} is not in {self.path('user_map')}: the models have never seen "
                "them (use --history to recommend from a list of movies)"
            )
        return int(match.iloc[0])

    def user_history(self, user: int) -> np.ndarray:
        """The user's item indices, oldest first."""
        interactions = self.interactions
        return interactions.loc[interactions["user_idx"] == user, "item_idx"].to_numpy()

    def item_indices(self, item_ids: list[int]) -> np.ndarray:
        index = pd.Series(self.item_map["item_idx"].to_numpy(), index=self.item_map["item"])
        unknown = [item for item in item_ids if item not in index.index]
        if unknown:
            raise RecommendError(
                f"unknown movie id(s) {', '.join(map(str, unknown))}: "
                f"not in {self.path('item_map')}"
            )
        return index.loc[item_ids].to_numpy()

    def raw_user(self, user: int) -> int:
        return int(self.user_map.set_index("user_idx").loc[user, "user"])

    def model(self, name: str) -> Any:
        """The persisted final fit of a registered model."""
        if name not in MODELS:
            raise RecommendError(f"unknown model {name!r}; registered: {', '.join(MODELS)}")
        entry = spec(name)
        if entry.model is None:
            raise RecommendError(f"{name} keeps no model to score with; try one of the others")
        run = f"kedro run --pipelines={entry.pipeline}"
        fitted = self.load(f"{name}.model", run)
        if isinstance(fitted, Skipped):
            raise RecommendError(
                f"{name} was disabled in the run that wrote {self.path(name + '.model')}: "
                + self.to_enable(entry, run)
            )
        return fitted

    def to_enable(self, entry: ModelSpec, run: str) -> str:
        """What fits a disabled model: a rerun, after switching it on if the parameters
        do not enable it outright."""
        settings = model_settings(entry.name, self.params[entry.pipeline])
        if settings.enabled is True:
            return f"it is enabled in the parameters now: `{run}`"
        return f"set {entry.pipeline}.{entry.name}.enabled: true and `{run}`"


@dataclass
class Recommendations:
    """A ranked list of item indices, its heading and the reasons for each item."""

    title: str
    items: np.ndarray
    reasons: list[list[Reason]] | None
    reasons_by: str | None

    def table(self, project: ProjectData) -> pd.DataFrame:
        features = project.item_features.loc[self.items]
        genre_columns = [c for c in features.columns if c.startswith(GENRE_PREFIX)]
        table = pd.DataFrame(
            {
                "rank": np.arange(1, len(self.items) + 1),
                "title": features["title"].to_numpy(),
                "year": features["year"].astype("Int64").astype(str).to_numpy(),
                "genres": [genres_of(row, genre_columns) for _, row in features.iterrows()],
            }
        )
        if self.reasons is not None:
            column = f"reason ({self.reasons_by})"
            table[column] = [describe(reasons, project) for reasons in self.reasons]
        return table


def genres_of(row: pd.Series, genre_columns: list[str]) -> str:
    return "|".join(c.removeprefix(GENRE_PREFIX) for c in genre_columns if row[c])


def describe(reasons: list[Reason], project: ProjectData) -> str:
    """Reasons in words: the watched titles, or the neighbours' raw user ids."""
    if not reasons:
        return "-"
    if reasons[0].kind == "user":
        users = ", ".join(str(project.raw_user(reason.index)) for reason in reasons)
        return f"neighbours {users} watched it"
    titles = project.item_features.loc[[reason.index for reason in reasons], "title"]
    return "; ".join(titles)


def explainer_or_none(project: ProjectData, name: str) -> Explainer | None:
    """The explainer of a persisted model, if it exists and gives reasons."""
    if not project.catalog.exists(f"{name}.model"):
        return None
    model = project.catalog.load(f"{name}.model")
    return Explainer(model) if Explainer.supports(model) else None


def explained(
    title: str,
    items: np.ndarray,
    explainer: Explainer | None,
    history: np.ndarray,
    user: int | None,
    by: str,
) -> Recommendations:
    if explainer is None:
        return Recommendations(title, items, None, None)
    reasons = [explainer.reasons(int(item), history, user) for item in items]
    return Recommendations(title, items, reasons, by)


def recommend_submission(project: ProjectData, user_id: int) -> Recommendations:
    """The submission's rows for a user, with the reasons of the explaining model
    (:data:`movie_rec.registry.EXPLAINER`) when its fit exists."""
    user = project.user_index(user_id)
    submission = project.load("submission", "kedro run")
    rows = submission.loc[submission["user"] == user_id, "item"].to_list()
    if not rows:
        raise RecommendError(f"user {user_id} has no rows in {project.path('submission')}")
    items = project.item_indices(rows)
    explainer = explainer_or_none(project, EXPLAINER)
    title = f"user {user_id}: the submission's {len(items)} recommendations"
    if explainer is None:
        title += f" (no reasons: {project.path(EXPLAINER + '.model')} is missing)"
    return explained(title, items, explainer, project.user_history(user), user, EXPLAINER)


def recommend_with_model(project: ProjectData, user_id: int, name: str) -> Recommendations:
    """A model's own top 10 for a user it was fitted on, with its reasons."""
    user = project.user_index(user_id)
    model = project.model(name)
    items = user_top_unseen(model, user, project.seen, N_RECOMMENDATIONS)
    explainer = (
        Explainer(model) if Explainer.supports(model) else explainer_or_none(project, EXPLAINER)
    )
    by = name if Explainer.supports(model) else EXPLAINER
    title = f"user {user_id}: {name}'s top {len(items)}"
    return explained(title, items, explainer, project.user_history(user), user, by)


def recommend_history(project: ProjectData, item_ids: list[int], name: str) -> Recommendations:
    """The top 10 of a model that folds in a new user's history."""
    if name not in FOLD_IN_MODELS:
        raise RecommendError(
            f"{name} cannot score a new history; use --model {' or '.join(FOLD_IN_MODELS)}"
        )
    history = project.item_indices(item_ids)
    explainer = Explainer(project.model(name))
    items = top_unseen(explainer.scores(history), history, N_RECOMMENDATIONS)
    title = f"a new user with {len(history)} movies: {name}'s top {len(items)}"
    return explained(title, items, explainer, history, None, name)


def parse_ids(text: str) -> list[int]:
    """``"318, 296"`` → ``[318, 296]``, or a one-line error."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.lstrip("-").isdigit() for part in parts):
        raise RecommendError(f"--history wants comma-separated integer movie ids, got {text!r}")
    return [int(part) for part in parts]


def format_table(table: pd.DataFrame) -> str:
    """A plain left-aligned text table (numbers right-aligned)."""
    cells = [[str(value) for value in table[column]] for column in table.columns]
    widths = [
        max(len(column), *(len(value) for value in values))
        for column, values in zip(table.columns, cells, strict=True)
    ]
    numeric = [pd.api.types.is_numeric_dtype(table[column]) for column in table.columns]

    def line(values: list[str]) -> str:
        padded = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(padded).rstrip()

    rows = [line(list(table.columns)), line(["-" * width for width in widths])]
    rows += [line(list(row)) for row in zip(*cells, strict=True)]
    return "\n".join(rows)

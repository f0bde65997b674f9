"""``kedro recommend``: the submission's rows explained, a model's own list, a new history,
and one-line errors, through Kedro's real command line on a scratch project."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from kedro.framework.cli.cli import KedroCLI
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from movie_rec.explain import top_unseen
from movie_rec.models.ease import EASE, EASEConfig
from movie_rec.models.markov import Markov, MarkovConfig
from movie_rec.models.protocol import TrainingData, fitted
from movie_rec.models.sequences import user_sequences
from movie_rec.records import Skipped


@pytest.fixture
def project(kedro_project, tiny_data):
    """The scratch project with data_processing's outputs, EASE and Markov fits and a
    submission whose lists are EASE's top 10 reversed (so they are not recomputed)."""
    bootstrap_project(kedro_project)
    with KedroSession.create(project_path=kedro_project) as session:
        catalog = session.load_context().catalog
        for name in ("user_map", "item_map", "interactions", "item_features"):
            catalog.save(name, tiny_data[name])
        matrix = tiny_data["train_matrix_full"]
        catalog.save("train_matrix_full", matrix)
        ease = fitted(EASE(EASEConfig(lam=30.0)), TrainingData(matrix))
        sequences = user_sequences(tiny_data["interactions"], matrix.shape[0])
        catalog.save("ease.model", ease)
        catalog.save(
            "markov.model",
            fitted(Markov(MarkovConfig()), TrainingData.of_sequences(sequences, matrix.shape[1])),
        )
        catalog.save("submission", reversed_ease_submission(ease, tiny_data))
    return kedro_project


def reversed_ease_submission(ease: EASE, data: dict) -> pd.DataFrame:
    matrix = data["train_matrix_full"]
    rows = []
    for user in range(matrix.shape[0]):
        items = top_unseen(ease.score(np.array([user]))[0].numpy(), matrix[user].indices)
        rows += [(user, item) for item in items[::-1]]
    frame = pd.DataFrame(rows, columns=["user_idx", "item_idx"])
    frame["user"] = data["user_map"].set_index("user_idx").loc[frame["user_idx"], "user"].values
    frame["item"] = data["item_map"].set_index("item_idx").loc[frame["item_idx"], "item"].values
    return frame[["user", "item"]]


def kedro(project, *args: str):
    return CliRunner().invoke(KedroCLI(project), ["recommend", *args])


def table(output: str) -> pd.DataFrame:
    """The printed table back as a frame (columns are two or more spaces apart)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    header = re.split(r"\s{2,}", lines[start].strip())
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[start + 2 :] if line.strip()]
    return pd.DataFrame(rows, columns=header)


def titles(data: dict, items) -> list[str]:
    return data["item_features"].set_index("item_idx").loc[list(items), "title"].tolist()


def test_recommend_a_user_shows_the_submission_rows_with_ease_reasons(project, tiny_data):
    raw_user = int(tiny_data["user_map"]["user"].iloc[4])
    result = kedro(project, "--user", str(raw_user))
    assert result.exit_code == 0, result.output
    shown = table(result.output)
    submission = pd.read_csv(project / "data" / "07_model_output" / "submission.csv")
    rows = submission.loc[submission["user"] == raw_user, "item"]
    items = tiny_data["item_map"].set_index("item").loc[rows, "item_idx"].to_numpy()
    assert shown["title"].tolist() == titles(tiny_data, items)
    assert shown["rank"].tolist() == [str(rank) for rank in range(1, 11)]
    assert list(shown.columns) == ["rank", "title", "year", "genres", "reason (ease)"]

    ease = fitted(EASE(EASEConfig(lam=30.0)), TrainingData(tiny_data["train_matrix_full"]))
    history = tiny_data["train_matrix_full"][4].indices
    first = ease.explain(int(items[0]), history)[:3]  # the three largest terms
    assert shown["reason (ease)"].iloc[0] == "; ".join(titles(tiny_data, [r.index for r in first]))


def test_recommend_with_a_model_gives_its_own_top_ten(project, tiny_data):
    raw_user = int(tiny_data["user_map"]["user"].iloc[2])
    result = kedro(project, "--user", str(raw_user), "--model", "ease")
    assert result.exit_code == 0, result.output
    shown = table(result.output)
    ease = fitted(EASE(EASEConfig(lam=30.0)), TrainingData(tiny_data["train_matrix_full"]))
    best = top_unseen(
        ease.score(np.array([2]))[0].numpy(), tiny_data["train_matrix_full"][2].indices
    )
    assert shown["title"].tolist() == titles(tiny_data, best)

    markov = kedro(project, "--user", str(raw_user), "--model", "markov")
    assert markov.exit_code == 0, markov.output
    assert "reason (markov)" in table(markov.output).columns


def test_a_new_history_folds_in_like_the_fitted_user(project, tiny_data):
    user = 6
    history = tiny_data["interactions"].query("user_idx == @user")["item_idx"].to_numpy()
    raw_items = tiny_data["item_map"].set_index("item_idx").loc[history, "item"]
    result = kedro(project, "--history", ",".join(map(str, raw_items)))
    assert result.exit_code == 0, result.output
    ease = fitted(EASE(EASEConfig(lam=30.0)), TrainingData(tiny_data["train_matrix_full"]))
    best = top_unseen(ease.score(np.array([user]))[0].numpy(), history)
    shown = table(result.output)
    assert shown["title"].tolist() == titles(tiny_data, best)
    assert "reason (ease)" in shown.columns

    markov = kedro(project, "--history", ",".join(map(str, raw_items)), "--model", "markov")
    assert markov.exit_code == 0, markov.output


def error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_clear_one_line_errors(project, tiny_data):
    unknown_user = kedro(project, "--user", "987654321")
    assert unknown_user.exit_code == 1
    assert "user 987654321 is not in data/03_primary/user_map.parquet" in error_line(unknown_user)

    known = int(tiny_data["item_map"]["item"].iloc[0])
    unknown_item = kedro(project, "--history", f"{known},987654321")
    assert unknown_item.exit_code == 1
    assert "unknown movie id(s) 987654321" in error_line(unknown_item)

    user = str(int(tiny_data["user_map"]["user"].iloc[0]))
    missing_model = kedro(project, "--user", user, "--model", "sknn")
    assert missing_model.exit_code == 1
    message = error_line(missing_model)
    assert "data/06_models/sknn_model.pkl is missing" in message
    assert "kedro run --pipelines=sequential_rec" in message

    cannot_fold = kedro(project, "--history", str(known), "--model", "sknn")
    assert cannot_fold.exit_code == 1
    assert "sknn cannot score a new history" in error_line(cannot_fold)

    (project / "data" / "07_model_output" / "submission.csv").unlink()
    missing_submission = kedro(project, "--user", user)
    assert missing_submission.exit_code == 1
    assert "data/07_model_output/submission.csv is missing: `kedro run`" in error_line(
        missing_submission
    )


def test_without_the_ease_model_the_submission_is_shown_without_reasons(project, tiny_data):
    (project / "data" / "06_models" / "ease_model.pkl").unlink()
    result = kedro(project, "--user", str(int(tiny_data["user_map"]["user"].iloc[0])))
    assert result.exit_code == 0, result.output
    assert list(table(result.output).columns) == ["rank", "title", "year", "genres"]
    assert "ease_model.pkl is missing" in result.output


def test_a_disabled_fit_says_what_fits_it_from_the_parameters_in_force(project, tiny_data):
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        catalog = session.load_context().catalog
        for name in ("sknn", "bert4rec"):  # enabled and disabled in the shipped parameters
            catalog.save(f"{name}.model", Skipped(name))
    user = str(int(tiny_data["user_map"]["user"].iloc[0]))
    enabled = error_line(kedro(project, "--user", user, "--model", "sknn"))
    assert "sknn was disabled in the run that wrote data/06_models/sknn_model.pkl" in enabled
    assert "it is enabled in the parameters now: `kedro run --pipelines=sequential_rec`" in enabled
    disabled = error_line(kedro(project, "--user", user, "--model", "bert4rec"))
    assert "set sequential_rec.bert4rec.enabled: true and `kedro run" in disabled

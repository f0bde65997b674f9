"""Metrics table, activity buckets, plots, example users and the self-contained HTML."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from movie_rec import reporting
from movie_rec.evaluation import per_user_recall, recall_at_k, top_k_unseen
from movie_rec.models.baselines import ItemCooccurrence, MostPopular

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def recommendations(tiny_data) -> dict[str, pd.DataFrame]:
    matrix = tiny_data["train_matrix_valid"]
    return {
        "ease": top_k_unseen(ItemCooccurrence(matrix).score, matrix, 10),
        "multivae": top_k_unseen(MostPopular(matrix).score, matrix, 10),
    }


@pytest.fixture(scope="module")
def table(tiny_data, recommendations) -> pd.DataFrame:
    answers = tiny_data["valid_answers"]
    model_metrics = {
        "ease": {**recall_at_k(recommendations["ease"], answers), "fit_seconds": 1.5},
        "multivae": {**recall_at_k(recommendations["multivae"], answers), "device": "cpu"},
        "sasrec": {"model": "sasrec", "skipped": True},
    }
    halves = {"all": recall_at_k(recommendations["ease"], answers), "holdout": {"recall@10": 0.5}}
    ensemble_metrics = {
        "models": {"ease": {"holdout": {"recall@10": 0.25}}},
        "ensembles": {"priority": {**halves, "fit_seconds": 0.0, "predict_seconds": 0.2}},
    }
    return reporting.metrics_table(
        model_metrics, ensemble_metrics, ["ease", "sasrec", "multivae", "srgnn"]
    )


def test_metrics_table_has_a_row_per_enabled_model_and_per_ensemble(table, tiny_data):
    assert table["model"].tolist() == ["ease", "multivae", "ensemble_priority"]
    assert table["kind"].tolist() == ["model", "model", "ensemble"]
    ease = table.set_index("model").loc["ease"]
    expected = recall_at_k(
        top_k_unseen(
            ItemCooccurrence(tiny_data["train_matrix_valid"]).score,
            tiny_data["train_matrix_valid"],
            10,
        ),
        tiny_data["valid_answers"],
    )
    assert ease["recall@10_last"] == pytest.approx(expected["recall@10_last"])
    assert ease["holdout_recall@10"] == 0.25
    assert ease["fit_seconds"] == 1.5
    assert table.set_index("model").loc["ensemble_priority", "holdout_recall@10"] == 0.5


def test_activity_buckets_label_history_lengths():
    interactions = pd.DataFrame({"user_idx": np.repeat([0, 1, 2, 3], [3, 16, 49, 600])})
    buckets = reporting.activity_buckets(interactions, [16, 50, 500])
    assert buckets.astype(str).tolist() == ["0–15", "16–49", "16–49", "500+"]


def test_recall_by_activity_splits_users_and_keeps_the_overall_mean(tiny_data, recommendations):
    answers = tiny_data["valid_answers"]
    buckets = reporting.activity_buckets(tiny_data["split_train"], [10, 20, 40])
    activity = reporting.recall_by_activity(recommendations, answers, buckets)
    for name, frame in recommendations.items():
        rows = activity[activity["model"] == name]
        assert rows["users"].sum() == answers["user_idx"].nunique()
        weighted = (rows["users"] * rows["recall@10"]).sum() / rows["users"].sum()
        assert weighted == pytest.approx(per_user_recall(frame, answers)["recall"].mean())
        order = list(buckets.cat.categories)
        assert rows["bucket"].map(order.index).is_monotonic_increasing


def test_example_users_show_the_latest_titles_and_the_recommendations(tiny_data, recommendations):
    examples = reporting.example_users(
        recommendations["ease"],
        tiny_data["interactions"],
        tiny_data["item_features"],
        tiny_data["user_map"],
        n_users=3,
        n_watched=4,
        seed=0,
    )
    assert examples["user"].nunique() == 3
    user = examples["user"].iloc[0]
    user_idx = tiny_data["user_map"].set_index("user").loc[user, "user_idx"]
    history = tiny_data["interactions"][tiny_data["interactions"]["user_idx"] == user_idx]
    latest = history.sort_values("time")["item_idx"].iloc[::-1].head(4)
    items = tiny_data["item_map"].set_index("item_idx")["item"]
    watched = examples[(examples["user"] == user) & (examples["role"] == "watched")]
    assert watched["item"].tolist() == items.loc[latest].tolist()
    recommended = examples[(examples["user"] == user) & (examples["role"] == "recommended")]
    expected = recommendations["ease"][recommendations["ease"]["user_idx"] == user_idx]
    assert recommended["item"].tolist() == items.loc[expected["item_idx"]].tolist()
    assert examples["title"].notna().all()
    assert examples["genres"].str.len().gt(0).all()


def test_plots_are_figures_that_render_to_png(table, tiny_data, recommendations):
    buckets = reporting.activity_buckets(tiny_data["split_train"], [20, 40])
    activity = reporting.recall_by_activity(recommendations, tiny_data["valid_answers"], buckets)
    weights = {
        "weighted_rank": {
            "weights": {"ease": 0.8, "multivae": 0.1},
            "cutoff": 12,
            "head": 10,
            "tail_weight": 0.3,
            "rank_offset": 5.0,
        }
    }
    history = pd.DataFrame({"number": [0, 1], "value": [0.1, 0.2]})
    figures = [
        reporting.plot_recall_by_kind(table),
        reporting.plot_recall_by_activity(activity),
        reporting.plot_ensemble_weights(weights),
        reporting.plot_ensemble_weights({"weighted_rank": None}),
        reporting.plot_optuna_histories({"ease": history, "multivae": history.iloc[:0]}),
        reporting.plot_optuna_histories({}),
        reporting.plot_feature_importance(pd.DataFrame({"feature": ["a", "b"], "gain": [2, 1]})),
        reporting.plot_feature_importance(pd.DataFrame(columns=["feature", "gain"])),
    ]
    for figure in figures:
        assert isinstance(figure, Figure)
        assert reporting.figure_png(figure).startswith(PNG_MAGIC)


def test_the_html_report_is_self_contained(table):
    images = {"recall_by_kind.png": reporting.figure_png(reporting.plot_recall_by_kind(table))}
    examples = pd.DataFrame(
        {
            "user": [7, 7],
            "role": ["watched", "recommended"],
            "position": [1, 1],
            "item": [1, 2],
            "title": ["<Alien> (1979)", "Heat (1995)"],
            "year": [1979, 1995],
            "genres": ["Horror", "Crime"],
        }
    )
    activity = pd.DataFrame(
        {"model": ["ease"], "bucket": ["16–49"], "users": [3], "recall@10": [0.1]}
    )
    page = reporting.render_html(table, activity, examples, images, {"method": "priority"})
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page)
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == 1
    assert base64.b64decode(embedded[0]).startswith(PNG_MAGIC)
    assert "&lt;Alien&gt; (1979)" in page
    assert "ensemble_priority" in page
    assert "Submission method: <b>priority</b>" in page

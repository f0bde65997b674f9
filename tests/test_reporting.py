"""Report tables, plots, example users and the self-contained HTML page (movie_rec.report)."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from movie_rec import report
from movie_rec.evaluation import per_user_recall, recall_at_k, top_k_unseen
from movie_rec.models.baselines import ItemCooccurrence
from tests.conftest import popular_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

BY_MIX = {
    "ease": {"2/8": 0.30, "4/6": 0.25, "6/4": 0.20, "mean": 0.25, "worst": 0.20},
    "ensemble_priority": {"2/8": 0.28, "4/6": 0.29, "6/4": 0.33, "mean": 0.30, "worst": 0.28},
    "sasrec": {"2/8": 0.10, "4/6": 0.1234, "6/4": 0.15, "mean": 0.1245, "worst": 0.10},
}
RELEASE_FILTER = {
    "ease": {
        "with": {"recall@10": 0.31, "recall@10_last": 0.22, "recall@10_random": 0.40},
        "without": {"recall@10": 0.29, "recall@10_last": 0.23, "recall@10_random": 0.35},
    },
    "sasrec": {"with": {"recall@10": 0.11}},
}
CEILING = [
    {"source": "ease", "recall": 0.40, "recall_last": 0.30, "recall_random": 0.50,
     "adds": 0.05, "adds_last": 0.04, "adds_random": 0.06, "per_user": 100.0},
    {"source": "popular", "recall": 0.20, "recall_last": 0.10, "recall_random": 0.30,
     "adds": 0.01, "adds_last": 0.0, "adds_random": 0.02, "per_user": 50.0},
    {"source": "union", "recall": 0.4567, "recall_last": 0.35, "recall_random": 0.55,
     "adds": None, "adds_last": None, "adds_random": None, "per_user": 130.0},
]  # fmt: skip


def history(recalls: list[float], every: int = 100) -> list[dict]:
    """A training history: one evaluation every ``every`` updates."""
    return [
        {"update": every * (i + 1), "pass": i // 2, "loss": 1.0 / (i + 1), "recall@10": recall,
         "lr": 0.001, "seconds": 0.5 * (i + 1)}
        for i, recall in enumerate(recalls)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def recommendations(tiny_data) -> dict[str, pd.DataFrame]:
    matrix = tiny_data["train_matrix_valid"]
    return {
        "ease": top_k_unseen(ItemCooccurrence(matrix).score, matrix, 10),
        "multivae": top_k_unseen(popular_model(matrix).score, matrix, 10),
    }


@pytest.fixture(scope="module")
def ensemble_metrics() -> dict:
    halves = {"all": {"recall@10": 0.4, "users": 12}, "holdout": {"recall@10": 0.5}}
    return {
        "models": {"ease": {"holdout": {"recall@10": 0.25}}},
        "ensembles": {"priority": {**halves, "fit_seconds": 0.0, "predict_seconds": 0.2}},
        "by_mix": BY_MIX,
        "release_filter": RELEASE_FILTER,
        "release_filter_slack": 1,
    }


@pytest.fixture(scope="module")
def table(tiny_data, recommendations, ensemble_metrics) -> pd.DataFrame:
    answers = tiny_data["valid_answers"]
    model_metrics = {
        "ease": {**recall_at_k(recommendations["ease"], answers), "fit_seconds": 1.5},
        "multivae": {
            **recall_at_k(recommendations["multivae"], answers),
            "device": "cpu",
            "best_update": 300,
        },
        "sasrec": {"model": "sasrec", "skipped": True},
    }
    return report.metrics_table(
        model_metrics, ensemble_metrics, ["ease", "sasrec", "multivae", "srgnn"]
    )


def test_metrics_table_has_a_row_per_enabled_model_and_per_ensemble(table, tiny_data):
    assert table["model"].tolist() == ["ease", "multivae", "ensemble_priority"]
    assert table["kind"].tolist() == ["model", "model", "ensemble"]
    rows = table.set_index("model")
    matrix = tiny_data["train_matrix_valid"]
    expected = recall_at_k(
        top_k_unseen(ItemCooccurrence(matrix).score, matrix, 10), tiny_data["valid_answers"]
    )
    assert rows.loc["ease", "recall@10_last"] == pytest.approx(expected["recall@10_last"])
    assert rows.loc["ease", "holdout_recall@10"] == 0.25
    assert rows.loc["ease", "fit_seconds"] == 1.5
    assert rows.loc["ensemble_priority", "holdout_recall@10"] == 0.5
    assert rows.loc["ensemble_priority", "users"] == 12
    assert rows.loc["multivae", "best_update"] == 300


def test_metrics_table_carries_the_per_mix_mean_and_worst_where_recorded(table):
    rows = table.set_index("model")
    assert rows.loc["ease", ["mix_mean", "mix_worst"]].tolist() == [0.25, 0.20]
    assert rows.loc["ensemble_priority", ["mix_mean", "mix_worst"]].tolist() == [0.30, 0.28]
    assert rows.loc["multivae", ["mix_mean", "mix_worst"]].isna().all()  # not in by_mix


def test_metrics_table_without_ensemble_details_still_lists_the_models():
    table = report.metrics_table({"ease": {"recall@10": 0.2}}, {}, ["ease"])
    assert table["model"].tolist() == ["ease"]
    assert table[["holdout_recall@10", "mix_mean"]].isna().all(axis=None)


def test_recall_by_mix_table_sorts_by_mean_and_computes_spread_and_gap_to_best():
    mix = report.recall_by_mix_table({"by_mix": BY_MIX})
    assert mix.columns.tolist() == [
        "list", "2/8", "4/6", "6/4", "mean", "worst", "spread", "vs_best"
    ]  # fmt: skip
    assert mix["list"].tolist() == ["ensemble_priority", "ease", "sasrec"]
    rows = mix.set_index("list")
    # spread = best mix − worst mix; vs_best = mean − 0.30 (ensemble_priority's mean)
    assert rows["spread"].tolist() == pytest.approx([0.33 - 0.28, 0.30 - 0.20, 0.15 - 0.10])
    assert rows["vs_best"].tolist() == pytest.approx([0.0, 0.25 - 0.30, 0.1245 - 0.30])
    assert rows.loc["sasrec", "4/6"] == 0.1234


def test_recall_by_mix_table_is_empty_without_by_mix():
    assert report.recall_by_mix_table({}).empty


def test_release_filter_table_gains_are_with_minus_without():
    ablation = report.release_filter_table({"release_filter": RELEASE_FILTER})
    assert ablation["list"].tolist() == ["ease", "sasrec"]
    ease = ablation.set_index("list").loc["ease"]
    assert ease["gain_recall@10"] == pytest.approx(0.31 - 0.29)
    assert ease["gain_recall@10_last"] == pytest.approx(0.22 - 0.23)
    assert ease["gain_recall@10_random"] == pytest.approx(0.40 - 0.35)
    assert ease["with_recall@10"] == 0.31
    assert ease["without_recall@10_random"] == 0.35
    sasrec = ablation.set_index("list").loc["sasrec"]  # no "without" side: missing, no crash
    assert sasrec["with_recall@10"] == 0.11
    assert np.isnan(sasrec["without_recall@10"]) and np.isnan(sasrec["gain_recall@10"])
    assert report.release_filter_table({"release_filter": {}}).empty


def test_candidate_ceiling_table_keeps_the_sources_and_extra_columns():
    ceiling = report.candidate_ceiling_table({"candidate_recall_by_source": CEILING})
    assert ceiling.columns.tolist() == [*report.CEILING_COLUMNS, "per_user"]
    assert ceiling["source"].tolist() == ["ease", "popular", "union"]
    assert ceiling.set_index("source").loc["union", "recall"] == 0.4567
    assert report.candidate_ceiling_table({"skipped": True}).empty
    assert report.candidate_ceiling_table(None).columns.tolist() == report.CEILING_COLUMNS


def test_training_history_has_a_row_per_evaluation_and_marks_the_best_update():
    metrics = {
        "multivae": {"history": history([0.1, 0.3, 0.2]), "best_update": 200},
        "sasrec": {"history": history([0.05, 0.15], every=50), "best_update": 100},
        "recvae": {"skipped": True},
        "ease": {"recall@10": 0.3},
    }
    frame = report.training_history(metrics, ["multivae", "recvae", "sasrec"])
    assert frame.columns.tolist() == report.HISTORY_COLUMNS
    assert frame["model"].tolist() == ["multivae"] * 3 + ["sasrec"] * 2
    assert frame["update"].tolist() == [100, 200, 300, 50, 100]
    assert frame["best"].tolist() == [False, True, False, False, True]
    assert report.training_history(metrics, ["ease", "recvae"]).empty


def test_recall_vs_updates_draws_one_line_per_iterative_model_and_stars_the_best():
    metrics = {
        "multivae": {"history": history([0.1, 0.3, 0.2]), "best_update": 200},
        "sasrec": {"history": history([0.05, 0.15], every=50), "best_update": 100},
        "gru4rec": {"history": history([0.02, 0.04, 0.03, 0.01])},  # no best_update: no star
    }
    frame = report.training_history(metrics, ["multivae", "sasrec", "gru4rec"])
    figure = report.plot_recall_vs_updates(frame)
    (axes,) = figure.axes
    lines = {line.get_label(): line for line in axes.get_lines()}
    assert list(lines) == ["multivae", "sasrec", "gru4rec"]
    assert lines["multivae"].get_xdata().tolist() == [100, 200, 300]
    assert lines["sasrec"].get_ydata().tolist() == [0.05, 0.15]
    stars = [collection.get_offsets().tolist() for collection in axes.collections]
    assert stars == [[[200.0, 0.3]], [[100.0, 0.15]], []]
    assert report.figure_png(figure).startswith(PNG_MAGIC)


def test_activity_buckets_label_history_lengths():
    interactions = pd.DataFrame({"user_idx": np.repeat([0, 1, 2, 3], [3, 16, 49, 600])})
    buckets = report.activity_buckets(interactions, [16, 50, 500])
    assert buckets.astype(str).tolist() == ["0–15", "16–49", "16–49", "500+"]


def test_recall_by_activity_splits_users_and_keeps_the_overall_mean(tiny_data, recommendations):
    answers = tiny_data["valid_answers"]
    buckets = report.activity_buckets(tiny_data["split_train"], [10, 20, 40])
    activity = report.recall_by_activity(recommendations, answers, buckets)
    for name, frame in recommendations.items():
        rows = activity[activity["model"] == name]
        assert rows["users"].sum() == answers["user_idx"].nunique()
        weighted = (rows["users"] * rows["recall@10"]).sum() / rows["users"].sum()
        assert weighted == pytest.approx(per_user_recall(frame, answers)["recall"].mean())
        order = list(buckets.cat.categories)
        assert rows["bucket"].map(order.index).is_monotonic_increasing


def test_example_users_show_the_latest_titles_and_the_recommendations(tiny_data, recommendations):
    examples = report.example_users(
        recommendations["ease"],
        tiny_data["interactions"],
        tiny_data["item_features"],
        tiny_data["user_map"],
        n_users=3,
        n_watched=4,
        seed=0,
    )
    assert examples.columns.tolist() == [
        "user", "role", "position", "item", "title", "year", "genres"
    ]  # fmt: skip
    assert examples["user"].nunique() == 3
    user = examples["user"].iloc[0]
    user_idx = tiny_data["user_map"].set_index("user").loc[user, "user_idx"]
    history_ = tiny_data["interactions"][tiny_data["interactions"]["user_idx"] == user_idx]
    latest = history_.sort_values("time")["item_idx"].iloc[::-1].head(4)
    items = tiny_data["item_map"].set_index("item_idx")["item"]
    watched = examples[(examples["user"] == user) & (examples["role"] == "watched")]
    assert watched["item"].tolist() == items.loc[latest].tolist()
    recommended = examples[(examples["user"] == user) & (examples["role"] == "recommended")]
    expected = recommendations["ease"][recommendations["ease"]["user_idx"] == user_idx]
    assert recommended["item"].tolist() == items.loc[expected["item_idx"]].tolist()
    assert examples["title"].notna().all()
    assert examples["genres"].str.len().gt(0).all()


def test_validation_examples_mark_the_held_out_movies_and_keep_the_reason(
    tiny_data, recommendations
):
    answers = tiny_data["valid_answers"]
    lists = recommendations["ease"]
    lists = lists.assign(reason=[f"reason {i}" for i in range(len(lists))])
    examples = report.example_users(
        lists,
        tiny_data["split_train"],
        tiny_data["item_features"],
        tiny_data["user_map"],
        n_users=20,
        n_watched=3,
        seed=1,
        answers=answers,
    )
    assert examples.columns[-2:].tolist() == ["reason", "held_out"]
    raw_users = tiny_data["user_map"].set_index("user")["user_idx"]
    raw_items = tiny_data["item_map"].set_index("item")["item_idx"]
    pairs = set(answers[["user_idx", "item_idx"]].itertuples(index=False, name=None))
    expected = [
        (raw_users[user], raw_items[item]) in pairs
        for user, item in examples[["user", "item"]].itertuples(index=False, name=None)
    ]
    assert examples["held_out"].tolist() == expected
    assert examples["held_out"].any()  # the tiny data has hits among 20 users
    recommended = examples[examples["role"] == "recommended"]
    assert recommended["reason"].str.startswith("reason ").all()
    assert examples.loc[examples["role"] == "watched", "reason"].isna().all()


def test_plots_are_figures_that_render_to_png(table, tiny_data, recommendations):
    buckets = report.activity_buckets(tiny_data["split_train"], [20, 40])
    activity = report.recall_by_activity(recommendations, tiny_data["valid_answers"], buckets)
    weights = {
        "weighted_rank": {
            "weights": {"ease": 0.8, "multivae": 0.1},
            "cutoff": 12,
            "head": 10,
            "tail_weight": 0.3,
            "rank_offset": 5.0,
        }
    }
    trials = pd.DataFrame({"number": [0, 1], "value": [0.1, 0.2]})
    figures = [
        report.plot_recall_by_kind(table),
        report.plot_recall_vs_updates(report.training_history({}, ["multivae"])),
        report.plot_recall_by_activity(activity),
        report.plot_ensemble_weights(weights),
        report.plot_ensemble_weights({"weighted_rank": None}),
        report.plot_optuna_histories({"ease": trials, "multivae": trials.iloc[:0]}),
        report.plot_optuna_histories({}),
        report.plot_feature_importance(pd.DataFrame({"feature": ["a", "b"], "gain": [2, 1]})),
        report.plot_feature_importance(pd.DataFrame(columns=["feature", "gain"])),
    ]
    for figure in figures:
        assert isinstance(figure, Figure)
        assert report.figure_png(figure).startswith(PNG_MAGIC)


def examples_frame(title: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": [7, 7],
            "role": ["watched", "recommended"],
            "position": [1, 1],
            "item": [1, 2],
            "title": [title, "Heat (1995)"],
            "year": [1979, 1995],
            "genres": ["Horror", "Crime"],
        }
    )


ACTIVITY = pd.DataFrame({"model": ["ease"], "bucket": ["16–49"], "users": [3], "recall@10": [0.1]})


def test_the_html_report_is_self_contained_and_escapes_text(table):
    images = {"recall_by_kind.png": report.figure_png(report.plot_recall_by_kind(table))}
    examples = examples_frame("<script>alert(1)</script> (1979)")
    page = report.render_html(table, ACTIVITY, examples, images, {"method": "<b>priority</b>"})
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page)
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == 1
    assert base64.b64decode(embedded[0]).startswith(PNG_MAGIC)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (1979)" in page
    assert "Submission method: <b>&lt;b&gt;priority&lt;/b&gt;</b>" in page
    assert "ensemble_priority" in page


def test_the_html_report_shows_every_section_with_its_numbers(table, ensemble_metrics):
    examples_valid = examples_frame("Alien (1979)").assign(
        reason=[None, "follows Heat (1995), Casino (1995)"], held_out=[False, True]
    )
    page = report.render_html(
        table,
        ACTIVITY,
        examples_frame("Alien (1979)"),
        {},
        {"method": "priority"},
        by_mix=report.recall_by_mix_table(ensemble_metrics),
        release_filter=report.release_filter_table(ensemble_metrics),
        release_filter_slack=ensemble_metrics["release_filter_slack"],
        candidate_ceiling=report.candidate_ceiling_table({"candidate_recall_by_source": CEILING}),
        examples_valid=examples_valid,
        title="report & co",
    )
    assert "<title>report &amp; co</title>" in page
    assert "Submission method: <b>priority</b>" in page
    # summary: best single model and the ensemble on the holdout half
    assert "best single model\nease 0.2500" in page
    assert "<li>ensemble_priority: 0.5000</li>" in page
    # metrics table: per-mix mean and worst, best update as a whole number
    assert "<th>mix_mean</th>" in page and "<th>mix_worst</th>" in page
    assert "<td>300</td>" in page
    # per-mix table: a mix value, spread and gap to the best list (signed)
    assert "<td>0.1234</td>" in page
    assert "<td>-0.1755</td>" in page  # sasrec: 0.1245 − 0.30
    # release-year ablation: gains with their sign, slack, missing side shown as "–"
    assert "<td>+0.0200</td>" in page and "<td>-0.0100</td>" in page
    assert "last activity year + 1;" in page
    assert "<td>–</td>" in page
    # candidate ceiling: the union row
    assert re.search(r"<tr><td>union</td><td>0\.4567</td><td>0\.3500</td><td>0\.5500</td>", page)
    # activity and example users, the reason and the held-out mark
    assert "<td>16–49</td>" in page
    assert "follows Heat (1995), Casino (1995)" in page
    assert "<th>held_out</th>" in page and "<td>✓</td>" in page
    assert "Not available" not in page.replace("Not available: no plots", "")


def test_the_html_report_says_not_available_for_missing_inputs():
    empty_table = report.metrics_table({}, {}, [])
    page = report.render_html(empty_table, pd.DataFrame(), pd.DataFrame(), {}, {})
    messages = re.findall(r'<p class="na">Not available: ([^<]+)</p>', page)
    assert len(messages) == 8  # metrics, mix, release, ceiling, plots, activity, 2 × examples
    assert "last activity year;" in page  # no slack recorded

"""Report tables, plots, example users and the self-contained HTML page (movie_rec.report).

The fixtures are made by the producers of what the report reads: the ensemble's metrics by
``evaluate_ensembles``, the models' by ``model_metrics`` and the candidate ceiling by
``candidate_recall_by_source``, all on two first-stage lists of the tiny data; the other
records by their constructors.
"""

from __future__ import annotations

import base64
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure

from movie_rec import model_outputs, records, report
from movie_rec.evaluation import per_user_recall, top_k_unseen
from movie_rec.models.baselines import ItemCooccurrence
from movie_rec.parameters import EnsemblingSettings, EvaluationSettings
from movie_rec.pipelines.ensembling.nodes import evaluate_ensembles
from movie_rec.records import (
    EnsembleMetrics,
    MixRecall,
    ModelMetrics,
    RankerRecord,
    Recall,
    Skipped,
    Training,
)
from movie_rec.report import page
from movie_rec.second_stage import candidates as rc
from tests.conftest import REPO_ROOT, popular_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def history(recalls: list[float], every: int = 100) -> list[dict]:
    """A training history: one evaluation every ``every`` updates."""
    return [
        {"update": every * (i + 1), "pass": i // 2, "loss": 1.0 / (i + 1), "recall@10": recall,
         "lr": 0.001, "seconds": 0.5 * (i + 1)}
        for i, recall in enumerate(recalls)
    ]  # fmt: skip


def trained(name: str, recalls: list[float], best_update: int, every: int = 100) -> ModelMetrics:
    """The metrics of an iteratively trained model evaluated every ``every`` updates."""
    training = Training(
        best_update=best_update,
        updates=every * len(recalls),
        evaluations=len(recalls),
        training_seconds=1.0,
        history=history(recalls, every),
    )
    return replace(untrained(name), training=training)


def untrained(name: str) -> ModelMetrics:
    """The metrics of a model the shared loop does not train."""
    recall = Recall(overall=0.3, last=0.2, random=0.4, users=10)
    return ModelMetrics(name, recall, 1.0, 0.1, "cpu", epochs=None, hyperparameters={})


def ranker_metrics(ceiling: pd.DataFrame) -> ModelMetrics:
    """The ranker's metrics around the candidate ceiling ``ceiling``."""
    mix = MixRecall({"2/8": 0.1}, mean=0.1, worst=0.1)
    ranker = RankerRecord(
        fold_rounds=[20],
        extra_queries=0,
        candidate_recall=0.5,
        candidate_recall_by_source=ceiling.to_dict("records"),
        first_stage_recall={"ease": 0.1},
        by_mix=mix,
        first_stage_by_mix={"ease": mix},
        top_features=["ease_rank"],
    )
    return replace(untrained("lgbm_ranker"), epochs=20, ranker=ranker)


def parameters(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "conf" / "base" / f"parameters{name}.yml").read_text())


@pytest.fixture(scope="module")
def recommendations(tiny_data) -> dict[str, pd.DataFrame]:
    matrix = tiny_data["train_matrix_valid"]
    return {
        "ease": top_k_unseen(ItemCooccurrence(matrix).score, matrix, 30),
        "multivae": top_k_unseen(popular_model(matrix).score, matrix, 30),
    }


@pytest.fixture(scope="module")
def ensemble_outputs(tiny_data, recommendations) -> tuple[dict, EnsembleMetrics]:
    """``ensemble_weights`` and ``ensemble_metrics`` as the ensembling node writes them."""
    params = parameters("_ensembling")["ensembling"]
    params["tuning"] = {**params.get("tuning", {}), "n_trials": 4, "guard_folds": 2}
    weights, metrics, _, _ = evaluate_ensembles(
        tiny_data["valid_answers"], tiny_data["split_train"], tiny_data["item_features"],
        EnsemblingSettings.from_params(params),
        EvaluationSettings.from_params(parameters("")["evaluation"]), **recommendations,
    )  # fmt: skip
    return weights, metrics


@pytest.fixture(scope="module")
def ensemble_metrics(ensemble_outputs) -> EnsembleMetrics:
    return ensemble_outputs[1]


@pytest.fixture(scope="module")
def ceiling(tiny_data, recommendations) -> pd.DataFrame:
    """The ranker's candidate ceiling, as the ranker records it."""
    answers = tiny_data["valid_answers"]
    users = np.unique(answers["user_idx"])
    popular = rc.popular_candidates(tiny_data["train_matrix_valid"], 20, users)
    return rc.candidate_recall_by_source(recommendations, popular, answers, top_n=10)


@pytest.fixture(scope="module")
def model_metrics(tiny_data, recommendations) -> dict[str, ModelMetrics | Skipped]:
    answers = tiny_data["valid_answers"]

    def measured(name: str, fit_seconds: float, training: Training | None) -> ModelMetrics:
        return model_outputs.model_metrics(
            name, recommendations[name], answers, fit_seconds=fit_seconds, predict_seconds=0.2,
            device="cpu", hyperparameters={}, epochs=3 if training else None, training=training,
        )  # fmt: skip

    return {
        "ease": measured("ease", 1.5, None),
        "multivae": measured("multivae", 2.0, trained("multivae", [0.1, 0.3, 0.2], 300).training),
        "sasrec": Skipped("sasrec"),
    }


@pytest.fixture(scope="module")
def table(model_metrics, ensemble_metrics) -> pd.DataFrame:
    return report.metrics_table(
        model_metrics, ensemble_metrics, ["ease", "sasrec", "multivae", "srgnn"]
    )


def test_metrics_table_has_a_row_per_enabled_model_and_per_ensemble(
    table, model_metrics, ensemble_metrics
):
    methods = [f"ensemble_{method}" for method in ensemble_metrics.ensembles]
    assert table["model"].tolist() == ["ease", "multivae", *methods]
    assert table["kind"].tolist() == ["model", "model"] + ["ensemble"] * len(methods)
    rows = table.set_index("model")
    assert rows.loc["ease", "recall@10_last"] == model_metrics["ease"].recall.last
    holdout = ensemble_metrics.models["ease"].holdout.overall
    assert rows.loc["ease", "holdout_recall@10"] == holdout
    assert rows.loc["ease", "fit_seconds"] == 1.5
    weighted = ensemble_metrics.ensembles["weighted_rank"].halves
    assert rows.loc["ensemble_weighted_rank", "holdout_recall@10"] == weighted.holdout.overall
    assert rows.loc["ensemble_weighted_rank", "users"] == weighted.all.users
    assert rows.loc["multivae", "best_update"] == 300


def test_metrics_table_carries_the_per_mix_mean_and_worst(table, ensemble_metrics):
    rows = table.set_index("model")
    for name in rows.index:
        scores = ensemble_metrics.by_mix[name]
        assert rows.loc[name, ["mix_mean", "mix_worst"]].tolist() == [scores.mean, scores.worst]


def test_metrics_table_without_ensemble_details_still_lists_the_models():
    table = report.metrics_table({"ease": untrained("ease")}, None, ["ease"])
    assert table["model"].tolist() == ["ease"]
    assert table[["holdout_recall@10", "mix_mean"]].isna().all(axis=None)


def test_recall_by_mix_table_sorts_by_mean_and_computes_spread_and_gap_to_best(ensemble_metrics):
    mix = report.recall_by_mix_table(ensemble_metrics)
    mixes = ["2/8", "4/6", "6/4"]  # evaluation.mixes
    assert mix.columns.tolist() == ["list", *mixes, "mean", "worst", "spread", "vs_best"]
    assert set(mix["list"]) == set(ensemble_metrics.by_mix)
    assert mix["mean"].is_monotonic_decreasing
    for row in mix.itertuples(index=False):
        scores = ensemble_metrics.by_mix[row.list]
        values = [scores.mixes[key] for key in mixes]
        assert row.spread == pytest.approx(max(values) - min(values))
        assert row.vs_best == pytest.approx(scores.mean - mix["mean"].max())
    assert report.recall_by_mix_table(None).empty


def test_release_filter_table_gains_are_with_minus_without(ensemble_metrics):
    ablation = report.release_filter_table(ensemble_metrics)
    assert ablation.columns.tolist() == records.columns(records.RELEASE_FILTER)
    assert ablation["list"].tolist() == list(ensemble_metrics.release_filter)
    for row in ablation.to_dict("records"):
        sides = ensemble_metrics.release_filter[row["list"]]
        with_filter, without_filter = sides.with_filter.columns(), sides.without_filter.columns()
        for column in records.RECALL_COLUMNS:
            with_, without = with_filter[column], without_filter[column]
            assert (row[f"with_{column}"], row[f"without_{column}"]) == (with_, without)
            assert row[f"gain_{column}"] == pytest.approx(with_ - without)
    assert report.release_filter_table(replace(ensemble_metrics, release_filter={})).empty


def test_candidate_ceiling_table_reads_what_the_ranker_recorded(ceiling):
    table = report.candidate_ceiling_table(ranker_metrics(ceiling))
    assert table["source"].tolist() == ["ease", "multivae", rc.POPULAR_SOURCE, "union"]
    pd.testing.assert_frame_equal(table, ceiling)
    assert table.loc[table["source"] != "union", "adds"].notna().all()
    assert report.candidate_ceiling_table(Skipped("lgbm_ranker")).empty
    empty = report.candidate_ceiling_table(None)
    assert empty.columns.tolist() == records.columns(records.CANDIDATE_CEILING)


def test_a_ceiling_without_the_columns_the_report_shows_stops_naming_them(ceiling):
    drifted = ceiling.drop(columns=["adds", "adds_last", "adds_random"]).assign(marginal=0.0)
    with pytest.raises(records.RecordError, match=r"candidate_ceiling: unexpected column\(s\) "
                       r"'marginal'; missing column\(s\) 'adds', 'adds_last', 'adds_random'"):  # fmt: skip
        report.candidate_ceiling_table(ranker_metrics(drifted))


def test_training_history_has_a_row_per_evaluation_and_marks_the_best_update():
    metrics = {
        "multivae": trained("multivae", [0.1, 0.3, 0.2], 200),
        "sasrec": trained("sasrec", [0.05, 0.15], 100, every=50),
        "recvae": Skipped("recvae"),
        "ease": untrained("ease"),
    }
    frame = report.training_history(metrics, ["multivae", "recvae", "sasrec"])
    assert frame.columns.tolist() == report.HISTORY_COLUMNS
    assert frame["model"].tolist() == ["multivae"] * 3 + ["sasrec"] * 2
    assert frame["update"].tolist() == [100, 200, 300, 50, 100]
    assert frame["best"].tolist() == [False, True, False, False, True]
    assert report.training_history(metrics, ["ease", "recvae"]).empty


def test_recall_vs_updates_draws_one_line_per_iterative_model_and_stars_the_best():
    metrics = {
        "multivae": trained("multivae", [0.1, 0.3, 0.2], 200),
        "sasrec": trained("sasrec", [0.05, 0.15], 100, every=50),
        "gru4rec": trained("gru4rec", [0.02, 0.04, 0.03, 0.01], 0),  # never evaluated: no star
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


def test_every_list_has_its_own_colour_and_the_legend_sits_outside_the_data(
    tiny_data, recommendations
):
    buckets = report.activity_buckets(tiny_data["split_train"], [20, 40])
    lists = {f"list_{i}": recommendations["ease"] for i in range(17)}
    activity = report.recall_by_activity(lists, tiny_data["valid_answers"], buckets)
    figure = report.plot_recall_by_activity(activity)
    (axes,) = figure.axes
    colours = [line.get_color() for line in axes.get_lines()]
    assert len(colours) == 17 and len(set(colours)) == 17
    assert axes.get_legend() is None and len(figure.legends) == 1
    figure.canvas.draw()
    legend = figure.legends[0].get_window_extent()
    assert legend.x0 >= axes.get_window_extent().x1  # right of the axes, not over the lines


def test_ensemble_weights_draw_only_the_models_that_weigh_something():
    weights = {
        "weighted_rank": {
            "weights": {"ease": 0.8, "multivae": 0.0, "sknn": 0.2, "markov": 0.0},
            "cutoff": 12, "head": 10, "tail_weight": 0.3, "rank_offset": 5.0,
        }
    }  # fmt: skip
    (axes,) = report.plot_ensemble_weights(weights).axes
    assert [label.get_text() for label in axes.get_yticklabels()] == ["ease", "sknn"]
    assert [bar.get_width() for bar in axes.patches] == [0.8, 0.2]
    assert "weight 0: multivae, markov" in axes.get_xlabel()


def test_optuna_histories_have_one_panel_per_study_three_a_row():
    trials = pd.DataFrame({"number": [0, 1], "value": [0.1, 0.2]})
    studies = {f"model_{i}": trials for i in range(4)} | {"not run": trials.iloc[:0]}
    figure = report.plot_optuna_histories(studies)
    drawn = [axes for axes in figure.axes if axes.get_title()]
    assert [axes.get_title() for axes in drawn] == [f"model_{i}" for i in range(4)]
    assert len(figure.axes) == 6  # two rows of three, the last two blank
    assert figure.get_size_inches()[0] <= 11


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
    top10 = recommendations["ease"].query("rank <= 10")
    examples = report.example_users(
        top10,
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
    expected = top10[top10["user_idx"] == user_idx]
    assert recommended["item"].tolist() == items.loc[expected["item_idx"]].tolist()
    assert examples["title"].notna().all()
    assert examples["genres"].str.len().gt(0).all()


def test_validation_examples_mark_the_held_out_movies_and_keep_the_reason(
    tiny_data, recommendations
):
    answers = tiny_data["valid_answers"]
    lists = recommendations["ease"].query("rank <= 10")
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


def test_plots_are_figures_that_render_to_png(table, tiny_data, recommendations, ensemble_outputs):
    buckets = report.activity_buckets(tiny_data["split_train"], [20, 40])
    activity = report.recall_by_activity(recommendations, tiny_data["valid_answers"], buckets)
    trials = pd.DataFrame({"number": [0, 1], "value": [0.1, 0.2]})
    figures = [
        report.plot_recall_by_kind(table),
        report.plot_recall_vs_updates(report.training_history({}, ["multivae"])),
        report.plot_recall_by_activity(activity),
        report.plot_ensemble_weights(ensemble_outputs[0]),
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


def section(page_text: str, heading: str) -> str:
    """The page from the heading ``<h2>heading</h2>`` to the next one."""
    return page_text.split(f"<h2>{heading}</h2>", 1)[1].split("<h2>", 1)[0]


def cells(page_text: str, row_start: str) -> list[str]:
    """The cells' text of the first table row whose first cell is ``row_start``."""
    row = re.search(rf"<tr><td[^>]*>{re.escape(row_start)}</td>(.*?)</tr>", page_text)
    assert row, row_start
    return re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))


def test_the_html_report_is_self_contained_and_escapes_text(table):
    images = {"recall_by_kind.png": report.figure_png(report.plot_recall_by_kind(table))}
    examples = examples_frame("<script>alert(1)</script> (1979)")
    text = report.render_html(table, ACTIVITY, examples, images, {"method": "<b>priority</b>"})
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", text)
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(embedded) == 1
    assert base64.b64decode(embedded[0]).startswith(PNG_MAGIC)
    assert "<script" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # the year is cut, the rest escaped
    assert "Submission method: <b>&lt;b&gt;priority&lt;/b&gt;</b>" in text
    assert "ensemble_priority" in text


def test_the_html_report_shows_every_section_with_its_numbers(table, ensemble_metrics, ceiling):
    examples_valid = examples_frame("Alien (1979)").assign(
        reason=[None, "follows Heat (1995), Casino (1995)"], held_out=[False, True]
    )
    by_mix = report.recall_by_mix_table(ensemble_metrics)
    release = report.release_filter_table(ensemble_metrics)
    text = report.render_html(
        table,
        ACTIVITY,
        examples_frame("Alien (1979)"),
        {},
        {"method": "priority"},
        by_mix=by_mix,
        release_filter=release,
        release_filter_slack=ensemble_metrics.release_filter_slack,
        candidate_ceiling=report.candidate_ceiling_table(ranker_metrics(ceiling)),
        examples_valid=examples_valid,
        title="report & co",
    )
    assert "<title>report &amp; co</title>" in text
    assert "Submission method: <b>priority</b>" in text
    # summary: best single model and the ensemble on the holdout half
    best = table[table["kind"] == "model"].set_index("model")["holdout_recall@10"]
    assert f"best single model\n{best.idxmax()} {best.max():.4f}" in text
    ensembles = table[table["kind"] == "ensemble"]
    for name, recall in zip(ensembles["model"], ensembles["holdout_recall@10"], strict=True):
        assert f"<li>{name}: {recall:.4f}</li>" in text
    # metrics: recalls, then the cost table with the best update as a whole number
    metrics = section(text, "Validation metrics")
    multivae = table.set_index("model").loc["multivae"]
    assert cells(metrics, "multivae")[1] == f"{multivae['recall@10']:.4f}"
    assert cells(metrics.split("Cost:")[1], "multivae")[-1] == "300"
    # per mix: every list with its values and signed gap to the best list
    mixes = section(text, "Recall@10 per last/random mix")
    for row in by_mix.to_dict("records"):
        assert cells(mixes, row["list"])[0] == f"{row['2/8']:.4f}"
        assert cells(mixes, row["list"])[-1] == f"{row['vs_best']:+.4f}"
    # release filter: with, without and the signed gain per kind
    filtered = section(text, "Release-year filter")
    ease = release.set_index("list").loc["ease"]
    assert cells(filtered, "ease")[:3] == [
        f"{ease['with_recall@10']:.4f}", f"{ease['without_recall@10']:.4f}",
        f"{ease['gain_recall@10']:+.4f}",
    ]  # fmt: skip
    assert "last activity year + 1;" in filtered
    # candidate ceiling: every source with what only it holds; the union with "–"
    sources = section(text, "Candidate ceiling per source")
    for row in ceiling.itertuples(index=False):
        shown = cells(sources, row.source)
        assert shown[0] == f"{row.recall:.4f}"
        assert shown[3] == ("–" if row.source == "union" else f"{row.adds:.4f}")
    # activity (a list per row, a bucket per column), example users, reason and held-out mark
    activity = section(text, "Recall@10 by user activity")
    assert "16–49 (3 users)" in activity and cells(activity, "ease") == ["0.1000"]
    assert 'title="follows Heat (1995), Casino (1995)"' in text
    assert '<td class="text" title="Alien">Alien</td>' in text  # the year has its own column
    assert '<th class="flag">held out</th>' in text and '<td class="flag">✓</td>' in text
    assert "Not available" not in text.replace("Not available: no plots", "")


def test_numbers_are_right_aligned_and_text_left(table):
    text = report.render_html(table, ACTIVITY, examples_frame("Alien (1979)"), {}, {})
    row = re.search(r"<tr><td[^>]*>ease</td>.*?</tr>", text).group(0)
    classes = re.findall(r'<td class="(\w+)"', row)
    assert classes[:2] == ["text", "text"]  # list, kind
    assert set(classes[2:]) == {"num"}


def test_the_html_report_says_not_available_for_missing_inputs():
    empty_table = report.metrics_table({}, None, [])
    text = report.render_html(empty_table, pd.DataFrame(), pd.DataFrame(), {}, {})
    messages = re.findall(r'<p class="na">Not available: ([^<]+)</p>', text)
    # metrics, costs, mix, release, ceiling, plots, activity, 2 × examples
    assert len(messages) == 9
    assert "last activity year;" in text  # no slack recorded


def test_every_layout_reads_columns_of_its_schema():
    for schema, layout in (
        (records.METRICS, page.METRICS_LAYOUT),
        (records.METRICS, page.COST_LAYOUT),
        (records.RELEASE_FILTER, page.RELEASE_FILTER_LAYOUT),
        (records.CANDIDATE_CEILING, page.CEILING_LAYOUT),
        *((records.EXAMPLE_USERS, (("", columns),)) for columns in page.EXAMPLE_COLUMNS.values()),
    ):
        read = [column for _, columns in layout for column, _ in columns]
        assert set(read) <= set(schema.columns), schema.name

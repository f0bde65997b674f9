"""Kedro glue of the reporting pipeline; the work is in :mod:`movie_rec.report`."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from movie_rec import fusion, report
from movie_rec.explain import Explainer
from movie_rec.parameters import ReportingSettings
from movie_rec.records import EnsembleMetrics, ModelMetrics, Skipped
from movie_rec.registry import ITERATIVE, MODELS, TUNABLE, models_that

TUNED_MODELS = tuple(models_that(TUNABLE))
ITERATIVE_MODELS = tuple(models_that(ITERATIVE))
PLOTS = (
    "recall_by_kind",
    "recall_vs_updates",
    "recall_by_activity",
    "ensemble_weights",
    "optuna_history",
    "feature_importance",
)


def build_metrics_table(
    ensemble_metrics: EnsembleMetrics, **model_metrics: ModelMetrics | Skipped
) -> pd.DataFrame:
    """``metrics.csv``: one row per enabled model and per ensemble method."""
    return report.metrics_table(model_metrics, ensemble_metrics, list(MODELS))


def build_training_history(**model_metrics: ModelMetrics | Skipped) -> pd.DataFrame:
    """``training_history.csv``: every validation evaluation of every iterative model."""
    return report.training_history(model_metrics, ITERATIVE_MODELS)


def build_recall_by_mix(ensemble_metrics: EnsembleMetrics) -> pd.DataFrame:
    """``recall_by_mix.csv``: holdout Recall@10 of every list per last/random mix."""
    return report.recall_by_mix_table(ensemble_metrics)


def build_release_filter_ablation(ensemble_metrics: EnsembleMetrics) -> pd.DataFrame:
    """``release_filter_ablation.csv``: every list with and without the release-year filter."""
    return report.release_filter_table(ensemble_metrics)


def build_candidate_ceiling(lgbm_ranker_metrics: ModelMetrics | Skipped) -> pd.DataFrame:
    """``candidate_ceiling.csv``: the ranker's candidate recall per source."""
    return report.candidate_ceiling_table(lgbm_ranker_metrics)


def build_recall_by_activity(
    valid_answers: pd.DataFrame,
    split_train: pd.DataFrame,
    ensemble_recommendations_valid: pd.DataFrame,
    settings: ReportingSettings,
    **candidates_valid: pd.DataFrame,
) -> pd.DataFrame:
    """Recall@10 per history-length bucket for every model and ensemble method."""
    lists = fusion.usable_candidates(candidates_valid, list(MODELS))
    for method, frame in ensemble_recommendations_valid.groupby("method", sort=False):
        lists[f"ensemble_{method}"] = frame
    buckets = report.activity_buckets(split_train, settings.activity_buckets)
    return report.recall_by_activity(lists, valid_answers, buckets)


def with_reasons(
    examples: pd.DataFrame,
    model: Any,
    history: pd.DataFrame,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
    item_features: pd.DataFrame,
) -> pd.DataFrame:
    """``examples`` with a ``reason`` for each recommended movie: the user's watched movies
    that add most to its score in ``model`` (the final EASE fit; nothing when it is disabled).

    The final fit saw every interaction, the validation answers included: on validation
    examples the reasons explain, they do not score.
    """
    if not Explainer.supports(model):
        return examples
    explainer = Explainer(model)
    users = examples["user"].map(user_map.set_index("user")["user_idx"]).to_numpy()
    items = examples["item"].map(item_map.set_index("item")["item_idx"]).to_numpy()
    titles = item_features.set_index("item_idx")["title"]
    histories = history.groupby("user_idx")["item_idx"].agg(lambda items: items.to_numpy())
    reasons = [
        "; ".join(str(titles.get(reason.index, reason.index)) for reason in explainer.reasons(
            int(item), histories[user], user=int(user)
        ))
        if role == "recommended" else ""
        for role, user, item in zip(examples["role"], users, items, strict=True)
    ]  # fmt: skip
    return examples.assign(reason=reasons)


def build_example_users(
    recommendations: pd.DataFrame,
    history: pd.DataFrame,
    item_features: pd.DataFrame,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
    ease_model: Any,
    settings: ReportingSettings,
    answers: pd.DataFrame | None = None,
    ensemble_weights: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Recent titles of ``history`` → recommended titles, each with its reason, for a seeded
    sample of users: the submitted lists over all interactions, or (given the held-out
    ``answers`` and ``ensemble_weights``) the submitted method's validation lists over
    ``split_train``, with the held-out movies marked."""
    if ensemble_weights is not None:
        chosen = recommendations["method"] == ensemble_weights.get("method")
        recommendations = recommendations[chosen]
    sample = settings.example_users
    examples = report.example_users(
        recommendations,
        history,
        item_features,
        user_map,
        n_users=sample.count,
        n_watched=sample.watched,
        seed=sample.seed,
        answers=answers,
    )
    return with_reasons(examples, ease_model, history, user_map, item_map, item_features)


def draw_plots(
    metrics_table: pd.DataFrame,
    training_history: pd.DataFrame,
    recall_by_activity: pd.DataFrame,
    ensemble_weights: dict[str, Any],
    ensemble_optuna_trials: pd.DataFrame,
    lgbm_ranker_feature_importance: pd.DataFrame,
    **optuna_trials: pd.DataFrame,
) -> dict[str, Figure | dict[str, bytes]]:
    """The report's figures, each saved as a PNG (``plot_<name>``), and all of them as PNG
    bytes (``images``) for the HTML."""
    histories = {name: optuna_trials[name] for name in TUNED_MODELS}
    histories["ensemble weighted_rank"] = ensemble_optuna_trials
    colours = report.list_colours([*metrics_table["model"], *recall_by_activity["model"]])
    figures = {
        "recall_by_kind": report.plot_recall_by_kind(metrics_table),
        "recall_vs_updates": report.plot_recall_vs_updates(training_history, colours),
        "recall_by_activity": report.plot_recall_by_activity(recall_by_activity, colours),
        "ensemble_weights": report.plot_ensemble_weights(ensemble_weights),
        "optuna_history": report.plot_optuna_histories(histories),
        "feature_importance": report.plot_feature_importance(lgbm_ranker_feature_importance),
    }
    images = {f"{name}.png": report.figure_png(figure) for name, figure in figures.items()}
    return {**figures, "images": images}


def render_report(
    metrics_table: pd.DataFrame,
    recall_by_mix: pd.DataFrame,
    release_filter_ablation: pd.DataFrame,
    candidate_ceiling: pd.DataFrame,
    recall_by_activity: pd.DataFrame,
    example_users: pd.DataFrame,
    example_users_valid: pd.DataFrame,
    ensemble_weights: dict[str, Any],
    ensemble_metrics: EnsembleMetrics,
    report_images: dict[str, bytes],
) -> str:
    """``report.html``: everything above in one file that opens offline."""
    return report.render_html(
        metrics_table,
        recall_by_activity,
        example_users,
        report_images,
        ensemble_weights,
        by_mix=recall_by_mix,
        release_filter=release_filter_ablation,
        release_filter_slack=ensemble_metrics.release_filter_slack,
        candidate_ceiling=candidate_ceiling,
        examples_valid=example_users_valid,
    )

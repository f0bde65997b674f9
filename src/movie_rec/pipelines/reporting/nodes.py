"""Kedro glue of the reporting pipeline; the work is in :mod:`movie_rec.reporting`."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from movie_rec import ensemble, reporting

TUNED_MODELS = ("ease", "multivae")


def build_metrics_table(
    ensemble_metrics: dict[str, Any], **model_metrics: dict[str, Any]
) -> pd.DataFrame:
    """``metrics.csv``: one row per enabled model and per ensemble method."""
    return reporting.metrics_table(model_metrics, ensemble_metrics, ensemble.MODELS)


def build_recall_by_activity(
    valid_answers: pd.DataFrame,
    split_train: pd.DataFrame,
    ensemble_recommendations_valid: pd.DataFrame,
    params: dict[str, Any],
    **candidates_valid: pd.DataFrame,
) -> pd.DataFrame:
    """Recall@10 per history-length bucket for every model and ensemble method."""
    lists = ensemble.usable_candidates(candidates_valid, ensemble.MODELS)
    for method, frame in ensemble_recommendations_valid.groupby("method", sort=False):
        lists[f"ensemble_{method}"] = frame
    buckets = reporting.activity_buckets(split_train, params["activity_buckets"])
    return reporting.recall_by_activity(lists, valid_answers, buckets)


def build_example_users(
    ensemble_recommendations_final: pd.DataFrame,
    interactions: pd.DataFrame,
    item_features: pd.DataFrame,
    user_map: pd.DataFrame,
    params: dict[str, Any],
) -> pd.DataFrame:
    """Recent titles → submitted titles for a seeded sample of users."""
    examples = params["example_users"]
    return reporting.example_users(
        ensemble_recommendations_final,
        interactions,
        item_features,
        user_map,
        n_users=int(examples["count"]),
        n_watched=int(examples["watched"]),
        seed=int(examples["seed"]),
    )


def draw_plots(
    metrics_table: pd.DataFrame,
    recall_by_activity: pd.DataFrame,
    ensemble_weights: dict[str, Any],
    ensemble_optuna_trials: pd.DataFrame,
    lgbm_ranker_feature_importance: pd.DataFrame,
    **optuna_trials: pd.DataFrame,
) -> tuple[dict[str, Figure], dict[str, bytes]]:
    """The report's figures, saved as PNG files and passed on as PNG bytes for the HTML."""
    histories = {f"{name} (Optuna)": optuna_trials[name] for name in TUNED_MODELS}
    histories["ensemble weighted_rank"] = ensemble_optuna_trials
    figures = {
        "recall_by_kind.png": reporting.plot_recall_by_kind(metrics_table),
        "recall_by_activity.png": reporting.plot_recall_by_activity(recall_by_activity),
        "ensemble_weights.png": reporting.plot_ensemble_weights(ensemble_weights),
        "optuna_history.png": reporting.plot_optuna_histories(histories),
        "feature_importance.png": reporting.plot_feature_importance(lgbm_ranker_feature_importance),
    }
    return figures, {name: reporting.figure_png(figure) for name, figure in figures.items()}


def render_report(
    metrics_table: pd.DataFrame,
    recall_by_activity: pd.DataFrame,
    example_users: pd.DataFrame,
    ensemble_weights: dict[str, Any],
    report_images: dict[str, bytes],
) -> str:
    """``report.html``: everything above in one file that opens offline."""
    return reporting.render_html(
        metrics_table, recall_by_activity, example_users, report_images, ensemble_weights
    )

"""The report (README, "Outputs"): tables, plots, example users and one self-contained HTML
page that reads at 1,280 px.

* :mod:`.tables`: the tables (pandas frames, each saved as a CSV that kedro-viz previews),
  checked against their schemas in :mod:`movie_rec.records`;
* :mod:`.plots`: the figures, one colour per list in every figure;
* :mod:`.page`: the HTML page (``templates/report.html.j2``).
"""

from movie_rec.report.page import render_html
from movie_rec.report.plots import (
    figure_png,
    list_colours,
    plot_ensemble_weights,
    plot_feature_importance,
    plot_optuna_histories,
    plot_recall_by_activity,
    plot_recall_by_kind,
    plot_recall_vs_updates,
)
from movie_rec.report.tables import (
    HISTORY_COLUMNS,
    activity_buckets,
    candidate_ceiling_table,
    example_users,
    metrics_table,
    recall_by_activity,
    recall_by_mix_table,
    release_filter_table,
    training_history,
)

__all__ = [
    "HISTORY_COLUMNS",
    "activity_buckets",
    "candidate_ceiling_table",
    "example_users",
    "figure_png",
    "list_colours",
    "metrics_table",
    "plot_ensemble_weights",
    "plot_feature_importance",
    "plot_optuna_histories",
    "plot_recall_by_activity",
    "plot_recall_by_kind",
    "plot_recall_vs_updates",
    "recall_by_activity",
    "recall_by_mix_table",
    "release_filter_table",
    "render_html",
    "training_history",
]

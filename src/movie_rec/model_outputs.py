"""The ``M.metrics`` record every model pipeline writes (docs/architecture.md §5): a
:class:`movie_rec.records.ModelMetrics`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from movie_rec.evaluation import recall_at_k
from movie_rec.records import FirstStageRecord, ModelMetrics, RankerRecord, Recall, Training


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """``with stopwatch() as t: ...`` then ``t["seconds"]`` holds the elapsed wall time."""
    timing = {"seconds": 0.0}
    start = time.perf_counter()
    try:
        yield timing
    finally:
        timing["seconds"] = time.perf_counter() - start


def model_metrics(
    model: str,
    candidates_valid: pd.DataFrame,
    valid_answers: pd.DataFrame,
    *,
    fit_seconds: float,
    predict_seconds: float,
    device: str,
    hyperparameters: dict[str, Any],
    epochs: int | None = None,
    training: Training | None = None,
    first_stage: FirstStageRecord | None = None,
    ranker: RankerRecord | None = None,
) -> ModelMetrics:
    """Validation Recall@10 (overall, last, random) plus timings, device and settings."""
    return ModelMetrics(
        model,
        Recall.from_json(recall_at_k(candidates_valid, valid_answers, k=10)),
        fit_seconds=round(float(fit_seconds), 3),
        predict_seconds=round(float(predict_seconds), 3),
        device=str(device),
        epochs=epochs,
        hyperparameters=hyperparameters,
        training=training,
        first_stage=first_stage,
        ranker=ranker,
    )

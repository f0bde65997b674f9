"""Project pipelines: every folder under ``pipelines/`` with a ``create_pipeline``."""

from __future__ import annotations

import warnings

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Every model runs in its own namespace, so its outputs are named ``<model>.<dataset>``
# (``ease.candidates_valid``). The pipelines after the models (tabular_rec, ensembling,
# reporting) read them by those names; Kedro warns about any dotted name read outside its
# namespace, which here is every intended read of a model's output.
NAMESPACED_INPUTS_WARNING = r"One or more dataset names contain '\.' characters"


def register_pipelines() -> dict[str, Pipeline]:
    """Register the six pipelines; ``__default__`` runs them all, ending in the submission."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", NAMESPACED_INPUTS_WARNING, UserWarning)
        pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines

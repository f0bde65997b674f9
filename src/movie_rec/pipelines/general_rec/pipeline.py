"""general_rec: the order-free models of the registry, each tuned, fitted twice and reported.

Every one runs the shared model nodes of :mod:`movie_rec.pipelines.model_nodes` in its own
namespace.
"""

from kedro.pipeline import Pipeline

from movie_rec.pipelines.model_nodes import model_pipeline
from movie_rec.registry import models_of


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([model_pipeline(spec.name) for spec in models_of("general_rec")])

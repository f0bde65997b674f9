"""kedro-viz loads the project in-process: six pipelines, and the layers left to right."""

from __future__ import annotations

import shutil

import pytest
from kedro_viz.data_access import data_access_manager
from kedro_viz.server import load_and_populate_data
from kedro_viz.services.layers import sort_layers

from tests.conftest import REPO_ROOT

PIPELINES = (
    "data_processing",
    "general_rec",
    "sequential_rec",
    "tabular_rec",
    "ensembling",
    "reporting",
)
LAYERS = (
    "raw",
    "intermediate",
    "primary",
    "feature",
    "model_input",
    "models",
    "model_output",
    "reporting",
)


@pytest.fixture(scope="module")
def viz(tmp_path_factory):
    """kedro-viz's data access manager, populated from a copy of the project's conf."""
    project = tmp_path_factory.mktemp("viz")
    shutil.copytree(REPO_ROOT / "conf" / "base", project / "conf" / "base")
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()
    shutil.copy(REPO_ROOT / "pyproject.toml", project / "pyproject.toml")
    load_and_populate_data(project)
    return data_access_manager


def sorted_layers(viz, pipeline: str) -> list[str]:
    """kedro-viz's layer order over the nodes of ``pipeline`` alone."""
    node_ids = viz.registered_pipelines.get_node_ids_by_pipeline_id(pipeline)
    nodes = {node_id: viz.nodes.get_node_by_id(node_id) for node_id in node_ids}
    return sort_layers(nodes, viz.get_node_dependencies_for_registered_pipeline(pipeline))


def test_kedro_viz_lists_all_six_pipelines(viz):
    registered = set(viz.registered_pipelines.get_pipeline_ids())
    assert registered >= {*PIPELINES, "__default__"}


def backward_steps(viz, pipeline: str) -> list[tuple[str, str]]:
    """(input, output) dataset layers of a node that go right to left in ``LAYERS``."""
    dependencies = viz.get_node_dependencies_for_registered_pipeline(pipeline)

    def layer(node_id: str) -> str | None:
        return getattr(viz.nodes.get_node_by_id(node_id), "layer", None)

    steps = {
        (layer(source), layer(target))
        for source, tasks in dependencies.items()
        for task in tasks
        for target in dependencies.get(task, ())
    }
    return sorted(
        (before, after)
        for before, after in steps
        if before and after and LAYERS.index(before) > LAYERS.index(after)
    )


@pytest.mark.parametrize("pipeline", [*PIPELINES, "__default__"])
def test_layers_read_left_to_right(viz, pipeline):
    layers = sorted_layers(viz, pipeline)
    assert layers, "kedro-viz found no layers, or a cycle among them"
    assert set(layers) <= set(LAYERS)
    assert backward_steps(viz, pipeline) == []

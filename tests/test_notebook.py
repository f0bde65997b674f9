"""notebooks/eda.ipynb runs headless against a project's catalog."""

from __future__ import annotations

import shutil

import nbformat
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT, run_pipeline


def test_the_eda_notebook_executes_without_error(kedro_project):
    run_pipeline(kedro_project, "data_processing")
    notebooks = kedro_project / "notebooks"
    shutil.copytree(REPO_ROOT / "notebooks", notebooks)
    notebook = nbformat.read(notebooks / "eda.ipynb", as_version=4)
    client = NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebooks)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 4
    assert not [output for output in outputs if output["output_type"] == "error"]

"""The HPC statistics notebook runs on the demo data, top to bottom, and is kept without outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient

from runcrawler_assets.analytics import ANALYSES
from runcrawler_tests.conftest import DemoWarehouse

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "hpc_statistics.ipynb"
CELL_TIMEOUT_S = 120


def code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_stored_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in code_cells(notebook):
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_every_stored_cell_has_its_own_id() -> None:
    """nbformat 4.5 cells carry an id: one missing is filled at random when read (a warning
    now, an error in nbformat to come), and the notebook's diffs churn."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    ids = [cell.get("id") for cell in cells]
    assert None not in ids and len(set(ids)) == len(ids)


@pytest.fixture(scope="module")
def executed(
    demo_warehouse: DemoWarehouse, tmp_path_factory: pytest.TempPathFactory
) -> nbformat.NotebookNode:
    """The notebook executed on the demo warehouse, by this interpreter's ipykernel.

    The kernel spec is written for this interpreter and put first on JUPYTER_PATH,
    so a `python3` kernel the user installed elsewhere cannot run it instead.
    """
    jupyter = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(jupyter / "kernels" / "python3")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(jupyter))
        patch.setenv("RUNCRAWLER_DATA", str(demo_warehouse.settings.data_dir))
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        NotebookClient(
            notebook,
            timeout=CELL_TIMEOUT_S,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        ).execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [output for cell in code_cells(notebook) for output in cell.outputs]


def printed(notebook: nbformat.NotebookNode) -> str:
    return "".join(o.text for o in outputs(notebook) if o.output_type == "stream")


@pytest.mark.slow
def test_every_cell_runs_without_error(executed: nbformat.NotebookNode) -> None:
    assert all(cell.execution_count for cell in code_cells(executed))
    assert not [o for o in outputs(executed) if o.output_type == "error"]


@pytest.mark.slow
def test_it_loads_every_run_and_counts_the_cleaning(
    executed: nbformat.NotebookNode, demo_warehouse: DemoWarehouse
) -> None:
    with duckdb.connect(str(demo_warehouse.settings.duckdb_path), read_only=True) as con:
        (runs,) = con.execute("SELECT count(*) FROM runs").fetchone()
    text = printed(executed)
    assert f"{runs} runs loaded" in text
    assert re.search(
        rf"\d+ records parsed: {runs} kept as rows, \d+ dropped, \d+ values filled", text
    )
    assert "analyses: " + ", ".join(a.name for a in ANALYSES) in text


@pytest.mark.slow
def test_it_draws_every_chart_it_asks_for(executed: nbformat.NotebookNode) -> None:
    asked = sum(cell.source.count('.png"') for cell in code_cells(executed))
    images = [o for o in outputs(executed) if "image/png" in o.get("data", {})]
    assert asked >= 10
    assert len(images) == asked

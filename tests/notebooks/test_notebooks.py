"""Execute every notebook on a small simulated portfolio with a temporary MLflow store.

The notebooks (``notebooks/*.py``, jupytext percent files paired with
``.ipynb``) run in a fresh kernel of this interpreter, parameters injected
after the cell tagged ``parameters`` as papermill does; any failing cell fails
the test with the cell's traceback. Each kernel works in a temporary folder,
with ``TMPDIR``, the MLflow store, the kernel spec and the IPython and
Jupyter runtime folders under pytest's temporary directory, so nothing is
written into the repository.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
AS_OF = "2025-06-30"
N_ACCOUNTS, N_MONTHS, SEED, START = 1500, 18, 7, "2024-01-01"
KERNEL = "python3"


def notebook_paths() -> list[Path]:
    """Return the notebooks' percent files, in name order."""
    return sorted(NOTEBOOKS.glob("*.py"))


def parameter_names(nb: nbformat.NotebookNode) -> set[str]:
    """Return the names assigned in the cell tagged ``parameters`` (exactly one must exist)."""
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged 'parameters', found {len(cells)}"
    tree = ast.parse(cells[0].source)
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}


def inject(nb: nbformat.NotebookNode, parameters: dict) -> None:
    """Insert a cell assigning ``parameters`` right after the ``parameters`` cell."""
    unknown = set(parameters) - parameter_names(nb)
    assert not unknown, f"not parameters of this notebook: {sorted(unknown)}"
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, cell)


def output_text(nb: nbformat.NotebookNode) -> str:
    """Return the text a reader sees: streams and plain-text results of every cell."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def images(nb: nbformat.NotebookNode) -> int:
    """Return the number of PNG images the notebook displayed."""
    return sum(
        "image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", [])
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A simulated portfolio, a temporary MLflow store and a kernel of this interpreter."""
    from pipeline.simulator import simulate_portfolio, write_portfolio

    root = tmp_path_factory.mktemp("notebooks")
    data = root / "data"
    write_portfolio(simulate_portfolio(N_ACCOUNTS, N_MONTHS, seed=SEED, start=START), data)
    # A kernel spec pointing at this interpreter, found first through JUPYTER_PATH,
    # so a user-level "python3" kernel of another Python cannot be picked up.
    spec_dir = root / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    for sub in ("tmp", "ipython", "runtime", "work"):
        (root / sub).mkdir()
    env = {
        "JUPYTER_PATH": str(root / "jupyter"),
        "IPYTHONDIR": str(root / "ipython"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "TMPDIR": str(root / "tmp"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PYTHONPATH": str(ROOT),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield {"root": root, "data": data, "work": root / "work"}


def run(workspace, name: str, **parameters) -> nbformat.NotebookNode:
    """Execute ``notebooks/<name>.ipynb`` with ``parameters``; a failing cell raises."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    inject(nb, parameters)
    before = sorted(p.name for p in NOTEBOOKS.iterdir())
    NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=300,
        resources={"metadata": {"path": str(workspace["work"])}},
    ).execute()
    assert sorted(p.name for p in NOTEBOOKS.iterdir()) == before, "a notebook wrote into notebooks/"
    return nb


@pytest.fixture(scope="module")
def first_model(workspace):
    """Run the retraining notebook on an empty store, then make its model champion v1.

    The notebook's own promotion applies the production gate, which a model
    of this small portfolio may fail (calibration, or an AUC within noise of a
    baseline on a few hundred rows); the champion alias is then set by hand,
    as a risk team can do in the registry. The gate itself is tested in
    tests/models.
    """
    from models import tracking

    nb = run(
        workspace,
        "02_retrain",
        data_dir=str(workspace["data"]),
        as_of=AS_OF,
        promote=True,
        approver="notebook test",
        promotion_note="first model of the test store",
    )
    if tracking.alias_version(tracking.CHAMPION) is None:
        tracking.client().set_registered_model_alias(tracking.MODEL_NAME, tracking.CHAMPION, "1")
    assert tracking.alias_version(tracking.CHAMPION) == "1"
    return output_text(nb)


def test_explore_simulates_a_portfolio_when_no_data_folder_is_given(workspace):
    nb = run(workspace, "01_explore_portfolio", data_dir=None, as_of=AS_OF)
    text = output_text(nb)
    assert f"simulated {N_ACCOUNTS:,} accounts" in text
    assert "overdue at 2025-06-30" in text and "cure_1_29" in text
    assert images(nb) >= 5  # DPD, trend, episodes, contacts, promises


def test_retrain_on_an_empty_store_registers_and_gates(workspace, first_model):
    from models import tracking

    assert "no champion yet" in first_model
    assert "registered version 1 as challenger" in first_model
    # The gate is shown after training, then applied by the promotion step.
    assert first_model.count("Promotion of challenger v1 against the baselines") == 2
    assert "stays the challenger" not in first_model
    assert "promotion.decision" in tracking.version_info("1")["tags"]


def test_retrain_compares_a_new_feature_set_with_the_champion(workspace, first_model):
    from models import tracking

    nb = run(
        workspace,
        "02_retrain",
        data_dir=str(workspace["data"]),
        as_of=AS_OF,
        config_overrides={"lightgbm.num_leaves": 7},
        exclude_groups=["offer"],
        promote=False,
    )
    text = output_text(nb)
    assert "registered version 2 as challenger" in text
    assert "against champion v1" in text
    assert "stays the challenger" in text
    assert images(nb) >= 6  # ROC and importance of the run, ROC and calibration per head
    assert tracking.alias_version(tracking.CHALLENGER) == "2"
    assert tracking.alias_version(tracking.CHAMPION) == "1"
    run_id = tracking.version_info("2")["run_id"]
    params = tracking.client().get_run(run_id).data.params
    assert params["lightgbm.num_leaves"] == "7"
    assert int(params["spec.n_features"]) < 88


def test_review_policy_counts_and_what_if(workspace, first_model):
    nb = run(
        workspace,
        "03_review_policy",
        data_dir=str(workspace["data"]),
        as_of=AS_OF,
        what_if_axis="p_ability",
        what_if_from=0.5,
        what_if_to=0.4,
    )
    text = output_text(nb)
    assert "with models:/repayment-propensity@champion" in text
    assert "the current policy reproduces the published plans" in text
    assert "accounts get a different plan" in text
    assert images(nb) >= 2  # scores and tiers, tiers before and after


# ------------------------------------------------------------ committed files


@pytest.mark.parametrize("script", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_is_paired_in_sync_and_stripped(script):
    paired = script.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} missing: run jupytext --sync {script.name}"
    text = jupytext.read(script)
    committed = nbformat.read(paired, as_version=4)
    assert text.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert committed.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert committed.metadata["kernelspec"]["name"] == KERNEL

    def cells(nb):
        return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]

    assert cells(committed) == cells(text), f"out of sync: run jupytext --sync {script.name}"
    for cell in committed.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{paired.name} has outputs committed: strip them"
            )
    parameter_names(committed)  # exactly one parameters cell


def test_every_ipynb_has_its_percent_file():
    assert notebook_paths(), "no notebooks found"
    for paired in NOTEBOOKS.glob("*.ipynb"):
        assert paired.with_suffix(".py").exists(), f"{paired.name} has no paired .py"

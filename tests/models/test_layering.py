"""The models package keeps the layering: MLflow in one module, never the pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

import models

MODELS_DIR = Path(models.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_tracking_imports_mlflow_and_nothing_imports_the_pipeline():
    users = {}
    for path in sorted(MODELS_DIR.glob("*.py")):
        imported = _imports(path)
        assert not any(n == "pipeline" or n.startswith("pipeline.") for n in imported), path.name
        if any(n == "mlflow" or n.startswith("mlflow.") for n in imported):
            users[path.name] = True
    # mlflow_model.py is MLflow's models-from-code entry script, run only by MLflow at load;
    # registry.py holds promotion and rollback on top of tracking.py; tracking_load.py,
    # tracking_runs.py and tracking_train.py are tracking.py split by concern (reading models
    # back, other runs, the training run).
    assert list(users) == [
        "mlflow_model.py",
        "registry.py",
        "tracking.py",
        "tracking_load.py",
        "tracking_runs.py",
        "tracking_train.py",
    ]
    importers = [
        p.name for p in sorted(MODELS_DIR.glob("*.py")) if "models.mlflow_model" in _imports(p)
    ]
    assert importers == []

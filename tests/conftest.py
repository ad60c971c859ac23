"""Shared fixtures: make ``tests/factories.py`` importable as ``factories``.

``mlflow.pyfunc.load_model`` puts a model's shipped code (``code/``) first on
``sys.path`` and drops the project's own modules from ``sys.modules`` so that
the model's copies load instead. The nightly job never does that (it reads
models with ``models.tracking.load_model``), but a test of ``load_pyfunc``
would leave every later test of the session, and the worker processes they
spawn, on the model's copy of the code. ``_project_code_stays_installed``
puts the installed code back after each test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).parent))

_PACKAGES = ("features", "models", "pipeline")
_BASE_PATH = list(sys.path)


def _project_modules() -> dict:
    return {k: m for k, m in sys.modules.items() if k.split(".", 1)[0] in _PACKAGES}


@pytest.fixture(autouse=True)
def _project_code_stays_installed():
    before = _project_modules()
    yield
    if sys.path[: len(_BASE_PATH)] == _BASE_PATH and set(sys.path) <= set(_BASE_PATH):
        return
    sys.path[:] = [p for p in sys.path if p in _BASE_PATH]
    for name in [k for k in sys.modules if k.split(".", 1)[0] in _PACKAGES]:
        if name not in before:
            del sys.modules[name]
    sys.modules.update(before)

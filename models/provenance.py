"""Where a model comes from: code commit, package versions, pinned requirements.

One home for the list of packages a logged model needs at load time (the
model's ``requirements.txt``) and for the identity facts the model report and
the registry tags print.
"""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: Distributions the logged model imports when loaded (pinned to the versions in use).
MODEL_PACKAGES: tuple[str, ...] = (
    "mlflow",
    "lightgbm",
    "pandas",
    "numpy",
    "scipy",
    "scikit-learn",
    "pyarrow",
    "pyyaml",
    "pydantic",
)


def package_versions(packages: tuple[str, ...] = MODEL_PACKAGES) -> dict[str, str]:
    """Return the installed version of each package ("not installed" when absent)."""
    out = {}
    for dist in packages:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def pinned_requirements(packages: tuple[str, ...] = MODEL_PACKAGES) -> list[str]:
    """Return ``name==version`` for every installed package of ``packages``."""
    return [f"{k}=={v}" for k, v in package_versions(packages).items() if v != "not installed"]


def git_commit(folder: Path | None = None) -> str:
    """Return the git commit of the project's source (``-dirty`` when changed), else "unknown"."""
    where = folder or Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")

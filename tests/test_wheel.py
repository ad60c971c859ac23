"""The wheel holds every module and data file of the three packages.

A lender installs the project as a wheel (``pip install``, or the wheel that
``spark-submit --py-files`` ships to executors), not as this editable
checkout: a subpackage missing from the build configuration would import here
and fail there (``features.catalogue`` once did).
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / ".tools" / "bin" / "uv"
PACKAGES = ("features", "models", "pipeline")


def test_the_wheel_holds_every_module_and_data_file(tmp_path):
    # Built from a clean copy of the tracked files, as a fresh clone or CI builds it: in
    # the checkout, setuptools would reuse what earlier builds left (build/, *.egg-info).
    src = tmp_path / "src"
    tracked = subprocess.run(
        ["git", "ls-files", "pyproject.toml", "README.md", *PACKAGES],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in tracked:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, src / name)
    # `make setup` installed uv and built the project once, so setuptools is in uv's cache.
    subprocess.run(
        [str(UV), "build", "--wheel", "--offline", "-q", "-o", str(tmp_path / "dist")],
        cwd=src,
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {n for n in tracked if n.endswith((".py", ".yaml")) and n.split("/")[0] in PACKAGES}
    assert "features/catalogue/__init__.py" in expected
    assert "pipeline/default_policy.yaml" in expected
    assert sorted(expected - names) == []

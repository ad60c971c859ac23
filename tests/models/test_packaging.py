"""The logged model is pickle-free, refuses planted pickles and loads in a fresh environment."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from models import tracking
from models.config import config_from_dict
from models.packaging import project_root, unsafe_files
from models.synthetic import make_training_set
from models.training import train

CONFIG = config_from_dict({"lightgbm": {"num_threads": 1}})


class _CreatesFile:
    """Unpickling this object creates the file it names (what a planted pickle would do)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """Train a small model, log and register it in a temporary store; yield its folder."""
    root = tmp_path_factory.mktemp("store")
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        data = make_training_set(n_accounts=1500, n_months=8, seed=3)
        result = train(data.frame, CONFIG, data.spec)
        _, version = tracking.log_training_run(result, experiment="packaging")
        folder = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{tracking.MODEL_NAME}/{version}",
                dst_path=str(root / "download"),
            )
        )
        yield {"root": root, "folder": folder, "result": result, "version": version}
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_the_logged_model_holds_no_pickle_and_loads_from_text(logged):
    folder = logged["folder"]
    assert unsafe_files(folder) == []
    assert (folder / "mlflow_model.py").is_file()
    assert (folder / "code" / "models" / "propensity_model.py").is_file()
    assert (folder / "code" / "features" / "catalogue.py").is_file()
    requirements = (folder / "requirements.txt").read_text().split()
    assert all("==" in r for r in requirements) and any(
        r.startswith("lightgbm==") for r in requirements
    )
    test = logged["result"].split.test
    loaded = tracking.load_model(str(folder))
    pd.testing.assert_frame_equal(
        loaded.predict(test), logged["result"].model.predict(test), check_exact=True
    )


def test_a_planted_pickle_is_refused_and_never_executed(logged, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_CreatesFile(marker))
    # The payload is live: unpickling a copy of it does create a file.
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_CreatesFile(proof))).close()
    assert proof.exists()

    planted = tmp_path / "model"
    shutil.copytree(logged["folder"], planted)
    (planted / "python_model.pkl").write_bytes(payload)
    for load in (tracking.load_model, tracking.load_pyfunc):
        with pytest.raises(tracking.UnsafeModelError, match=r"pickle-like file.*python_model\.pkl"):
            load(str(planted))
    assert not marker.exists()

    # The same file planted in the store behind a registered version.
    stored = next(Path(logged["root"], "mlartifacts").rglob("MLmodel")).parent
    (stored / "artifacts" / "boosters.joblib").write_bytes(payload)
    try:
        with pytest.raises(tracking.UnsafeModelError, match="boosters.joblib"):
            tracking.load_model(f"models:/{tracking.MODEL_NAME}/{logged['version']}")
    finally:
        (stored / "artifacts" / "boosters.joblib").unlink()
    assert not marker.exists()


def test_a_foreign_flavor_is_refused(logged, tmp_path):
    foreign = tmp_path / "model"
    shutil.copytree(logged["folder"], foreign)
    mlmodel = foreign / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace("model_code_path:", "not_code_path:"))
    with pytest.raises(tracking.ForeignModelError, match="not a models-from-code"):
        tracking.load_model(str(foreign))


LOAD_SCRIPT = """
import sys
import mlflow.pyfunc
import pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
import models
assert models.__file__.startswith(sys.argv[1]), models.__file__
model.predict(pd.read_parquet(sys.argv[2])).to_parquet(sys.argv[3])
"""


def _uv() -> str | None:
    local = project_root() / ".tools" / "bin" / "uv"
    return shutil.which("uv") or (str(local) if local.exists() else None)


@pytest.mark.slow
def test_the_model_loads_in_a_fresh_venv_from_its_own_requirements(logged, tmp_path):
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (make setup installs it)")
    folder, venv = logged["folder"], tmp_path / "venv"
    python = venv / "bin" / "python"
    subprocess.run([uv, "venv", "-q", str(venv), "--python", sys.executable], check=True)
    install = [
        uv,
        "pip",
        "install",
        "-q",
        "--python",
        str(python),
        "-r",
        str(folder / "requirements.txt"),
    ]
    if subprocess.run([*install, "--offline"], capture_output=True).returncode != 0:
        subprocess.run(install, check=True, capture_output=True)  # not cached: from the registry
    test = logged["result"].split.test
    model = logged["result"].model
    model.signature_frame(test).to_parquet(tmp_path / "input.parquet")
    (tmp_path / "load.py").write_text(LOAD_SCRIPT)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    run = subprocess.run(
        [
            str(python),
            str(tmp_path / "load.py"),
            str(folder),
            str(tmp_path / "input.parquet"),
            str(tmp_path / "out.parquet"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = pd.read_parquet(tmp_path / "out.parquet")
    expected = model.predict(test).reset_index(drop=True)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_exact=True)

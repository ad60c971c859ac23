"""``propensity promote``, ``rollback``, ``report`` and ``score``: approval and unsafe models."""

from __future__ import annotations

import pickle

import factories as f
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.io import write_parquet

runner = CliRunner()


class _CreatesFile:
    def __init__(self, path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_promotion_and_rollback_need_an_approver_and_a_note(tmp_path, monkeypatch):
    _store(tmp_path, monkeypatch)
    result = runner.invoke(app, ["promote"])
    assert result.exit_code == 2
    assert "promote needs --approver NAME and --note TEXT" in result.output
    result = runner.invoke(app, ["rollback", "--to", "1", "--approver", "someone"])
    assert result.exit_code == 2 and "rollback needs --note TEXT" in result.output
    assert not (tmp_path / "mlflow.db").exists()  # refused before touching the store


def test_an_approved_promotion_or_a_report_without_a_store_exits_3(tmp_path, monkeypatch):
    _store(tmp_path, monkeypatch)
    result = runner.invoke(app, ["promote", "--approver", "demo", "--note", "demo run"])
    assert result.exit_code == 3, result.output
    assert "train and promote a model first" in result.output
    result = runner.invoke(app, ["report", "--version", "4", "--out", str(tmp_path / "r")])
    assert result.exit_code == 3 and "does not exist" in result.output


def test_scoring_with_a_planted_pickle_exits_3_and_never_runs_it(tmp_path, monkeypatch):
    _store(tmp_path, monkeypatch)
    data = tmp_path / "data"
    data.mkdir()
    for name, df in f.tables().items():
        write_parquet(df, data / f"{name}.parquet")
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n"
        "    python_model: python_model.pkl\n"
    )
    marker = tmp_path / "pwned"
    (model / "python_model.pkl").write_bytes(pickle.dumps(_CreatesFile(marker)))
    result = runner.invoke(
        app,
        [
            "score",
            "--data",
            str(data),
            "--as-of",
            "2024-03-15",
            "--out",
            str(tmp_path / "out"),
            "--model-uri",
            str(model),
            "--no-mlflow",
            "--allow-stale",
        ],
    )
    assert result.exit_code == 3, result.output
    assert "pickle-like file(s) (python_model.pkl)" in result.output
    assert not marker.exists()

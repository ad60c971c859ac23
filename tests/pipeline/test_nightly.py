"""The nightly job as an operator runs it: exit codes through bin/score and make, dates, logs.

No model is trained here: every case fails (or is refused) before a model is
needed, so the module stays fast. Scoring end to end is in test_score.py.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline import cli
from pipeline.io import write_parquet
from pipeline.simulator import simulate_portfolio, write_portfolio

ROOT = Path(__file__).resolve().parents[2]
ISO_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z ")
runner = CliRunner()
# The simulated export runs from 2024-01-01 for 12 months: its last events are in December 2024.
GOOD_AS_OF = "2024-12-31"


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A small simulated export in a folder whose name has a space (as real shares do)."""
    data = tmp_path_factory.mktemp("nightly") / "export with space"
    write_portfolio(simulate_portfolio(300, 12, seed=3, start="2024-01-01"), data)
    return data


def _score(data, out, *extra: str, as_of: str = GOOD_AS_OF, env: dict | None = None):
    args = ["score", "--data", str(data), "--as-of", as_of, "--out", str(out), *extra]
    return runner.invoke(cli.app, args, env=env)


# A model URI that is a plain path: no MLflow store is opened before the date is checked.
NO_STORE = ("--no-mlflow", "--model-uri", "/nonexistent/model")


def test_as_of_long_after_the_export_is_refused(export, tmp_path):
    result = _score(export, tmp_path / "out", *NO_STORE, as_of="2030-01-01")
    assert result.exit_code == 2, result.output
    assert "days after the export's latest event" in result.output
    assert "--allow-stale" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out" / "as_of=2030-01-01").exists()


def test_as_of_before_the_first_installment_is_refused(export, tmp_path):
    result = _score(export, tmp_path / "out", *NO_STORE, as_of="2023-06-30")
    assert result.exit_code == 2, result.output
    assert "before the export's first installment" in result.output


def test_allow_stale_lets_a_backfill_past_the_date_check(export, tmp_path):
    result = _score(export, tmp_path / "out", *NO_STORE, "--allow-stale", as_of="2030-01-01")
    # Past the date check, the run stops at the (missing) model: exit 3, not 2.
    assert result.exit_code == 3, result.output
    assert "latest event" not in result.output


def test_the_allowed_gap_is_the_policy_setting(export, tmp_path):
    from importlib import resources

    text = resources.files("pipeline").joinpath("default_policy.yaml").read_text()
    policy = tmp_path / "policy.yaml"
    policy.write_text(text + "\nmax_days_after_export: 400\n")
    result = _score(
        export, tmp_path / "out", *NO_STORE, "--policy", str(policy), as_of="2025-12-31"
    )
    assert result.exit_code == 3, result.output  # accepted date: stops at the model


def test_an_empty_export_is_refused_with_a_clear_message(export, tmp_path):
    data = tmp_path / "empty"
    shutil.copytree(export, data)
    for path in data.glob("*.parquet"):
        write_parquet(pd.read_parquet(path).iloc[:0], path)
    result = _score(data, tmp_path / "out", *NO_STORE)
    assert result.exit_code == 2, result.output
    assert "no installment" in result.output and "0.00%" not in result.output


@pytest.mark.parametrize("fault", ["corrupt", "directory", "missing_folder", "locked"])
def test_store_faults_exit_4_with_one_line(export, tmp_path, fault):
    db = tmp_path / "mlflow.db"
    if fault == "corrupt":
        db.write_bytes(b"not a database " * 100)
    elif fault == "directory":
        db.mkdir()
    elif fault == "missing_folder":
        db = tmp_path / "no such folder" / "mlflow.db"
    holder = None
    if fault == "locked":
        sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.commit()
        holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{db}", "PROPENSITY_STORE_RETRY_SECONDS": "0.3"}
    try:
        result = _score(export, tmp_path / "out", env=env)
    finally:
        if holder is not None:
            holder.close()
    assert result.exit_code == 4, result.output
    errors = [line for line in result.output.splitlines() if " error: " in line]
    assert len(errors) == 1 and f"model store sqlite:///{db} unavailable" in errors[0]
    assert "Traceback" not in result.output
    assert not db.is_file() or fault != "missing_folder"


def test_logs_carry_iso_time_and_hide_third_party_warnings(tmp_path, monkeypatch, capsys):
    import mlflow  # noqa: F401 - imported first, MLflow installs its own stderr handlers

    debug = tmp_path / "debug.log"
    monkeypatch.setenv(cli.DEBUG_LOG_ENV, str(debug))
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    others = [logging.getLogger(n) for n in ("mlflow", "alembic", "huey", "sqlalchemy.engine")]
    saved_others = [(lg.handlers[:], lg.propagate, lg.level) for lg in others]
    try:
        cli._setup_logging()
        logging.getLogger("pipeline.score").info("stage read rows_out=10")
        logging.getLogger("mlflow.store").warning("third-party chatter")
        logging.getLogger("alembic.runtime").error("third-party failure")
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers, root.level = saved
        for lg, (handlers, propagate, level) in zip(others, saved_others, strict=True):
            lg.handlers, lg.propagate, lg.level = handlers, propagate, level
        logging.captureWarnings(False)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "INFO pipeline.score: stage read rows_out=10",
        "ERROR alembic.runtime: third-party failure",
    ]
    assert all(ISO_LINE.match(line) for line in lines)
    assert "third-party chatter" in debug.read_text()


def test_error_lines_escape_control_characters(tmp_path):
    result = runner.invoke(
        cli.app, ["score", "--data", str(tmp_path / "a\nb"), "--as-of", "2025-13-01", "--out", "x"]
    )
    assert result.exit_code == 2
    assert len([line for line in result.output.splitlines() if line]) == 1
    assert ISO_LINE.match(result.output)


# ------------------------------------------------------------- the nightly entries


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PROPENSITY_STORE_RETRY_SECONDS": "0.3", **env}
    return subprocess.run(args, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=300)


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def test_bin_score_keeps_the_cli_exit_code(export, tmp_path):
    corrupt = tmp_path / "bad.db"
    corrupt.write_bytes(b"not a database " * 100)
    result = _run(
        ["bin/score", "--data", str(export), "--as-of", GOOD_AS_OF, "--out", str(tmp_path)],
        MLFLOW_TRACKING_URI=f"sqlite:///{corrupt}",
    )
    assert result.returncode == 4, result.stderr
    assert "cannot be read as a SQLite database" in result.stderr


@needs_make
def test_make_score_quotes_paths_and_reports_the_cli_code(export, tmp_path):
    result = _run(
        [
            "make",
            "--no-print-directory",
            "score",
            f"DATA={export}",
            f"OUT={tmp_path / 'out dir'}",
            "AS_OF=2030-01-01",
            "MODEL_URI=/nonexistent/model",
            "NO_MLFLOW=1",
        ]
    )
    # make itself ends any failure with 2; its last line names the CLI's own code.
    assert result.returncode == 2, result.stderr
    assert "days after the export's latest event" in result.stderr  # the space survived
    assert "propensity score exited with code 2" in result.stderr


@needs_make
def test_make_score_never_resyncs_an_existing_venv():
    # -W pretends uv.lock just changed: score must still not run `uv sync` (network).
    result = _run(["make", "-n", "-W", "uv.lock", "-W", "pyproject.toml", "score"])
    assert result.returncode == 0, result.stderr
    assert "sync" not in result.stdout and "bin/score" in result.stdout


@needs_make
def test_make_score_passes_every_option_quoted():
    result = _run(
        [
            "make",
            "-n",
            "score",
            "POLICY=my policy's.yaml",
            "WAIT=30",
            "MODEL_URI=models:/repayment-propensity/7",
            "NO_MLFLOW=1",
            "ALLOW_STALE=yes",
        ]
    )
    assert result.returncode == 0, result.stderr
    for option in (
        "--policy 'my policy'\\''s.yaml'",
        "--wait '30'",
        "--model-uri 'models:/repayment-propensity/7'",
        "--no-mlflow",
        "--allow-stale",
    ):
        assert option in result.stdout, option
    off = _run(["make", "-n", "score", "NO_MLFLOW=0", "ALLOW_STALE=no"])
    assert "--no-mlflow" not in off.stdout and "--allow-stale" not in off.stdout

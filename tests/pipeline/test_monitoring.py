"""End to end: the nightly drift alarm and `propensity recalibrate` on a registered model.

A model is trained on a small simulated portfolio (temporary sqlite MLflow
store). Scoring on a date inside its own test window raises no alarm; scoring
after a planted shift (the debtors stop paying for a month) does. A
recalibration registers a new version with the same trees.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.io import read_tables, write_parquet
from pipeline.jobs import portfolio_or_simulate
from pipeline.score import run_scoring

AS_OF = pd.Timestamp("2025-06-30")
runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A simulated portfolio and its champion in a temporary MLflow store."""
    from models import tracking
    from pipeline.jobs import train_job

    root = tmp_path_factory.mktemp("monitoring")
    data = root / "data"
    shutil.copytree(portfolio_or_simulate(None, 2500, 18, seed=23), data)
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mp.chdir(root)
    job = train_job(data, AS_OF, months=9, horizon_days=30)
    tracking.client().set_registered_model_alias("repayment-propensity", "champion", "1")
    yield {"root": root, "data": data, "job": job}
    mp.undo()


def _scoring_run(world, data, as_of, out):
    from models import tracking

    outcome = run_scoring(data, as_of, out)
    return tracking.client().get_run(outcome.manifest["mlflow_run_id"])


def test_no_alarm_on_a_date_inside_the_models_test_window(world, tmp_path):
    test_months = world["job"].result.split.months["test"]
    as_of = pd.Timestamp(test_months[-1])  # scored with the test month before it labelled
    run = _scoring_run(world, world["data"], as_of, tmp_path)
    assert run.data.tags["drift_alert"] == "false", run.data.tags["drift_reasons"]
    # The labelled month is the first test month: the scorer's calibration in
    # the large of it is the one the training run measured.
    by_month = world["job"].result.calibration_by_month["willingness_test"].iloc[0]
    assert by_month["month"] == str(test_months[0].date())
    assert run.data.metrics["citl_willingness_rows"] == by_month["rows"]
    assert run.data.metrics["citl_willingness_over_prediction"] == pytest.approx(
        by_month["over_prediction"]
    )
    # Feature PSIs are still logged, for diagnosis.
    assert "psi_dpd" in run.data.metrics


def test_alarm_on_a_planted_shift(world, tmp_path):
    # Nobody pays in the last month before the scoring date: the labelled
    # month's payment rate collapses and the scores move.
    tables = read_tables(world["data"]).tables
    data = tmp_path / "data"
    shutil.copytree(world["data"], data)
    payments = tables["payments"]
    paid_at = pd.to_datetime(payments["paid_at"], utc=True).dt.tz_localize(None)
    kept = payments.loc[paid_at < AS_OF - pd.Timedelta(days=30)]
    for stale in data.glob("payments*"):
        stale.unlink() if stale.is_file() else shutil.rmtree(stale)
    write_parquet(kept, data / "payments.parquet")
    run = _scoring_run(world, data, AS_OF, tmp_path / "out")
    assert run.data.tags["drift_alert"] == "true"
    reasons = run.data.tags["drift_reasons"]
    assert "willingness calibration in the large" in reasons
    assert run.data.metrics["citl_willingness_over_prediction"] > 0.05


def test_cli_recalibrate_registers_a_version_with_the_same_trees(world, tmp_path):
    from models import tracking

    args = ["recalibrate", "--data", str(world["data"]), "--as-of", "2025-06-30"]
    # The default settings refuse a month this small: exit 1, one line.
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "fewer than 200" in result.output
    assert "Traceback" not in result.output
    config = tmp_path / "small_book.yaml"
    config.write_text(
        "calibration:\n  recalibration_min_rows: 100\ngate:\n  max_ece: 0.2\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "Recalibration on the snapshots of 2025-05-31" in result.output
    info = tracking.version_info()  # the challenger: the new version
    assert info["version"] == "2" and info["tags"]["recalibrated_from"] == "1"
    assert info["tags"]["recalibration_month"] == "2025-05-31"
    old = tracking.load_model("models:/repayment-propensity/1")
    new = tracking.load_model("models:/repayment-propensity/2")
    for head in ("willingness", "ability"):
        assert new.boosters[head].model_to_string() == old.boosters[head].model_to_string()
    assert new.metadata["recalibrated_from"] == "1"
    assert tracking.alias_version("champion") == "1"  # promotion is a separate decision
    # No such version: exit 3 with one line, no traceback.
    result = runner.invoke(app, [*args, "--version", "99"])
    assert result.exit_code == 3 and "Traceback" not in result.output

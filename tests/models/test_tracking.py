"""End to end with a temporary SQLite MLflow store: log, register, reload, promote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from filelock import FileLock

from models import tracking
from models.config import config_from_dict
from models.synthetic import make_training_set
from models.training import train

CONFIG = config_from_dict({"lightgbm": {"num_threads": 1}, "gate": {"max_ece": 0.1}})


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return tmp_path


def test_uri_helpers():
    assert tracking.sqlite_path("sqlite:////tmp/x/mlflow.db") == Path("/tmp/x/mlflow.db")
    assert tracking.sqlite_path("http://mlflow:5000") is None
    assert tracking.artifact_location("sqlite:////tmp/x/mlflow.db") == "file:///tmp/x/mlartifacts"
    assert tracking.artifact_location("postgresql://db/mlflow") is None


def test_default_uri_is_sqlite_in_the_working_folder(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri() == "sqlite:///mlflow.db"


def test_the_write_lock_serialises_writers(store):
    lock_file = store / "mlflow.db.lock"
    with tracking.tracking_lock():
        assert lock_file.exists()
        with pytest.raises(
            tracking.StoreUnavailableError, match="another job has held the MLflow store lock"
        ):
            with tracking.tracking_lock(timeout=0.1):
                pass
    with FileLock(str(lock_file), timeout=0.1):  # released after the block
        pass


def test_locked_database_is_retried(monkeypatch):
    monkeypatch.setenv("PROPENSITY_STORE_RETRY_SECONDS", "2")
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "done"

    assert tracking.with_retry(flaky) == "done" and len(calls) == 3
    with pytest.raises(ValueError):
        tracking.with_retry(lambda: (_ for _ in ()).throw(ValueError("other")))


def test_train_log_register_reload_and_promote(store):
    with pytest.raises(tracking.ModelNotFoundError, match="repayment-propensity"):
        tracking.load_model()  # nothing registered yet
    data = make_training_set(n_accounts=3000, n_months=8, seed=0)
    result = train(data.frame, CONFIG, data.spec)
    run_id, version = tracking.log_training_run(
        result, {"data": "synthetic"}, experiment="e2e", training_set=data.frame
    )
    assert version == "1"
    assert tracking.alias_version("challenger") == "1"
    assert tracking.alias_version("champion") is None

    # The run holds everything the reviewers need.
    client = tracking.client()
    run = client.get_run(run_id)
    assert run.data.params["lightgbm.num_threads"] == "1"
    assert run.data.params["calibration.method"] == "isotonic"
    for name in (
        "willingness_test_auc",
        "ability_validation_ks",
        "rows_test",
        "baseline_scorecard_willingness_test_auc",
        "paid_any_rate_train",
    ):
        assert name in run.data.metrics
    assert run.data.metrics["willingness_test_auc"] == result.metrics["willingness"]["test"]["auc"]
    assert run.data.tags["data.data"] == "synthetic"
    contexts = sorted(
        tag.value
        for d in run.inputs.dataset_inputs
        for tag in d.tags
        if tag.key == "mlflow.data.context"
    )
    assert contexts == ["test", "train", "training_set", "validation"]
    artifacts = _artifact_paths(client, run_id)
    for path in (
        "report/model_report.html",
        "plots/roc_willingness_test.png",
        "plots/shap_ability.png",
        "tables/psi.json",
        "tables/deciles_ability_test.csv",
        "tables/model_vs_baselines.json",
        "config.yaml",
        "spec.json",
    ):
        assert path in artifacts, path
    assert any((store / "mlartifacts").rglob("model_report.html"))

    # Loading back from the registry predicts exactly what the model in memory predicts.
    test = result.split.test
    expected = result.model.predict(test)
    loaded = tracking.load_model("models:/repayment-propensity@challenger")
    pd.testing.assert_frame_equal(loaded.predict(test), expected, check_exact=True)
    assert loaded.version == "1"
    pyfunc = tracking.load_pyfunc("models:/repayment-propensity@challenger")
    via_pyfunc = pyfunc.predict(result.model.signature_frame(test))
    pd.testing.assert_frame_equal(
        via_pyfunc.reset_index(drop=True), expected.reset_index(drop=True), check_exact=True
    )
    assert tracking.resolve_version("models:/repayment-propensity@challenger") == "1"

    # No champion yet: the challenger must beat both baselines.
    decision = tracking.promote(eval_frame=test, config=CONFIG)
    assert decision.accepted, decision.summary()
    assert decision.champion_version is None
    assert tracking.alias_version("champion") == "1"
    tags = client.get_model_version("repayment-propensity", "1").tags
    assert tags["promotion.decision"] == "accepted" and tags["promotion.against"] == "baselines"

    # A challenger that learnt nothing is refused and the champion stays.
    rng = np.random.default_rng(0)
    noisy = data.frame.copy()
    order = rng.permutation(len(noisy))
    noisy[["paid_any", "coverage"]] = noisy[["paid_any", "coverage"]].to_numpy()[order]
    noisy["paid_any"] = noisy["paid_any"].astype("int64")
    weak = train(noisy, CONFIG, data.spec)
    _, weak_version = tracking.log_training_run(weak, experiment="e2e")
    assert weak_version == "2" and tracking.alias_version("challenger") == "2"
    refused = tracking.promote(eval_frame=test, config=CONFIG)
    assert not refused.accepted
    assert "REFUSED" in refused.summary() and "champion v1" in refused.summary()
    assert tracking.alias_version("champion") == "1"
    tags = client.get_model_version("repayment-propensity", "2").tags
    assert tags["promotion.decision"] == "refused"
    assert "willingness AUC vs champion" in tags["promotion.failed_checks"]

    # Promoting the champion itself is a no-op, reported as such.
    same = tracking.promote(version=1, eval_frame=test, config=CONFIG)
    assert not same.accepted and "already the champion" in same.note

    # A nightly scoring run logs its counts, score distribution and drift.
    champion = tracking.load_model()
    assert champion.version == "1"
    preds = champion.predict(test).reset_index(drop=True)
    scores = preds.assign(
        account_id=test["account_id"].to_numpy(),
        risk_tier=np.where(preds["p_willingness"] > 0.5, "self_cure", "intensive"),
        expected_recovery=test["arrears"].to_numpy()
        * preds["p_willingness"]
        * preds["expected_share"],
    )
    score_run = tracking.log_scoring_run(
        scores, test, champion, {"as_of": "2024-09-30", "policy_version": "p1"}
    )
    logged = client.get_run(score_run)
    assert logged.data.tags["model_version"] == "1" and logged.data.tags["as_of"] == "2024-09-30"
    n_tiers = (
        logged.data.metrics["count_risk_tier_intensive"]
        + logged.data.metrics["count_risk_tier_self_cure"]
    )
    assert n_tiers == len(test)
    assert logged.data.metrics["psi_max"] >= 0 and "psi_dpd" in logged.data.metrics
    score_artifacts = _artifact_paths(client, score_run)
    assert {"tables/drift.json", "manifest.json", "plots/score_distribution.png"} <= set(
        score_artifacts
    )


def _artifact_paths(client, run_id, path=None):
    out = []
    for item in client.list_artifacts(run_id, path):
        out.extend(_artifact_paths(client, run_id, item.path) if item.is_dir else [item.path])
    return out

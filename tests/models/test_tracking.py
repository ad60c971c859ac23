"""End to end with a temporary SQLite MLflow store: log, register, reload, promote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from filelock import FileLock

from models import registry, tracking
from models.config import config_from_dict
from models.effects import assess_effects
from models.synthetic import make_training_set
from models.training import train
from models.uplift import planted_randomised_data

CONFIG = config_from_dict({"lightgbm": {"num_threads": 1}, "gate": {"max_ece": 0.1}})
# CONFIG's calibration bound is looser than the packaged one: promotions record why.
APPROVAL = registry.Approval("A. Reviewer", "monthly retrain", override_reason="tiny test data")


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
    X, t, y, _ = planted_randomised_data(2000, 0, ("none", "high"))
    result.effects = assess_effects(X, t, y, ("none", "high"), "planted", n_boot=20)
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
        "uplift/uplift_model.json",
        "uplift/qini.csv",
        "uplift/qini_curves.csv",
        "uplift/qini_high.png",
    ):
        assert path in artifacts, path
    assert any((store / "mlartifacts").rglob("model_report.html"))
    # The treatment-effect model rides in the heads' run, named by the version's tag.
    high = result.effects.table.iloc[0]
    assert run.data.metrics["uplift_qini_high"] == pytest.approx(high["qini_coefficient"])
    assert run.data.tags["uplift_model"] == "uplift/uplift_model.json"
    assert client.get_model_version("repayment-propensity", "1").tags["uplift_model"] == (
        "uplift/uplift_model.json"
    )
    uplift = tracking.load_uplift("1")
    pd.testing.assert_frame_equal(uplift.effects(X), result.effects.model.effects(X))
    report_html = (next((store / "mlartifacts").rglob("model_report.html"))).read_text()
    assert "14. Treatment effects" in report_html and "high vs none: the model" in report_html

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
    decision = registry.promote(eval_frame=test, config=CONFIG, approval=APPROVAL)
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
    assert tracking.load_uplift("2") is None  # trained without randomised data
    weak_tags = client.get_model_version("repayment-propensity", "2").tags
    assert weak_tags["uplift_model"] == "none: no randomised data given"
    refused = registry.promote(eval_frame=test, config=CONFIG, approval=APPROVAL)
    assert not refused.accepted
    assert "REFUSED" in refused.summary() and "champion v1" in refused.summary()
    assert tracking.alias_version("champion") == "1"
    tags = client.get_model_version("repayment-propensity", "2").tags
    assert tags["promotion.decision"] == "refused"
    assert "willingness AUC vs champion" in tags["promotion.failed_checks"]

    # Promoting the champion itself is a no-op, reported as such.
    same = registry.promote(version=1, eval_frame=test, config=CONFIG, approval=APPROVAL)
    assert not same.accepted and "already the champion" in same.note
    _check_audit_trail(client, result, test)

    # A nightly scoring run logs its counts, score distribution and drift.
    champion = tracking.load_model()
    assert champion.version == "1"  # rolled back to v1 by _check_audit_trail
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


def _check_audit_trail(client, result, test):
    """Identity, descriptions, approver and previous champion, the promotion log, rollback."""
    mv = client.get_model_version("repayment-propensity", "1")
    assert mv.tags["promotion.approver"] == "A. Reviewer"
    assert mv.tags["promotion.reason"] == "monthly retrain"
    assert mv.tags["promotion.previous_champion"] == "none"
    assert mv.tags["promotion.override_reason"] == "tiny test data"
    assert "gate.max_ece 0.1 > 0.03" in mv.tags["promotion.loosened_gate"]
    assert mv.description.startswith("Willingness head: out-of-time AUC")
    run = client.get_run(mv.run_id)
    assert run.info.run_name.startswith("train ")
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"]
    report = client.download_artifacts(mv.run_id, "report/model_report.html")
    text = Path(report).read_text()
    assert "Repayment propensity model report, version 1" in text and mv.run_id in text

    # No approver, or a loosened gate without a reason: refused before anything moves.
    with pytest.raises(registry.PromotionRefused, match="approver"):
        registry.Approval("  ", "why")
    no_reason = registry.Approval("A. Reviewer", "monthly retrain")
    with pytest.raises(registry.PromotionRefused, match="looser than the packaged defaults"):
        registry.promote(eval_frame=test, config=CONFIG, approval=no_reason)

    # A third version as good as v1 is promoted over it, recording v1 as the previous champion.
    _, v3 = tracking.log_training_run(result, experiment="e2e")
    decision = registry.promote(v3, eval_frame=test, config=CONFIG, approval=APPROVAL)
    assert decision.accepted and decision.champion_version == "1", decision.summary()
    tags = client.get_model_version("repayment-propensity", v3).tags
    assert tags["promotion.previous_champion"] == "v1" and tracking.alias_version("champion") == v3

    # Going back is a rollback, never a promotion; only to a version once promoted.
    with pytest.raises(registry.PromotionRefused, match="rollback --to 1"):
        registry.promote(1, eval_frame=test, config=CONFIG, approval=APPROVAL)
    with pytest.raises(registry.PromotionRefused, match="never promoted"):
        registry.rollback(2, approval=APPROVAL)
    done = registry.rollback(1, approval=registry.Approval("B. Head", "v3 misbehaves"))
    assert done["from"] == f"v{v3}" and done["to"] == "v1"
    assert tracking.alias_version("champion") == "1"
    tags = client.get_model_version("repayment-propensity", "1").tags
    assert tags["rollback.approver"] == "B. Head" and tags["rollback.from"] == f"v{v3}"
    events = registry.promotion_log()
    assert events["event"].tolist() == [
        "rollback to v1",
        f"promote v{v3}",
        "promote v2",
        "promote v1",
    ]
    assert events.loc[0, "approver"] == "B. Head" and events.loc[0, "reason"] == "v3 misbehaves"


def _artifact_paths(client, run_id, path=None):
    out = []
    for item in client.list_artifacts(run_id, path):
        out.extend(_artifact_paths(client, run_id, item.path) if item.is_dir else [item.path])
    return out

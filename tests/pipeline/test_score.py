"""End to end: simulate, train, register, then the nightly scorer and its exit codes.

One small portfolio and one trained model (temporary sqlite MLflow store) are
shared by the module; each test scores into its own output folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.build import build_features
from pipeline.cli import app
from pipeline.io import read_tables, write_parquet
from pipeline.score import SCORE_COLUMNS, run_scoring
from pipeline.simulator import simulate_portfolio, write_portfolio

AS_OF = pd.Timestamp("2025-06-30")
CONTRACT_DOC = Path(__file__).resolve().parents[3] / "shared" / "DATA_CONTRACT.md"


def contract_score_columns() -> list[str]:
    """The scores.parquet columns as DATA_CONTRACT.md lists them, in its order."""
    if not CONTRACT_DOC.exists():
        pytest.skip("../shared/DATA_CONTRACT.md is not beside this checkout")
    section = (
        CONTRACT_DOC.read_text(encoding="utf-8").split("`scores.parquet`")[1].split("`rejects")[0]
    )
    cells = [
        line.split("|")[1].strip()
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith(("| column", "| ---"))
    ]
    return [name.strip() for cell in cells for name in cell.split(",")]


runner = CliRunner()


def score_cli(data, out, *extra: str):
    """Run ``propensity score`` for AS_OF and return the CliRunner result."""
    args = ["score", "--data", str(data), "--as-of", "2025-06-30", "--out", str(out), *extra]
    return runner.invoke(app, args)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A simulated portfolio and a registered model in a temporary MLflow store."""
    from models import tracking
    from pipeline.jobs import train_job

    root = tmp_path_factory.mktemp("world")
    data = root / "data"
    portfolio = simulate_portfolio(2500, 18, seed=5, start="2024-01-01")
    write_portfolio(portfolio, data)
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mp.chdir(root)
    job = train_job(data, AS_OF, months=9, horizon_days=30)
    uri = f"models:/repayment-propensity/{job.model_version}"
    client = tracking.client()
    client.set_registered_model_alias("repayment-propensity", "champion", job.model_version)
    yield {"root": root, "data": data, "uri": uri, "portfolio": portfolio, "job": job}
    mp.undo()


@pytest.fixture(scope="module")
def published(world):
    out = world["root"] / "scores"
    outcome = run_scoring(world["data"], AS_OF, out)
    return outcome


def test_publishes_the_contract_outputs(world, published):
    folder = published.output_dir
    assert folder == world["root"] / "scores" / "as_of=2025-06-30"
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json",
        "rejects.parquet",
        "scores.parquet",
    ]
    scores = pd.read_parquet(folder / "scores.parquet")
    assert list(scores.columns) == list(SCORE_COLUMNS)
    contract = contract_score_columns()
    assert list(scores.columns[: len(contract)]) == contract
    assert scores["account_id"].is_unique
    # Exactly the accounts overdue at D, with the ledger's DPD and arrears.
    tables = read_tables(world["data"]).tables
    feats = build_features(tables, AS_OF)
    assert set(scores["account_id"]) == set(feats["account_id"])
    merged = scores.merge(feats[["account_id", "dpd", "arrears"]], on="account_id")
    np.testing.assert_array_equal(merged["dpd_x"], merged["dpd_y"])
    np.testing.assert_allclose(merged["arrears_x"], merged["arrears_y"])
    assert (scores["arrears"] > 1.0).all()
    assert scores["p_willingness"].between(0, 1).all() and scores["p_ability"].between(0, 1).all()
    assert (scores["expected_recovery"] <= scores["arrears"] * scores["p_willingness"] + 1e-9).all()
    assert (scores["as_of_date"] == AS_OF.date()).all()
    assert scores["model_version"].eq(world["uri"].rsplit("/", 1)[1]).all()
    assert scores["policy_version"].str.fullmatch(r"[0-9a-f]{12}").all()
    assert scores["reason_codes"].str.contains("willingness: ").all()
    assert scores["reason_codes"].str.contains("ability: ").all()


def test_compliance_holds_on_every_row(published, world):
    scores = published.scores
    accounts = world["portfolio"].tables["accounts"].set_index("account_id")
    flags = accounts.loc[scores["account_id"]]
    special = (
        flags[["deceased", "bankruptcy", "dispute_open", "cease_communication", "do_not_contact"]]
        .any(axis=1)
        .to_numpy()
    )
    assert special.any(), "the simulated portfolio should hold special statuses"
    sup = scores[special]
    assert sup["suppressed_reason"].notna().all()
    assert (sup["contact_intensity"] == "none").all()
    assert (sup[["max_calls_7d", "max_sms_7d"]] == 0).all().all()
    assert scores.loc[~special, "suppressed_reason"].isna().all()
    hardship = flags["hardship"].to_numpy()
    assert not scores.loc[hardship, "offer"].isin(["settlement", "legal_review"]).any()
    # Reg F (the default policy's profile): never more than 7 calls planned in 7 days.
    assert scores["max_calls_7d"].le(7).all()


def test_manifest_reconciles_every_input_account(world, published):
    manifest = json.loads((published.output_dir / "manifest.json").read_text())
    c = manifest["counts"]
    n_accounts = len(world["portfolio"].tables["accounts"])
    assert c["input_accounts"] == n_accounts
    assert c["scored"] + c["rejected"] + c["out_of_scope"] == n_accounts
    assert c["scored"] == len(published.scores)
    assert manifest["inputs"]["accounts"]["rows"] == n_accounts
    assert len(manifest["inputs"]["payments"]["sha256"]) == 64
    assert set(manifest["timings_seconds"]) >= {"read", "validate", "features", "predict", "write"}
    assert manifest["model_version"] and manifest["policy_version"]
    assert sum(manifest["outputs"]["per_tier"].values()) == c["scored"]


def test_control_group_is_logged_and_about_five_percent(published):
    scores = published.scores
    assert scores["control_probability"].eq(0.05).all()
    assert 0.0 < scores["control_group"].mean() < 0.15
    # Every row names its plan; control rows also carry the plan they would have had.
    assert scores["plan_id"].is_unique
    assert (scores["plan_id"] == "20250630-" + scores["account_id"]).all()
    control = scores[scores["control_group"]]
    assert control["treated_offer"].notna().all()
    assert (control["treated_max_calls_7d"] >= 0).all()
    treated = scores[~scores["control_group"] & scores["suppressed_reason"].isna()]
    assert (treated["treated_contact_intensity"] != "none").all()


def test_monitoring_run_logged(published):
    from models import tracking

    run_id = published.manifest["mlflow_run_id"]
    run = tracking.client().get_run(run_id)
    assert run.data.metrics["scored_accounts"] == len(published.scores)
    assert run.data.tags["drift_alert"] in ("true", "false")
    assert any(k.startswith("count_risk_tier_") for k in run.data.metrics)
    # The policy itself is logged, named by the version written in every row.
    version = published.manifest["policy_version"]
    path = tracking.client().download_artifacts(run_id, f"policy/policy_{version}.yaml")
    raw = Path(path).read_bytes()
    assert hashlib.sha256(raw).hexdigest()[:12] == version
    assert b"control_share" in raw


def test_rerun_replaces_and_is_deterministic(world, tmp_path):
    first = run_scoring(world["data"], AS_OF, tmp_path, log_to_mlflow=False)
    before = pd.read_parquet(first.output_dir / "scores.parquet")
    second = run_scoring(world["data"], AS_OF, tmp_path, log_to_mlflow=False)
    after = pd.read_parquet(second.output_dir / "scores.parquet")
    pd.testing.assert_frame_equal(before, after)
    assert [p.name for p in tmp_path.iterdir()] == ["as_of=2025-06-30"]


def test_interrupted_run_leaves_previous_output_intact(world, tmp_path, monkeypatch):
    first = run_scoring(world["data"], AS_OF, tmp_path, log_to_mlflow=False)
    before = (first.output_dir / "scores.parquet").read_bytes()
    import pipeline.publish as pub

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("operator pressed Ctrl-C while the manifest was written")

    monkeypatch.setattr(pub, "write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        run_scoring(world["data"], AS_OF, tmp_path, log_to_mlflow=False)
    assert (first.output_dir / "scores.parquet").read_bytes() == before
    assert (first.output_dir / "manifest.json").exists()
    monkeypatch.undo()
    # The next run cleans the half-written staging folder up.
    run_scoring(world["data"], AS_OF, tmp_path, log_to_mlflow=False)
    assert [p.name for p in tmp_path.iterdir()] == ["as_of=2025-06-30"]


def _copy_data(world, tmp_path):
    dst = tmp_path / "data"
    shutil.copytree(world["data"], dst)
    return dst


def test_few_rejects_are_listed_and_the_rest_published(world, tmp_path):
    data = _copy_data(world, tmp_path)
    payments = pd.read_parquet(data / "payments.parquet")
    payments.loc[0, "amount"] = -5.0
    write_parquet(payments, data / "payments.parquet")
    bad_account = payments.loc[0, "account_id"]
    outcome = run_scoring(data, AS_OF, tmp_path / "out", log_to_mlflow=False)
    rejects = pd.read_parquet(outcome.output_dir / "rejects.parquet")
    assert rejects[["table", "key", "account_id", "column"]].values.tolist() == [
        ["payments", payments.loc[0, "payment_id"], bad_account, "amount"]
    ]
    assert bad_account not in set(outcome.scores["account_id"])
    c = outcome.manifest["counts"]
    assert c["rejected"] == 1
    assert c["scored"] + c["rejected"] + c["out_of_scope"] == c["input_accounts"]


def test_exit_1_when_rejects_pass_the_limit(world, tmp_path):
    data = _copy_data(world, tmp_path)
    accounts = pd.read_parquet(data / "accounts.parquet")
    accounts.loc[accounts.index[:50], "principal"] = -1.0  # 2% of accounts
    write_parquet(accounts, data / "accounts.parquet")
    out = tmp_path / "out"
    result = score_cli(str(data), str(out), "--no-mlflow")
    assert result.exit_code == 1, result.output
    assert "above the policy's limit" in result.output
    assert not (out / "as_of=2025-06-30").exists()
    rejects = pd.read_parquet(out / "as_of=2025-06-30.rejects.parquet")
    assert rejects["account_id"].nunique() == 50
    manifest = json.loads((out / "as_of=2025-06-30.manifest.json").read_text())
    assert manifest["status"].startswith("failed")


def test_exit_2_when_a_table_is_missing(world, tmp_path):
    data = _copy_data(world, tmp_path)
    (data / "contacts.parquet").unlink()
    result = score_cli(str(data), str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "required table 'contacts' is missing" in result.output


def test_exit_2_when_the_policy_is_invalid(world, tmp_path):
    from importlib import resources

    text = resources.files("pipeline").joinpath("default_policy.yaml").read_text()
    bad = tmp_path / "policy.yaml"
    bad.write_text(text + "\nfavourite_colour: blue\n")
    result = score_cli(str(world["data"]), str(tmp_path / "o"), "--policy", str(bad))
    assert result.exit_code == 2
    assert "favourite_colour" in result.output


def test_exit_3_when_no_model_at_the_uri(world, tmp_path):
    result = score_cli(
        str(world["data"]), str(tmp_path / "o"), "--model-uri", "models:/repayment-propensity/99"
    )
    assert result.exit_code == 3, result.output
    assert "propensity train" in result.output
    assert not (tmp_path / "o" / "as_of=2025-06-30").exists()


def test_cli_score_prints_the_summary(world, tmp_path):
    result = score_cli(str(world["data"]), str(tmp_path), "--no-mlflow")
    assert result.exit_code == 0, result.output
    assert "accounts per tier:" in result.output
    assert "offer:" in result.output


def test_cli_report_copies_the_html_model_report(world, tmp_path):
    result = runner.invoke(app, ["report", "--version", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "model_report.html").read_text(encoding="utf-8")
    assert "Gate figures for promotion" in html
    assert "data:image/png;base64" in html and "http://" not in html


def test_cli_promote_exit_codes(world):
    # The champion itself: nothing to do, not a failure.
    result = runner.invoke(app, ["promote", "--version", "1"])
    assert result.exit_code == 0, result.output
    assert "already the champion" in result.output
    result = runner.invoke(app, ["promote", "--version", "99"])
    assert result.exit_code == 3
    assert "no version 99" in result.output


def test_truncated_accounts_export_fails_instead_of_publishing(world, tmp_path):
    """Orphan rows' accounts count as rejected: an empty accounts table cannot pass."""
    data = _copy_data(world, tmp_path)
    accounts = pd.read_parquet(data / "accounts.parquet")
    out = tmp_path / "out"
    good = run_scoring(data, AS_OF, out, log_to_mlflow=False)
    write_parquet(accounts.iloc[:0], data / "accounts.parquet")
    result = score_cli(str(data), str(out), "--no-mlflow")
    assert result.exit_code == 1, result.output
    manifest = json.loads((out / "as_of=2025-06-30.manifest.json").read_text())
    assert manifest["validation"]["orphan_accounts"] == len(accounts)
    assert manifest["previous_run_still_published"] is True
    assert (good.output_dir / "scores.parquet").exists()  # the last good run stays
    # A successful rerun removes the failure files that no longer apply.
    write_parquet(accounts, data / "accounts.parquet")
    run_scoring(data, AS_OF, out, log_to_mlflow=False)
    assert sorted(p.name for p in out.iterdir()) == ["as_of=2025-06-30"]


@pytest.mark.parametrize("bad", ["2025", "2025-6-30", "30/06/2025", "2025-02-30"])
def test_as_of_must_be_a_full_iso_date(world, tmp_path, bad):
    result = runner.invoke(
        app, ["score", "--data", str(world["data"]), "--as-of", bad, "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "--as-of" in result.output


def test_output_path_that_is_a_file_exits_2(world, tmp_path):
    target = tmp_path / "not_a_folder"
    target.write_text("x")
    result = score_cli(str(world["data"]), str(target), "--no-mlflow")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output

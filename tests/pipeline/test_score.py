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
from pipeline.policy import load_policy
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
    # The approach per debtor: a policy template for every contactable account, none when suppressed.
    templates = load_policy().approaches.templates
    contactable = scores["suppressed_reason"].isna()
    assert scores.loc[contactable, "approach"].isin(list(templates)).all()
    assert scores.loc[~contactable, "approach"].isna().all()
    assert (
        scores.loc[contactable & scores["approach"].ne("standard_reminder"), "approach_reasons"]
        .ne("")
        .all()
    )


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
    # Beyond the flags, only a dispute told to a collector (in the log) suppresses.
    by_log = scores.loc[~special & scores["suppressed_reason"].notna().to_numpy()]
    assert (by_log["suppressed_reason"] == "dispute_open").all()
    assert by_log["limit_reasons"].str.contains("dispute_log").all()
    assert scores["jurisdiction"].eq(flags["jurisdiction"].to_numpy()).all()
    cn = scores["jurisdiction"].eq("cn_2025")
    assert cn.any() and not scores.loc[cn, "third_party_contact_allowed"].any()
    assert (scores["max_calls_today"] <= scores["max_calls_7d"]).all()
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
    html = (tmp_path / "model_report_v1.html").read_text(encoding="utf-8")  # one file per version
    assert "Gate figures for promotion" in html and "model report, version 1" in html
    assert "data:image/png;base64" in html and "http://" not in html


def test_cli_promote_exit_codes(world):
    approval = ["--approver", "test reviewer", "--note", "exit codes"]
    # The champion itself: nothing to do, not a failure.
    result = runner.invoke(app, ["promote", "--version", "1", *approval])
    assert result.exit_code == 0, result.output
    assert "already the champion" in result.output
    result = runner.invoke(app, ["promote", "--version", "99", *approval])
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


# --- lawful plans from hand-built histories, scored end to end ---------------------

#: (account_id, customer_id, timezone, jurisdiction or None) of the hand-built book.
BOOK = [
    ("G1", "CG1", "Pacific/Guam", "us_reg_f"),  # 7 calls on local D-6
    ("G2", "CG2", "Pacific/Guam", "us_reg_f"),  # conversation at local D-6 09:30
    ("N1", "CN1", "Asia/Shanghai", "cn_2025"),  # one person, two accounts,
    ("N2", "CN1", "Asia/Shanghai", "cn_2025"),  # 3 + 3 unanswered attempts today
    ("P1", "CP1", "America/New_York", None),  # promise yesterday for D+5 (default us_reg_f)
    ("S1", "CS1", "America/Chicago", "us_reg_f"),  # written dispute told yesterday
    ("L1", "CL1", "America/New_York", "us_reg_f"),  # 3 calls yesterday, 20 texts in 3 days
    ("U1", "CU1", "Europe/London", "uk_conc"),  # 21 calls in the last 7 days
    ("F1", "CF1", "Europe/London", "uk_conc"),  # no history at all
]


def _hand_built_tables() -> dict[str, pd.DataFrame]:
    import factories

    ids = [b[0] for b in BOOK]
    accounts = factories.accounts(
        len(BOOK),
        account_id=ids,
        customer_id=[b[1] for b in BOOK],
        timezone=[b[2] for b in BOOK],
        jurisdiction=pd.Series([b[3] for b in BOOK], dtype=object),
    )
    installments = factories.installments(ids, n=3)
    installments["due_date"] = pd.Series(
        list(pd.date_range("2025-04-01", periods=3, freq="MS")) * len(ids), dtype="datetime64[ns]"
    )
    payments = factories.payment_rows(("F1", "2025-05-10T10:00:00", 40.0))
    d = AS_OF.tz_localize("UTC")
    rows = []  # (account, UTC instant, channel, direction, outcome)
    rows += [("G1", d - pd.Timedelta("6D 8h30min"), "call", "outbound", "no_answer")] * 7
    rows += [
        ("G2", d - pd.Timedelta("7D") + pd.Timedelta("23h30min"), "call", "outbound", "right_party")
    ]
    rows += [("N1", d + pd.Timedelta(hours=h), "call", "outbound", "no_answer") for h in (1, 2, 3)]
    rows += [("N2", d + pd.Timedelta(hours=h), "call", "outbound", "busy") for h in (4, 5, 6)]
    rows += [("S1", d - pd.Timedelta(hours=6), "call", "inbound", "dispute")]
    rows += [("L1", d - pd.Timedelta(hours=8), "call", "outbound", "no_answer")] * 3
    rows += [
        ("L1", d - pd.Timedelta(days=k % 3, hours=5), "sms", "outbound", "delivered")
        for k in range(20)
    ]
    rows += [
        ("U1", d - pd.Timedelta(days=1 + k % 6, hours=9), "call", "outbound", "voicemail")
        for k in range(21)
    ]
    contacts = pd.DataFrame(
        {
            "contact_id": [f"K{i}" for i in range(len(rows) + 1)],
            "account_id": [r[0] for r in rows] + ["P1"],
            "contact_at": pd.Series([r[1] for r in rows] + [d - pd.Timedelta(hours=7)]).astype(
                "datetime64[ns, UTC]"
            ),
            "channel": [r[2] for r in rows] + ["call"],
            "direction": [r[3] for r in rows] + ["outbound"],
            "outcome": [r[4] for r in rows] + ["promise_to_pay"],
            "promised_amount": [None] * len(rows) + [200.0],
            "promised_date": factories.dates(*([None] * len(rows) + ["2025-07-05"])),
            "agent_id": [None] * (len(rows) + 1),
        }
    )
    return {
        "accounts": accounts,
        "installments": installments,
        "payments": payments,
        "contacts": contacts,
    }


@pytest.fixture(scope="module")
def hand_built(world, tmp_path_factory):
    """The hand-built book scored end to end under a policy whose every tier allows 6 calls, 4 texts."""
    import yaml

    root = tmp_path_factory.mktemp("hand_built")
    for name, table in _hand_built_tables().items():
        write_parquet(table, root / "data" / f"{name}.parquet")
    policy = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "pipeline" / "default_policy.yaml").read_text()
    )
    policy["control_share"] = 0.0
    for tier in policy["tiers"]:
        tier.update(contact_intensity="high", max_calls_7d=6, max_sms_7d=4)
    (root / "policy.yaml").write_text(yaml.safe_dump(policy))
    outcome = run_scoring(
        root / "data",
        AS_OF,
        root / "out",
        model_uri=world["uri"],
        policy_path=root / "policy.yaml",
        log_to_mlflow=False,
    )
    return outcome.scores.set_index("account_id")


def test_hand_built_book_is_scored_whole_under_each_accounts_jurisdiction(hand_built):
    s = hand_built
    assert sorted(s.index) == sorted(b[0] for b in BOOK)
    assert s["jurisdiction"].to_dict() == {b[0]: b[3] or "us_reg_f" for b in BOOK}
    assert not s.loc[["N1", "N2"], "third_party_contact_allowed"].any()
    assert s.loc[["G1", "U1", "F1"], "third_party_contact_allowed"].all()
    assert s.loc["N1", "contact_window"] == "08:00-21:00"  # the policy's hours, within cn's
    # No history: the tier's caps, cut by nothing but (maybe) forbearance for low ability.
    assert s.loc["F1", "max_calls_7d"] == 6
    assert s.loc["F1", "limit_reasons"] in ("", "uk_conc_low_ability")


def test_guam_calls_count_in_local_days(hand_built):
    g1, g2 = hand_built.loc["G1"], hand_built.loc["G2"]
    assert g1["max_calls_7d"] == 0 and "reg_f_7in7" in g1["limit_reasons"]
    assert g2["max_calls_today"] == 0 and "reg_f_conversation_block" in g2["limit_reasons"]
    assert g2["contact_hold_until"] == (AS_OF + pd.Timedelta(days=1)).date()


def test_cn_daily_limit_is_per_person_across_accounts(hand_built):
    n = hand_built.loc[["N1", "N2"]]
    assert n["max_calls_today"].tolist() == [0, 0]
    assert n["limit_reasons"].str.contains("cn_daily_attempts").all()
    assert n["max_calls_day"].sum() <= 6


def test_open_promise_holds_contact_until_its_date_plus_grace(hand_built):
    p1 = hand_built.loc["P1"]
    assert p1["contact_hold_until"] == pd.Timestamp("2025-07-09").date()
    assert (p1[["max_calls_7d", "max_sms_7d", "max_calls_today"]] == 0).all()
    assert "promise_hold" in p1["limit_reasons"]


def test_dispute_in_the_log_suppresses_like_the_flag(hand_built):
    s1 = hand_built.loc["S1"]
    assert s1["suppressed_reason"] == "dispute_open" and s1["contact_intensity"] == "none"
    assert s1["offer"] == "none" and "dispute_log" in s1["limit_reasons"]


def test_policy_caps_count_the_log(hand_built):
    l1 = hand_built.loc["L1"]
    assert l1["max_calls_7d"] == 3 and l1["max_sms_7d"] == 0
    assert "policy_calls_7d" in l1["limit_reasons"] and "policy_sms_7d" in l1["limit_reasons"]
    u1 = hand_built.loc["U1"]
    assert u1["max_calls_7d"] == 0 and "uk_conc_7in7" in u1["limit_reasons"]


def test_value_mode_policy_plans_within_capacity(world):
    """A policy with value_allocation: intensity by value, within the team's capacity."""
    import yaml  # noqa: PLC0415

    from pipeline import policy as policy_module  # noqa: PLC0415

    data = yaml.safe_load(
        Path(policy_module.__file__).with_name("default_policy.yaml").read_text("utf-8")
    )
    from pipeline.value_mode import packaged_value_settings  # noqa: PLC0415

    data["value_allocation"] = {**packaged_value_settings(), "calls_per_day": 20, "sms_per_day": 40}
    policy_file = world["root"] / "value_policy.yaml"
    policy_file.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    outcome = run_scoring(
        world["data"], AS_OF, world["root"] / "value_scores", policy_path=policy_file,
        log_to_mlflow=False,
    )  # fmt: skip
    scores = outcome.scores
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert scores["max_calls_7d"].sum() <= 20 * 7
    assert scores["max_sms_7d"].sum() <= 40 * 7
    assert (scores.loc[scores["suppressed_reason"].notna(), "contact_intensity"] == "none").all()
    # How many intensities were lawful per planned row, published as Int64 (null: not planned).
    lawful = pd.read_parquet(outcome.output_dir / "scores.parquet")["lawful_arms"]
    planned = (~scores["control_group"] & scores["suppressed_reason"].isna()).to_numpy()
    assert str(lawful.dtype) == "Int64" and lawful[~planned].isna().all()
    assert lawful[planned].between(1, 4).all() and (lawful[planned] == 4).any()
    allocation = outcome.manifest["allocation"]
    assert allocation["calls_used"] <= allocation["calls_capacity"] <= 20 * 7
    assert 0 <= allocation["gap"] < 0.01
    assert (
        sum(outcome.manifest["outputs"]["per_approach"].values())
        == scores["approach"].notna().sum()
    )
    printed = score_cli(
        str(world["data"]), str(world["root"] / "value_cli"), "--policy", str(policy_file),
        "--no-mlflow",
    )  # fmt: skip
    assert printed.exit_code == 0, printed.output
    assert "value allocation:" in printed.output and "approach:" in printed.output


def test_uplift_run_is_logged_beside_the_heads(world, tmp_path):
    """A treatment-effect model and its Qini evaluation go to the same MLflow store as the heads."""
    import json  # noqa: PLC0415

    from mlflow import MlflowClient  # noqa: PLC0415

    from models import tracking  # noqa: PLC0415
    from models.uplift import (  # noqa: PLC0415
        UpliftModel,
        evaluate_uplift,
        fit_t_learner,
        planted_randomised_data,
    )

    arms = ("none", "low", "high")
    X, t, y, _ = planted_randomised_data(3000, 4, arms)
    model = fit_t_learner(X, t, y, arms, rounds=40)
    table, curves = evaluate_uplift(model, *planted_randomised_data(2000, 5, arms)[:3])
    run_id = tracking.log_uplift_run(model, table, curves, run_name="planted")
    mlc = MlflowClient()
    metrics = mlc.get_run(run_id).data.metrics
    assert metrics["qini_high"] == pytest.approx(
        table.set_index("arm").loc["high", "qini_coefficient"]
    )
    names = {a.path for a in mlc.list_artifacts(run_id, "uplift")}
    assert {"uplift/uplift_model.json", "uplift/qini_high.png", "uplift/qini.csv"} <= names
    path = mlc.download_artifacts(run_id, "uplift/uplift_model.json", str(tmp_path))
    again = UpliftModel.from_dict(json.loads(Path(path).read_text()))
    pd.testing.assert_frame_equal(again.effects(X), model.effects(X))

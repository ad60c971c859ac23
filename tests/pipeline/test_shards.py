"""Sharded jobs: the shard layout, and outputs identical to the unsharded run.

One small simulated portfolio and one quickly trained model (temporary sqlite
MLflow store) are shared by the module. The portfolio carries a few bad rows
(a negative payment, an orphan contact) so that rejects are merged over shards.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import factories as f
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipeline.asof import AsOfImplausibleError, combine_dates, export_dates
from pipeline.cli import app
from pipeline.io import read_tables, write_parquet
from pipeline.partition import partition_data, scan_export_dates
from pipeline.score import RejectLimitError, run_scoring
from pipeline.shard_score import run_scoring_sharded
from pipeline.shards import account_shards, shard_dirs
from pipeline.simulator import simulate_portfolio, write_portfolio
from pipeline.validation import ORPHAN_CHECK, validate_tables

AS_OF = pd.Timestamp("2025-06-30")
runner = CliRunner()


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys, kind="stable", ignore_index=True)


def _reject_keys(df: pd.DataFrame) -> pd.DataFrame:
    return _sorted(df.astype({"key": str}), ["table", "key", "column", "check"])


# --- the layout ---------------------------------------------------------------


@pytest.mark.parametrize("budget", [10**9, 2_000])
def test_partition_buffers_rows_into_large_row_groups_in_input_order(tmp_path, monkeypatch, budget):
    import pyarrow.parquet as pq

    from pipeline import partition

    # Input batches of 7 rows and row groups of up to 40: row groups are filled across
    # batches; a small buffer budget flushes every shard early (shorter row groups);
    # either way each shard's rows keep their input order.
    monkeypatch.setattr(partition, "_BATCH_ROWS", 7)
    monkeypatch.setattr(partition, "ROW_GROUP_ROWS", 40)
    monkeypatch.setattr(partition, "SPLIT_BUFFER_BYTES", budget)
    portfolio = simulate_portfolio(60, 6, seed=4, start="2025-01-01")
    write_portfolio(portfolio, tmp_path / "data")
    partition_data(tmp_path / "data", tmp_path / "parts", 2)
    payments = portfolio.tables["payments"]
    n_rows = 0
    for d in shard_dirs(tmp_path / "parts"):
        meta = pq.ParquetFile(d / "payments.parquet").metadata
        groups = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        assert meta.row_group(0).column(0).compression == "LZ4"
        ids = pd.read_parquet(d / "payments.parquet")["payment_id"]
        expected = payments["payment_id"][payments["payment_id"].isin(ids)]
        assert ids.tolist() == expected.tolist()
        assert max(groups) <= 40
        assert len(groups) < sum(groups) / 7  # fewer row groups than one per input batch
        if budget > 10**6:
            assert groups[:-1] == [40] * (len(groups) - 1)  # every row group full but the last
        n_rows += sum(groups)
    assert n_rows == len(payments) > 200


def test_partition_keeps_every_row_once_with_its_account_and_customer(tmp_path):
    tables = f.tables()
    accounts = tables["accounts"]
    accounts["customer_id"] = ["C1", "C1", "C2"]  # A1 and A2 belong to one customer
    orphan = f.payment_rows(("A9", "2024-02-01T10:00:00Z", 5.0)).assign(payment_id=["P9"])
    tables["payments"] = pd.concat([tables["payments"], orphan], ignore_index=True)
    for name, df in tables.items():
        write_parquet(df, tmp_path / "data" / f"{name}.parquet")
    layout = partition_data(tmp_path / "data", tmp_path / "parts", 5)
    assert layout["n_shards"] == 5
    assert layout["tables"]["payments"]["rows"] == len(tables["payments"])
    dirs = shard_dirs(tmp_path / "parts")
    shard_of: dict[str, int] = {}
    for k, d in enumerate(dirs):
        for acc in pd.read_parquet(d / "accounts.parquet")["account_id"]:
            shard_of[acc] = k
    assert shard_of["A1"] == shard_of["A2"]
    for name, df in tables.items():
        parts = [pd.read_parquet(d / f"{name}.parquet").assign(_k=k) for k, d in enumerate(dirs)]
        merged = pd.concat(parts, ignore_index=True)
        assert len(merged) == len(df), name
        known = merged[merged["account_id"].isin(shard_of)]
        assert (known["account_id"].map(shard_of) == known["_k"]).all(), name
        key = [c for c in df.columns if c.endswith("_id") and c != "account_id"] or [
            "account_id",
            *(["installment_no"] if name == "installments" else []),
        ]
        assert sorted(map(tuple, merged[key].astype(str).to_numpy())) == sorted(
            map(tuple, df[key].astype(str).to_numpy())
        )
    # The orphan payment is kept once (in the shard of its own id) and is an orphan there.
    holding = [
        d for d in dirs if (pd.read_parquet(d / "payments.parquet")["account_id"] == "A9").any()
    ]
    assert len(holding) == 1
    rejects = validate_tables(read_tables(holding[0])).rejects
    assert rejects[["account_id", "check"]].values.tolist() == [["A9", ORPHAN_CHECK]]


@settings(max_examples=40, deadline=None)
@given(
    ids=st.lists(st.text("ABC123", min_size=1, max_size=4), min_size=1, max_size=30, unique=True),
    n=st.integers(1, 9),
)
def test_account_shards_are_stable_and_in_range(ids, n):
    customers = [i[:1] for i in ids]  # accounts sharing a first letter share a customer
    acc = pa.table({"account_id": ids, "customer_id": customers})
    s = account_shards(acc, n)
    assert s.between(0, n - 1).all()
    again = account_shards(pa.table({"account_id": ids[::-1], "customer_id": customers[::-1]}), n)
    assert (s.sort_index() == again.sort_index()).all()
    by_customer = pd.Series(s.to_numpy(), index=customers).groupby(level=0).nunique()
    assert (by_customer == 1).all()


def test_partition_of_a_missing_table_exits_2(tmp_path):
    (tmp_path / "data").mkdir()
    write_parquet(f.accounts(), tmp_path / "data" / "accounts.parquet")
    result = runner.invoke(
        app, ["partition", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 2
    assert "required table 'installments' is missing" in result.output


# --- jobs: sharded equals unsharded ----------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A portfolio with a few bad rows and a registered model in a temporary MLflow store."""
    from pipeline.jobs import train_job

    root = tmp_path_factory.mktemp("shards")
    data = root / "data"
    write_portfolio(simulate_portfolio(1200, 18, seed=8, start="2024-01-01"), data)
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mp.chdir(root)
    job = train_job(
        data,
        AS_OF,
        months=6,
        config_overrides={"lightgbm": {"n_estimators": 40, "min_data_in_leaf": 40}},
    )
    bad = root / "bad"
    write_portfolio(simulate_portfolio(1200, 18, seed=8, start="2024-01-01"), bad)
    payments = pd.read_parquet(bad / "payments.parquet")
    payments.loc[0, "amount"] = -5.0
    write_parquet(payments, bad / "payments.parquet")
    contacts = pd.read_parquet(bad / "contacts.parquet")
    contacts.loc[3, "account_id"] = "NOT-AN-ACCOUNT"
    write_parquet(contacts, bad / "contacts.parquet")
    uri = f"models:/repayment-propensity/{job.model_version}"
    plain = run_scoring(bad, AS_OF, root / "plain", model_uri=uri, log_to_mlflow=False)
    yield {"root": root, "data": data, "bad": bad, "uri": uri, "plain": plain}
    mp.undo()


def assert_same_run(plain, sharded) -> None:
    """The published scores, rejects and manifest counts of two runs are the same."""
    a = pd.read_parquet(plain.output_dir / "scores.parquet")
    b = pd.read_parquet(sharded.output_dir / "scores.parquet")
    pd.testing.assert_frame_equal(_sorted(a, ["account_id"]), _sorted(b, ["account_id"]))
    ra = pd.read_parquet(plain.output_dir / "rejects.parquet")
    rb = pd.read_parquet(sharded.output_dir / "rejects.parquet")
    pd.testing.assert_frame_equal(_reject_keys(ra), _reject_keys(rb))
    ma = json.loads((plain.output_dir / "manifest.json").read_text())
    mb = json.loads((sharded.output_dir / "manifest.json").read_text())
    for key in ("counts", "outputs", "validation", "policy_version", "model_version"):
        assert ma[key] == mb[key], key
    for table, facts in ma["inputs"].items():
        assert facts["rows"] == mb["inputs"][table]["rows"]
        assert facts["sha256"] == mb["inputs"][table]["sha256"]


def test_partitioned_folder_gives_the_same_run(world):
    parts = world["root"] / "parts"
    result = runner.invoke(
        app, ["partition", "--data", str(world["bad"]), "--out", str(parts), "--shards", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "3 shards by customer_id" in result.output
    out = world["root"] / "partitioned"
    result = runner.invoke(
        app,
        [
            "score",
            "--data",
            str(parts),
            "--as-of",
            "2025-06-30",
            "--out",
            str(out),
            "--model-uri",
            world["uri"],
            "--no-mlflow",
            "--workers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    from pipeline.score import ScoringOutcome

    plain = world["plain"]
    assert plain.manifest["counts"]["rejected"] == 1
    assert plain.manifest["validation"]["orphan_accounts"] == 1
    assert_same_run(plain, ScoringOutcome(out / "as_of=2025-06-30", {}))
    engine = json.loads((out / "as_of=2025-06-30" / "manifest.json").read_text())["engine"]
    assert (engine["name"], engine["shards"], engine["workers"]) == ("local", 3, 2)
    assert engine["shard_seconds"]["total"] >= engine["shard_seconds"]["features"] > 0
    # Nothing of the run's work folder is left beside the output.
    assert [p.name for p in out.iterdir() if p.is_dir()] == ["as_of=2025-06-30"]


_SCORE_FIRST_SHARD = """
import sys
from pipeline import shard_tasks
shard_tasks.warm_up("score")
before = set(sys.modules)
params = {"as_of": "2025-06-30", "model_dir": sys.argv[2] + "/model", "model_version": "1",
          "policy": sys.argv[2] + "/policy.yaml", "citl": True, "num_threads": 1}
shard_tasks.TASKS["score"](sys.argv[1], 0, sys.argv[2], params)
print(sorted(m for m in set(sys.modules) - before
             if m.split(".")[0] in ("pipeline", "features", "models", "pandera", "lightgbm")))
"""


def test_after_the_warm_up_a_first_score_shard_imports_nothing_more(world, tmp_path):
    """A worker started ahead (shard_tasks.warm_up) has imported all its first shard needs."""
    import subprocess

    from models import tracking
    from pipeline.policy import read_policy_bytes

    tracking.load_model(world["uri"]).save(tmp_path / "model")
    (tmp_path / "policy.yaml").write_bytes(read_policy_bytes(None)[0])
    partition_data(world["data"], tmp_path / "parts", 1)
    out = subprocess.run(
        [sys.executable, "-c", _SCORE_FIRST_SHARD, str(tmp_path / "parts" / "shard=00000"),
         str(tmp_path)],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "[]"


def test_reject_limit_counts_all_shards(world, tmp_path):
    data = tmp_path / "data"
    write_portfolio(simulate_portfolio(1200, 18, seed=8, start="2024-01-01"), data)
    accounts = pd.read_parquet(data / "accounts.parquet")
    accounts.loc[accounts.index[:30], "principal"] = -1.0  # 2.5% of accounts, spread over shards
    write_parquet(accounts, data / "accounts.parquet")
    out = tmp_path / "out"
    with pytest.raises(RejectLimitError, match="above the policy's limit"):
        run_scoring_sharded(
            data, AS_OF, out, model_uri=world["uri"], log_to_mlflow=False, n_shards=4
        )
    assert not (out / "as_of=2025-06-30").exists()
    rejects = pd.read_parquet(out / "as_of=2025-06-30.rejects.parquet")
    assert rejects["account_id"].nunique() == 30
    manifest = json.loads((out / "as_of=2025-06-30.manifest.json").read_text())
    assert manifest["counts"]["rejected"] == 30
    assert [p.name for p in out.iterdir() if p.is_dir()] == []


def _report(output: str, rejects_path) -> list[str]:
    """The lines of a validation report (log lines left out), the rejects path neutralised."""
    text = output.replace(str(rejects_path), "REJECTS")
    return [line for line in text.splitlines() if " INFO " not in line]


def test_sharded_features_training_set_and_validate_equal_unsharded(world, tmp_path):
    data = str(world["bad"])
    for args, keys in (
        (["features", "--as-of", "2025-06-30"], ["account_id"]),
        (
            [
                "training-set",
                "--from",
                "2025-01-31",
                "--to",
                "2025-04-30",
                "--data-end",
                "2025-06-30",
            ],
            ["as_of_date", "account_id"],
        ),
    ):
        plain = runner.invoke(
            app, [args[0], "--data", data, *args[1:], "--out", str(tmp_path / "a")]
        )
        assert plain.exit_code == 0, plain.output
        sharded = runner.invoke(
            app, [args[0], "--data", data, *args[1:], "--out", str(tmp_path / "b"), "--shards", "3"]
        )
        assert sharded.exit_code == 0, sharded.output
        a = _sorted(pd.read_parquet(tmp_path / "a"), keys)
        b = _sorted(pd.read_parquet(tmp_path / "b"), keys)
        assert len(a) > 0
        pd.testing.assert_frame_equal(a, b)
    plain = runner.invoke(app, ["validate", "--data", data, "--rejects", str(tmp_path / "r1")])
    sharded = runner.invoke(
        app,
        [
            "validate",
            "--data",
            data,
            "--rejects",
            str(tmp_path / "r2"),
            "--shards",
            "3",
            "--workers",
            "2",
        ],
    )
    assert plain.exit_code == sharded.exit_code == 1
    assert "1 orphan rows" in plain.output
    assert _report(plain.output, tmp_path / "r1") == _report(sharded.output, tmp_path / "r2")
    pd.testing.assert_frame_equal(
        _reject_keys(pd.read_parquet(tmp_path / "r1")),
        _reject_keys(pd.read_parquet(tmp_path / "r2")),
    )


def test_sharded_training_set_requires_a_data_end(world, tmp_path):
    result = runner.invoke(
        app,
        [
            "training-set",
            "--data",
            str(world["data"]),
            "--from",
            "2025-01-31",
            "--to",
            "2025-02-28",
            "--out",
            str(tmp_path / "t"),
            "--shards",
            "2",
        ],
    )
    assert result.exit_code == 2
    assert "--data-end is required" in result.output
    assert not (tmp_path / "t").exists()


@pytest.fixture(scope="module")
def spark():
    """A local Spark session on two cores (pyspark is in the dev dependencies; Java 17)."""
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    from pipeline.spark_engine import spark_session

    mp = pytest.MonkeyPatch()
    mp.setenv("PYSPARK_PYTHON", sys.executable)  # the workers run this environment
    session = (
        SparkSession.builder.master("local[2]")
        .appName("test-repayment-propensity")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    assert spark_session() is session  # the engine uses the active session
    yield session
    session.stop()
    mp.undo()


def test_spark_engine_scores_like_the_local_engine(world, spark):
    sharded = run_scoring_sharded(
        world["bad"],
        AS_OF,
        world["root"] / "spark",
        model_uri=world["uri"],
        log_to_mlflow=False,
        n_shards=2,
        engine="spark",
    )
    assert sharded.manifest["engine"]["name"] == "spark"
    assert_same_run(world["plain"], sharded)


def test_spark_engine_plans_value_mode_and_monitors_like_the_local_engine(world, spark, tmp_path):
    """Both passes of the value mode and the calibration rows run as Spark tasks."""
    policy = _value_policy(tmp_path / "value.yaml", 6, 12)
    kw = {"model_uri": world["uri"], "policy_path": policy}
    plain = run_scoring(world["bad"], AS_OF, tmp_path / "a", **kw)
    sharded = run_scoring_sharded(
        world["bad"], AS_OF, tmp_path / "b", n_shards=2, engine="spark", **kw
    )
    assert_same_run(plain, sharded)
    for key in ("allocation", "calibration_latest_month", "export_dates"):
        assert sharded.manifest[key] == plain.manifest[key], key


def test_an_id_repeated_across_shards_is_rejected_as_unsharded(tmp_path):
    tables = f.tables()
    tables["accounts"]["customer_id"] = ["C1", "C2", "C3"]
    acc = pa.Table.from_pandas(tables["accounts"][["account_id", "customer_id"]])
    n = next(n for n in range(2, 50) if len(set(account_shards(acc, n)[["A1", "A3"]])) == 2)
    pay = f.payment_rows(
        ("A1", "2024-02-01T10:00:00Z", 5.0), ("A3", "2024-02-02T10:00:00Z", 6.0)
    ).assign(payment_id=["P-SAME", "P-SAME"])
    tables["payments"] = pd.concat([tables["payments"], pay], ignore_index=True)
    for name, df in tables.items():
        write_parquet(df, tmp_path / "data" / f"{name}.parquet")
    layout = partition_data(tmp_path / "data", tmp_path / "parts", n)
    assert layout["cross_shard_duplicates"] == {"payments": ["P-SAME"]}
    plain = validate_tables(read_tables(tmp_path / "data"))
    result = runner.invoke(
        app, ["validate", "--data", str(tmp_path / "parts"), "--rejects", str(tmp_path / "r")]
    )
    assert result.exit_code == 1, result.output
    sharded = pd.read_parquet(tmp_path / "r")
    assert set(plain.rejected_accounts) == {"A1", "A3"}
    assert sorted(sharded["account_id"]) == ["A1", "A3"]
    pd.testing.assert_frame_equal(_reject_keys(plain.rejects), _reject_keys(sharded))


def test_a_shard_missing_a_table_exits_2_with_its_path(tmp_path):
    for name, df in f.tables().items():
        write_parquet(df, tmp_path / "data" / f"{name}.parquet")
    partition_data(tmp_path / "data", tmp_path / "parts", 2)
    (tmp_path / "parts" / "shard=00001" / "payments.parquet").unlink()
    result = runner.invoke(app, ["validate", "--data", str(tmp_path / "parts")])
    assert result.exit_code == 2
    assert "shard=00001: required table 'payments' is missing" in result.output


# --- the as-of check: once, over the whole export ----------------------------------


def _write(tables: dict[str, pd.DataFrame], folder, csv: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        if csv:
            df.to_csv(folder / f"{name}.csv", index=False)
        else:
            write_parquet(df, folder / f"{name}.parquet")


def test_scanned_export_dates_equal_the_read_tables(tmp_path):
    tables = f.tables()
    # A timestamp with an offset crosses midnight UTC; an unparsable one is left out.
    tables["payments"]["paid_at"] = tables["payments"]["paid_at"].astype(object)
    tables["payments"].loc[1, "paid_at"] = "2024-02-29T23:30:00-05:00"
    tables["payments"].loc[2, "paid_at"] = "not a date"
    _write(tables, tmp_path / "csv", csv=True)
    read = export_dates(read_tables(tmp_path / "csv").tables)
    assert read["payments.paid_at"] == {"min": "2024-01-01", "max": "2024-03-01"}
    assert scan_export_dates(tmp_path / "csv") == read
    plain = f.tables()
    _write(plain, tmp_path / "pq")
    want = export_dates(read_tables(tmp_path / "pq").tables)
    assert want["installments.due_date"] == {"min": "2024-01-01", "max": "2024-03-01"}
    assert scan_export_dates(tmp_path / "pq") == want
    layout = partition_data(tmp_path / "pq", tmp_path / "parts", 3)
    assert layout["export_dates"] == want
    # A layout written before the record: the shards' dates are combined.
    path = tmp_path / "parts" / "shards.json"
    path.write_text(json.dumps({k: v for k, v in layout.items() if k != "export_dates"}))
    assert scan_export_dates(tmp_path / "parts") == want


def _a3_alone(n_max: int = 50) -> int:
    """A shard count that puts A3 (the latest event) in a shard without A1 and A2."""
    acc = pa.Table.from_pandas(f.accounts()[["account_id", "customer_id"]])
    return next(
        n for n in range(2, n_max) if (s := account_shards(acc, n))["A3"] not in (s["A1"], s["A2"])
    )


def test_a_shard_with_old_events_does_not_refuse_a_valid_night(world, tmp_path):
    """The export's latest event (A3's offer, 2024-02-08) decides, not each shard's own."""
    _write(f.tables(), tmp_path / "data")
    n = _a3_alone()
    ok = pd.Timestamp("2024-02-11")  # 3 days after the export's latest event: allowed
    plain = run_scoring(tmp_path / "data", ok, tmp_path / "a", model_uri=world["uri"],
                        log_to_mlflow=False)  # fmt: skip
    sharded = run_scoring_sharded(
        tmp_path / "data", ok, tmp_path / "b", model_uri=world["uri"], log_to_mlflow=False,
        n_shards=n,
    )  # fmt: skip
    assert_same_run(plain, sharded)
    for m in (plain.manifest, sharded.manifest):
        assert m["as_of_check"] == "passed"
        assert m["export_dates"]["offers.offered_at"]["max"] == "2024-02-08"
    assert plain.manifest["export_dates"] == sharded.manifest["export_dates"]
    late = pd.Timestamp("2024-02-12")
    with pytest.raises(AsOfImplausibleError) as a:
        run_scoring(tmp_path / "data", late, tmp_path / "c", model_uri=world["uri"],
                    log_to_mlflow=False)  # fmt: skip
    with pytest.raises(AsOfImplausibleError) as b:
        run_scoring_sharded(
            tmp_path / "data", late, tmp_path / "d", model_uri="models:/no-such-model/1",
            log_to_mlflow=False, n_shards=n,
        )  # fmt: skip
    assert "4 days after the export's latest event (2024-02-08, offers.offered_at)" in str(a.value)
    assert str(a.value) == str(b.value)
    # Refused before the model is loaded and before any shard runs: nothing left behind.
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_sharded_run_logs_the_unsharded_calibration_figures(world, tmp_path):
    """The newest closed month's calibration in the large: summed over shards, not skipped."""
    import mlflow

    plain = run_scoring(world["bad"], AS_OF, tmp_path / "a", model_uri=world["uri"])
    sharded = run_scoring_sharded(
        world["bad"], AS_OF, tmp_path / "b", model_uri=world["uri"], n_shards=3
    )
    want = plain.manifest["calibration_latest_month"]
    assert [r["head"] for r in want] == ["willingness", "ability"]
    assert want[0]["rows"] > want[1]["rows"] > 50
    assert want[0]["as_of_date"] == "2025-05-31"  # the newest month end closed by 30 days
    assert sharded.manifest["calibration_latest_month"] == want  # exactly, not nearly

    def citl_metrics(run_id: str) -> dict:
        metrics = mlflow.MlflowClient().get_run(run_id).data.metrics
        return {k: v for k, v in metrics.items() if k.startswith("citl_")}

    logged = citl_metrics(plain.manifest["mlflow_run_id"])
    assert set(logged) == {f"citl_{h}_{m}" for h in ("willingness", "ability")
                           for m in ("over_prediction", "rows")}  # fmt: skip
    assert citl_metrics(sharded.manifest["mlflow_run_id"]) == logged


# --- value mode: one capacity for the whole book -------------------------------------


def _value_policy(path, calls_per_day: int, sms_per_day: int):
    """The packaged policy in value mode with the given capacity, written to ``path``."""
    import yaml

    from pipeline import policy as policy_module
    from pipeline.value_mode import packaged_value_settings

    data = yaml.safe_load(
        (Path(policy_module.__file__).with_name("default_policy.yaml")).read_text("utf-8")
    )
    data["value_allocation"] = {
        **packaged_value_settings(),
        "calls_per_day": calls_per_day,
        "sms_per_day": sms_per_day,
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return path


@pytest.mark.parametrize(("calls_per_day", "method"), [(6, "exact"), (40, "lagrange")])
def test_sharded_value_mode_plans_like_the_unsharded_run(
    world, tmp_path, monkeypatch, calls_per_day, method
):
    """One decision over the book, in its order: the Lagrange prices come from a sample by row."""
    from pipeline import allocate

    if method == "lagrange":  # this small book would be solved exactly otherwise
        monkeypatch.setattr(allocate, "EXACT_MAX_VARIABLES", 0)
        monkeypatch.setattr(allocate, "PRICE_SAMPLE", 60)
    policy = _value_policy(tmp_path / "value.yaml", calls_per_day, 2 * calls_per_day)
    kw = {"model_uri": world["uri"], "policy_path": policy, "log_to_mlflow": False}
    plain = run_scoring(world["bad"], AS_OF, tmp_path / "a", **kw)
    sharded = run_scoring_sharded(world["bad"], AS_OF, tmp_path / "b", n_shards=4, **kw)
    assert_same_run(plain, sharded)
    allocation = plain.manifest["allocation"]
    assert sharded.manifest["allocation"] == allocation
    assert allocation["method"] == method
    # The capacity binds: the shards shared one budget, none spent the whole book's.
    assert allocation["calls_used"] <= allocation["calls_capacity"] < calls_per_day * 7
    assert allocation["calls_used"] > allocation["calls_capacity"] - 10
    scores = sharded.scores
    assert scores["max_calls_7d"].sum() <= calls_per_day * 7


def test_value_mode_on_a_layout_without_the_account_order_exits_2(world, tmp_path):
    parts = tmp_path / "parts"
    partition_data(world["bad"], parts, 2)
    (parts / "shard=00001" / "account_rows.parquet").unlink()
    policy = _value_policy(tmp_path / "value.yaml", 6, 12)
    result = runner.invoke(
        app,
        ["score", "--data", str(parts), "--as-of", "2025-06-30", "--out", str(tmp_path / "o"),
         "--model-uri", world["uri"], "--no-mlflow", "--policy", str(policy)],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "records no account order (account_rows.parquet); partition the export again" in (
        result.output
    )
    assert not (tmp_path / "o" / "as_of=2025-06-30").exists()


# --- laws: parts of a book combine into the book's figures ---------------------------


@settings(max_examples=60, deadline=None)
@given(
    days=st.lists(st.integers(0, 3000), min_size=1, max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=4),
)
def test_export_dates_of_parts_combine_into_the_whole(days, cuts):
    paid = pd.Series(pd.Timestamp("2018-01-01", tz="UTC") + pd.to_timedelta(days, unit="h") * 7)
    whole = export_dates({"payments": pd.DataFrame({"paid_at": paid})})
    bounds = sorted({0, len(paid), *[min(c, len(paid)) for c in cuts]})
    parts = [
        export_dates({"payments": pd.DataFrame({"paid_at": paid.iloc[a:b]})})
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    assert combine_dates(parts[::-1]) == whole


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(0, 1), st.floats(0, 1), st.booleans(), st.booleans()),
        min_size=1,
        max_size=60,
    ),
    seed=st.integers(0, 2**16),
)
def test_calibration_figures_do_not_depend_on_the_order_of_rows(rows, seed):
    from models.monitoring import citl_summary

    frame = pd.DataFrame(rows, columns=["p_willingness", "p_ability", "paid", "full"])
    frame["full_coverage"] = (frame.pop("full") & frame["paid"]).astype("float64")
    shuffled = frame.sample(frac=1.0, random_state=seed)
    a, b = citl_summary(frame), citl_summary(shuffled)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a.loc[0, "rows"] == len(frame)


def test_each_shard_logs_one_line_wherever_it_runs(world, tmp_path, caplog):
    import logging

    from pipeline.engine import run_tasks

    partition_data(world["bad"], tmp_path / "parts", 3)
    dirs = shard_dirs(tmp_path / "parts")
    params = {"as_of": "2025-06-30"}
    for workers in (1, 2):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            records = run_tasks(
                "features", dirs, tmp_path / f"w{workers}", params, "local", workers
            )
        assert [r["shard"] for r in records] == [0, 1, 2]
        lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
        # One line per shard, in shard order, and none of a shard's own stage lines,
        # whether the shard ran in this process or in a worker.
        assert [line.split(" task=")[0] for line in lines] == ["shard 0", "shard 1", "shard 2"]
        assert all("task=features accounts=" in line for line in lines)
    assert logging.getLogger("pipeline").level == logging.NOTSET  # levels restored

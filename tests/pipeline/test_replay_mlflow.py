"""The replay's comparison in MLflow: totals, paired intervals, seeds, capacity, HTML table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.reporting import mean_ci
from pipeline.simulator.replay import METRICS, StrategyRun
from pipeline.simulator.replay_report import capacity, comparisons, log_replay, summary

NAMES = ("fixed", "value", "dpd")


def _run(name: str, seed: int) -> StrategyRun:
    """A hand-built strategy run: figures that differ by strategy and seed, two nights of plans."""
    k = NAMES.index(name)
    recovered = 1000.0 + 100 * k + 10 * seed
    contacts = 500.0 - 50 * k + 5 * seed * k
    metrics = {m: 0.0 for m in METRICS}
    metrics.update(recovered=recovered, contacts=contacts, cure_rate=0.2 + 0.01 * k - 0.005 * seed,
                   recovery_per_contact=recovered / contacts, calls=contacts - 100, sms=100.0)  # fmt: skip
    plans = pd.DataFrame(
        {
            "account_id": ["A1", "A2", "A1", "A2"],
            "as_of": pd.to_datetime(["2025-01-01"] * 2 + ["2025-01-02"] * 2),
            "max_calls_7d": [7, 7 * k, 14, 0],
            "max_sms_7d": [7, 0, 0, 7],
        }
    )
    return StrategyRun(name, metrics, pd.DataFrame(), {}, plans=plans)


@pytest.fixture()
def runs():
    return {s: [_run(n, s) for n in NAMES] for s in (0, 1, 2)}


def _rel(runs, name, ref, figure):
    return np.array(
        [
            next(r for r in rs if r.name == name).metrics[figure]
            / next(r for r in rs if r.name == ref).metrics[figure]
            - 1
            for rs in runs.values()
        ]
    )


def test_comparisons_are_paired_by_seed_against_each_reference(runs):
    comp = comparisons(runs, ["dpd", "fixed"])
    pairs = sorted(zip(comp.index, comp["vs"], strict=True))
    assert sorted(set(pairs)) == [("fixed", "dpd"), ("value", "dpd"), ("value", "fixed")]
    row = comp[(comp.index == "value") & (comp["vs"] == "fixed")].set_index("figure")
    m, lo, hi = mean_ci(_rel(runs, "value", "fixed", "recovery_per_contact"))
    got = row.loc["recovery_per_contact"]
    assert (got.mean_change, got.ci_low, got.ci_high) == pytest.approx((m, lo, hi))
    assert got.seeds == 3


def test_capacity_is_the_planned_calls_and_texts_a_day(runs):
    cap = capacity(runs)
    # Night 1: 7 + 7k calls, night 2: 14; a plan's caps cover 7 days.
    for k, name in enumerate(NAMES):
        assert cap.loc[name, "planned_calls_per_day"] == pytest.approx((7 + 7 * k + 14) / 2 / 7)
        assert cap.loc[name, "planned_sms_per_day"] == pytest.approx(1.0)


def test_the_replay_run_holds_totals_intervals_seeds_capacity_and_a_table(
    runs, tmp_path, monkeypatch
):
    from mlflow import MlflowClient

    from models import tracking

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    summ = summary(runs)
    comp = comparisons(runs, ["dpd", "fixed"])
    facts = {"from": "2025-01-01", "nights": 2, "seeds": "0,1,2", "capacity": "equal"}
    run_id = log_replay(runs, summ, comp, "<html></html>", facts, note="value vs fixed: better")
    client = MlflowClient(tracking.tracking_uri())
    run = client.get_run(run_id)
    got = run.data.metrics
    assert got["value.recovered"] == pytest.approx(summ.loc["value", "recovered"])
    m, lo, hi = mean_ci(_rel(runs, "value", "fixed", "contacts"))
    assert got["value.vs_fixed.contacts"] == pytest.approx(m)
    assert (got["value.vs_fixed.contacts.ci_low"], got["value.vs_fixed.contacts.ci_high"]) == (
        pytest.approx(lo),
        pytest.approx(hi),
    )
    assert got["value.vs_dpd.cure_rate.ci_high"] > got["value.vs_dpd.cure_rate.ci_low"]
    assert got["fixed.planned_calls_per_day"] == pytest.approx(1.5)
    assert run.data.params["seeds"] == "0,1,2" and run.data.params["capacity"] == "equal"
    assert run.data.tags["mlflow.note.content"] == "value vs fixed: better"
    names = {f.path for f in client.list_artifacts(run_id)}
    names |= {f.path for f in client.list_artifacts(run_id, "tables")}
    assert {"replay_report.html", "comparison.html", "tables/per_seed.csv"} <= names
    page = client.download_artifacts(run_id, "comparison.html", str(tmp_path))
    text = open(page, encoding="utf-8").read()
    assert "<table>" in text and f"{m:,.3f}" in text

"""The closed-loop replay: deterministic, consumes the plans, within caps, debtors respond by type."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pipeline.io import RawTables
from pipeline.simulator import simulate_portfolio
from pipeline.simulator.daily import Book, DayState, Plans, day_uniforms, ledger_at, step
from pipeline.simulator.replay import build_book, run_replay
from pipeline.simulator.strategies import Night, baseline_strategy, policy_strategy
from pipeline.validation import validate_tables

START = pd.Timestamp("2025-01-06")
NIGHTS = 28


@pytest.fixture(scope="module")
def portfolio():
    return simulate_portfolio(2500, 14, seed=21, start="2024-01-01")


def constant(calls_7d: int, sms_7d: int, offer: str = "reminder", calls_day: int = 1):
    """A strategy giving every overdue account the same plan (installments at 40% of arrears)."""

    def plan(night: Night) -> pd.DataFrame:
        led = night.ledger
        return pd.DataFrame(
            {
                "account_id": led["account_id"],
                "max_calls_7d": calls_7d,
                "max_sms_7d": sms_7d,
                "max_calls_day": min(calls_day, calls_7d),
                "contact_window": "08:00-21:00",
                "offer": offer,
                "offer_installment": np.floor(led["arrears"] * 40) / 100,
            }
        )

    return plan


def _replay(portfolio, strategies, seed=3, nights=NIGHTS):
    runs = run_replay(portfolio.tables, portfolio.truth, START, nights, strategies, seed=seed)
    return {r.name: r for r in runs}


def _recovered_by_account(run, ids: pd.Index) -> pd.Series:
    pay = run.tables["payments"]
    new = pay[pay["paid_at"] >= START.tz_localize("UTC")]
    return new.groupby("account_id")["amount"].sum().reindex(ids, fill_value=0.0)


@pytest.fixture(scope="module")
def start_state(portfolio):
    book, tables = build_book(portfolio.tables, portfolio.truth, START, NIGHTS, 3)
    led = ledger_at(book, book.paid0, book.day0)
    ids = pd.Index(tables["accounts"]["account_id"])
    ability, willingness = book.latent(book.day0)
    return pd.DataFrame(
        {"overdue": led.overdue, "ability": ability, "willingness": willingness}, index=ids
    )


def test_replay_is_deterministic_for_a_seed_and_differs_across_seeds(portfolio):
    a = _replay(portfolio, [baseline_strategy("dpd_buckets")], nights=10)["dpd_buckets"]
    b = _replay(portfolio, [baseline_strategy("dpd_buckets")], nights=10)["dpd_buckets"]
    c = _replay(portfolio, [baseline_strategy("dpd_buckets")], seed=4, nights=10)["dpd_buckets"]
    for name in ("payments", "contacts", "offers"):
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    assert a.metrics == b.metrics
    assert a.metrics["recovered"] != c.metrics["recovered"]


def test_a_plan_with_zero_calls_makes_zero_calls(portfolio):
    runs = _replay(portfolio, [("texts", constant(0, 3)), ("silent", constant(0, 0))], nights=14)
    texts, silent = runs["texts"].metrics, runs["silent"].metrics
    assert texts["calls"] == 0 and texts["sms"] > 100
    assert silent["contacts"] == 0


def test_policy_plans_are_consumed_self_cure_gets_no_calls(portfolio):
    class WillingAndAble:
        """Stand-in model: everyone is willing and able, so the policy says self_cure."""

        def predict_proba(self, feats: pd.DataFrame) -> pd.DataFrame:
            n = len(feats)
            return pd.DataFrame({"p_willingness": [0.9] * n, "p_ability": [0.9] * n,
                                 "expected_share": [0.9] * n}, index=feats.index)  # fmt: skip

    name, strategy = policy_strategy(None, WillingAndAble())
    run = _replay(portfolio, [(name, strategy)], nights=7)[name]
    con = run.tables["contacts"]
    new = con[con["contact_at"] >= START.tz_localize("UTC")]
    day = new["contact_at"].dt.tz_convert(None).dt.normalize()
    plans = run.plans.set_index(["account_id", "as_of"])
    # Every contact was allowed by that day's plan for that account.
    for channel, cap in (("call", "max_calls_7d"), ("sms", "max_sms_7d")):
        sel = (new["channel"] == channel).to_numpy()
        keys = pd.MultiIndex.from_arrays([new["account_id"][sel], day[sel]])
        assert (plans[cap].reindex(keys).fillna(0) > 0).all()
    # self_cure plans no calls: only the control group and the later DPD stages get them.
    pl = run.plans
    self_cure = pl[(pl["risk_tier"] == "self_cure") & (pl["dpd_stage"] == "early")]
    # (not the control group, and not stepped up by a recently broken promise)
    self_cure = self_cure[~self_cure["control_group"] & (self_cure["contact_intensity"] == "low")]
    # The dialer logged the plan each contact served: that day's plan of that account.
    expected = day.dt.strftime("%Y%m%d") + "-" + new["account_id"]
    assert (new["plan_id"] == expected).all()
    assert len(self_cure) > 100 and (self_cure["max_calls_7d"] == 0).all()
    assert (self_cure["max_sms_7d"] > 0).any() and (new["channel"] == "sms").any()
    assert run.metrics["violations"] == 0


def test_contacts_stay_within_every_cap_and_the_tables_stay_valid(portfolio):
    runs = _replay(portfolio, [("two", constant(2, 1)), baseline_strategy("dpd_buckets")])
    assert runs["dpd_buckets"].metrics["violations"] == 0
    # A plan made without assign_plans ignores the law's conversation block: counted.
    two = runs["two"].metrics
    assert two["violations_conversation_block"] > 0
    assert two["violations"] == two["violations_conversation_block"]
    con = runs["two"].tables["contacts"]
    calls = con[(con["channel"] == "call") & (con["contact_at"] >= START.tz_localize("UTC"))]
    day = calls["contact_at"].dt.tz_convert(None).dt.normalize()
    per_day = calls.groupby([calls["account_id"], day]).size()
    assert per_day.max() <= 1
    rolled = per_day.reset_index(level=0).groupby("account_id")[0].rolling("7D").sum()
    assert rolled.max() <= 2
    result = validate_tables(RawTables(tables=runs["two"].tables))
    assert result.rejects.empty


def _book(n: int, willingness, ability, hardship=False) -> Book:
    """``n`` good payers each 100.00 overdue since 40 days, one zone at UTC, no payments."""
    day0 = int(START.value // (86_400 * 10**9))
    one = np.ones(n)
    return Book(
        n=n,
        typ=np.zeros(n, dtype=np.int64),
        tz=np.zeros(n, dtype=np.int64),
        tz_offset=np.zeros((1, 60), dtype=np.int64),
        day0=day0,
        ability=(ability * one)[None, :],
        willingness=(willingness * one)[None, :],
        month0=int(np.datetime64(START.date(), "M").astype(np.int64)),
        inst_due=np.full(n, day0 - 40),
        inst_cum=np.full(n, 10_000),
        inst_amount=np.full(n, 10_000),
        inst_lo=np.arange(n),
        inst_hi=np.arange(n) + 1,
        suppressed=np.zeros(n, dtype=bool),
        hardship=np.asarray(hardship) & np.ones(n, dtype=bool),
        pmult=one,
        paid0=np.zeros(n, dtype=np.int64),
        reach=one,
        bad_phone=np.zeros(n, dtype=bool),
    )


def _play(book: Book, calls_7d: int, offer: str = "reminder", calls_day: int = 1, days=28):
    """Play ``days`` days under one constant plan; return cents paid per account, complaints."""
    n = book.n
    full = np.ones(n, dtype=np.int64)
    plans = Plans(
        calls_7d=calls_7d * full, sms_7d=0 * full, calls_day=min(calls_day, calls_7d) * full,
        offer=np.full(n, offer, dtype=object), installment=3_000 * full,
        window_lo=480 * full, window_hi=1260 * full,
    )  # fmt: skip
    st = DayState.start(book)
    for day in range(book.day0, book.day0 + days):
        step(book, st, plans, day, day_uniforms(5, day, n))
    return st.paid - book.paid0, st.counts["complaints"]


def test_contact_moves_the_willing_more_than_the_unwilling():
    n = 3000
    for w, lifts in ((0.9, []), (0.2, [])):
        book = _book(n, w, 0.9)
        lifts.append((_play(book, 3)[0] > 0).mean() - (_play(book, 0)[0] > 0).mean())
        if w == 0.9:
            willing = lifts[0]
        else:
            unwilling = lifts[0]
    assert willing > 0.05 and willing > 2 * unwilling


def test_forbearance_helps_the_unable_and_pressure_brings_complaints_not_payments():
    book = _book(3000, 0.8, 0.2)
    reminder, complaints_light = _play(book, 2)
    plan, _ = _play(book, 2, "installment_plan")
    pressure, complaints_heavy = _play(book, 7, calls_day=2)
    assert plan.sum() > 1.2 * reminder.sum()
    assert complaints_heavy > 2 * complaints_light
    assert pressure.sum() < 1.1 * reminder.sum()
    # Pressure on the able and willing does pay.
    able = _book(3000, 0.8, 0.9)
    assert _play(able, 7, calls_day=2)[0].sum() > 1.1 * _play(able, 2)[0].sum()


def test_cli_replay_without_truth_exits_2_with_one_sentence(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(
        app, ["replay", "--data", str(tmp_path), "--from", "2025-01-06", "--nights", "3"]
    )
    assert result.exit_code == 2
    assert "truth.parquet not found" in result.output and "Traceback" not in result.output


class _SpreadModel:
    """Stand-in model: probabilities spread by the account id, so tiers and values differ."""

    def predict_proba(self, feats: pd.DataFrame) -> pd.DataFrame:
        ids = feats["account_id"] if "account_id" in feats else pd.Series(feats.index)
        u = pd.util.hash_pandas_object(ids.astype(str), index=False).to_numpy() % 1000 / 1000.0
        return pd.DataFrame(
            {"p_willingness": 0.05 + 0.9 * u, "p_ability": 0.95 - 0.9 * u,
             "expected_share": 0.5 * u}, index=feats.index,
        )  # fmt: skip


def test_value_strategy_plans_within_the_fixed_tiers_capacity_and_every_cap():
    from features.build import build_features
    from pipeline.plan import assign_plans
    from pipeline.policy import load_policy_and_version
    from pipeline.score import scored_frame
    from pipeline.simulator.strategies import _promises, value_strategy

    small = simulate_portfolio(400, 14, seed=5, start="2024-01-01")
    model = _SpreadModel()
    name, value_plan = value_strategy(None, model)
    fixed, version = load_policy_and_version(None)

    used = []

    def checked(night: Night) -> pd.DataFrame:
        """The value plan, with the fixed-tier plan of the same night's tables beside it."""
        t = night.tables
        feats = build_features(t, night.as_of, materiality=fixed.materiality, validate=False)
        same = assign_plans(scored_frame(feats, model.predict_proba(feats)), t["accounts"],
                            t["contacts"], night.as_of, fixed, version, _promises(night, fixed))  # fmt: skip
        plan = value_plan(night)
        used.append((plan["max_calls_7d"].sum(), same["max_calls_7d"].sum(),
                     plan["max_sms_7d"].sum(), same["max_sms_7d"].sum(),
                     (plan["contact_intensity"] != same["contact_intensity"]).sum()))  # fmt: skip
        return plan

    runs = run_replay(small.tables, small.truth, START, 5, [(name, checked)], seed=1)
    run = runs[0]
    assert name == f"value-{fixed.version}@fixed-capacity"
    used = np.array(used)
    assert (used[:, 0] <= used[:, 1]).all() and (used[:, 2] <= used[:, 3]).all()
    assert used[:, 1].sum() > 0 and used[:, 0].sum() > 0  # it does contact, not just nothing
    assert used[:, 4].sum() > 0  # and it re-chooses: not the fixed tiers' plan
    assert run.metrics["contacts"] > 0 and run.metrics["violations"] == 0


def test_replay_job_with_value_compares_three_strategies(tmp_path, monkeypatch):
    from models import tracking
    from pipeline.simulator.replay_job import run_replay_job
    from pipeline.simulator.tables import write_portfolio

    write_portfolio(simulate_portfolio(300, 14, seed=6, start="2024-01-01"), tmp_path)
    monkeypatch.setattr(tracking, "load_model", lambda uri: _SpreadModel())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = run_replay_job(tmp_path, START, 3, [None], ["dpd_buckets"], [0, 1],
                            log_to_mlflow=True, value=True, learn_nights=2,
                            publish_plans=tmp_path / "logged")  # fmt: skip
    names = list(result.summary.index)
    assert len(names) == 3 and names[1].startswith("value-") and names[2] == "dpd_buckets"
    assert (result.summary["violations"] == 0).all()
    assert set(result.comparison.index) == {names[0], names[1]}
    assert result.summary.loc[names[1], "contacts"] > 0
    assert f"{names[1]} vs {names[0]} over 2 seeds: recovery per contact" in result.text
    # It explored for 2 nights, then tried to learn: 300 accounts are too few, said per seed.
    assert names[1].endswith("+learned2")
    assert "effect model, run 2:" in result.text and "not fitted: arm" in result.text

    # The MLflow run holds the three-strategy comparison with its paired intervals.
    logged = tracking.client().get_run(result.run_id).data
    vs_fixed = result.comparison[result.comparison["vs"] == names[0]].set_index("figure")
    # MLflow metric names take no @ or +.
    key = re.sub(r"[@+]", "_", f"{names[1]}.vs_{names[0]}.recovery_per_contact")
    assert logged.metrics[key] == pytest.approx(vs_fixed.loc["recovery_per_contact", "mean_change"])
    assert (
        f"{key}.ci_low" in logged.metrics
        and f"{names[0]}.vs_dpd_buckets.contacts" in logged.metrics
    )
    assert logged.params["seeds"] == "0,1" and "fixed tiers" in logged.params["capacity"]
    _check_logged_plans(tmp_path / "logged")


def _check_logged_plans(out):
    """The value mode's plans of seed 0 read like published runs, with the tables they led to."""
    from pipeline.io import read_tables
    from pipeline.uplift_units import plan_units

    assert sorted(p.name for p in (out / "plans").iterdir()) == [
        f"as_of={(START + pd.Timedelta(days=i)).date()}" for i in range(3)
    ]
    first = pd.read_parquet(out / "plans" / f"as_of={START.date()}" / "scores.parquet")
    assert first[["dpd", "arrears", "p_willingness", "p_ability"]].notna().all().all()
    assert first["control_group"].dtype == bool and (first["as_of_date"] == START).all()
    tables = read_tables(out / "data").tables
    assert tables["payments"]["paid_at"].max() >= START.tz_localize("UTC")  # replayed days
    units = plan_units(first, tables["payments"], START + pd.Timedelta(days=30), 30)
    # Every account is a unit but the explored ones drawn among fewer than four (left out).
    explored = first["arm"].isin(["none", "low", "medium", "high"])
    fewer = int((explored & (first["lawful_arms"] < 4)).sum())
    assert units.attrs["explored"]["fewer_lawful"] == fewer
    assert len(units) == first["account_id"].nunique() - fewer
    assert units["outcome"].between(0, 1).all()


def test_value_strategy_explores_then_falls_back_to_priors_without_enough_units(portfolio):
    from pipeline.simulator.strategies import value_strategy

    name, value_plan = value_strategy(None, _SpreadModel(), True, 8, 1.0)
    arms = []

    def logged(night: Night) -> pd.DataFrame:
        plan = value_plan(night)
        arms.append(plan["arm"].value_counts().to_dict())
        return plan

    runs = run_replay(portfolio.tables, portfolio.truth, START, 10, [(name, logged)], seed=2)
    assert name.endswith("@fixed-capacity+learned8")
    learner = value_plan.learner
    (result,) = learner.runs
    # 2,500 accounts give ~400 episodes: too few of one arm to fit, so the priors stay.
    assert result.model is None and "at least 50 are needed" in result.reason
    assert result.counts["incomplete_horizon"] > 0  # nights 2..7 cannot be outcomes yet
    assert result.counts["explored_units"] > 0.7 * result.counts["units"]
    explored = [sum(v for k, v in night.items() if k not in ("plan", "control")) for night in arms]
    assert all(n > 0 for n in explored[:8]) and explored[8:] == [0, 0]  # then none explored
    assert runs[0].metrics["violations"] == 0
    # A second seed is a new run: the learner starts again and keeps both results.
    run_replay(portfolio.tables, portfolio.truth, START, 9, [(name, logged)], seed=3)
    assert len(learner.runs) == 2

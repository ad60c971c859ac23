"""The portfolio simulator: contract-valid, deterministic, realistic rates, typed behaviour."""

from __future__ import annotations

import factories as f
import numpy as np
import pandas as pd
import pytest

from features import vocab
from pipeline.contract import COLUMNS, OPTIONAL_COLUMNS
from pipeline.io import RawTables, read_tables
from pipeline.simulator import (
    DEBTOR_TYPES,
    portfolio_rates,
    promise_kept,
    simulate_portfolio,
    write_portfolio,
)
from pipeline.validation import validate_tables

N_ACCOUNTS, N_MONTHS, START = 3000, 12, "2024-01-01"
#: As-of dates at the end of each simulated month (first day of the next month).
MONTH_ENDS = pd.date_range("2024-02-01", periods=N_MONTHS, freq="MS")

# Target ranges of docs/simulator.md, checked on 3,000 accounts x 12 months.
TARGETS = {
    "overdue_share": (0.08, 0.25),
    "cure_1_29": (0.40, 0.70),
    "roll_1_29": (0.15, 0.40),
    "cure_90p": (0.0, 0.15),
    "rpc_rate": (0.15, 0.35),
    "promise_rate": (0.20, 0.50),
    "promise_kept_rate": (0.35, 0.65),
}


@pytest.fixture(scope="module")
def portfolio():
    return simulate_portfolio(N_ACCOUNTS, N_MONTHS, seed=42, start=START)


@pytest.fixture(scope="module")
def rates(portfolio):
    return portfolio_rates(portfolio.tables, MONTH_ENDS)


@pytest.fixture(scope="module")
def types(portfolio):
    """Debtor type of each account."""
    return portfolio.truth.drop_duplicates("account_id").set_index("account_id")["debtor_type"]


def _subset(tables, account_ids):
    ids = set(account_ids)
    return {name: df[df["account_id"].isin(ids)] for name, df in tables.items()}


def _rates_of(portfolio, types, debtor_type):
    return portfolio_rates(_subset(portfolio.tables, types.index[types == debtor_type]), MONTH_ENDS)


# ---- determinism -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_seed_same_bytes_other_seed_differs(tmp_path, fmt):
    a = write_portfolio(simulate_portfolio(400, 5, seed=3), tmp_path / "a", fmt=fmt)
    b = write_portfolio(simulate_portfolio(400, 5, seed=3), tmp_path / "b", fmt=fmt)
    c = write_portfolio(simulate_portfolio(400, 5, seed=4), tmp_path / "c", fmt=fmt)
    assert set(a) == {*vocab.TABLES, "truth"}
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes(), name
    assert a["payments"].read_bytes() != c["payments"].read_bytes()
    assert a["contacts"].read_bytes() != c["contacts"].read_bytes()


# ---- the contract ------------------------------------------------------------------

DTYPES = {
    "accounts": {
        "account_id": "object",
        "customer_id": "object",
        "product": "object",
        "opened_date": "datetime64[ns]",
        "principal": "float64",
        "currency": "object",
        "timezone": "object",
        "do_not_contact": "bool",
        "cease_communication": "bool",
        "dispute_open": "bool",
        "hardship": "bool",
        "deceased": "bool",
        "bankruptcy": "bool",
        "monthly_income": "float64",
        "age": "float64",
        "region": "object",
        "jurisdiction": "object",
    },
    "installments": {
        "account_id": "object",
        "installment_no": "int64",
        "due_date": "datetime64[ns]",
        "amount_due": "float64",
    },
    "payments": {
        "payment_id": "object",
        "account_id": "object",
        "paid_at": "datetime64[ns, UTC]",
        "amount": "float64",
        "channel": "object",
    },
    "contacts": {
        "contact_id": "object",
        "account_id": "object",
        "contact_at": "datetime64[ns, UTC]",
        "channel": "object",
        "direction": "object",
        "outcome": "object",
        "promised_amount": "float64",
        "promised_date": "datetime64[ns]",
        "agent_id": "object",
    },
    "offers": {
        "offer_id": "object",
        "account_id": "object",
        "offered_at": "datetime64[ns, UTC]",
        "offer_type": "object",
        "accepted": "bool",
        "discount_pct": "float64",
        "n_installments": "Int64",
    },
}


def test_contract_columns_order_and_dtypes(portfolio):
    assert list(portfolio.tables) == list(vocab.TABLES)
    for name, df in portfolio.tables.items():
        expected = [*COLUMNS[name], *OPTIONAL_COLUMNS.get(name, ())]
        assert df.columns.tolist() == expected, name
        assert df.dtypes.astype(str).to_dict() == DTYPES[name], name
        assert df.index.equals(pd.RangeIndex(len(df))), name
        assert len(df) > 0, name


def test_tables_pass_the_contract_validation(portfolio):
    result = validate_tables(RawTables({k: v.copy() for k, v in portfolio.tables.items()}))
    assert result.ok
    assert result.rejects.empty


def test_ids_unique_and_keys_resolve(portfolio):
    t = portfolio.tables
    acc = t["accounts"]
    assert acc["account_id"].is_unique
    assert acc["account_id"].iloc[0] == "A0000001"
    for name, key in vocab.TABLE_KEYS.items():
        if name not in ("accounts", "installments"):
            assert t[name][key].is_unique, name
        assert t[name]["account_id"].isin(acc["account_id"]).all(), name
    inst = t["installments"]
    assert not inst.duplicated(["account_id", "installment_no"]).any()
    assert (inst["installment_no"] >= 1).all() and (inst["amount_due"] > 0).all()
    ordered = inst.sort_values(["account_id", "installment_no"])
    same = ordered["account_id"].eq(ordered["account_id"].shift())
    assert (ordered["due_date"].diff()[same] > pd.Timedelta(0)).all()
    # the schedule starts after the account opened; some accounts open in the window
    first_due = inst.groupby("account_id")["due_date"].min()
    opened = acc.set_index("account_id")["opened_date"]
    assert (opened.loc[first_due.index] < first_due).all()
    assert (opened >= pd.Timestamp(START)).mean() > 0.1
    # some customers hold two accounts, none more
    per_customer = acc["customer_id"].value_counts()
    assert per_customer.max() == 2 and (per_customer == 2).sum() > 0.03 * len(acc)


def test_portfolio_mix(portfolio):
    acc = portfolio.tables["accounts"]
    assert set(acc["product"]) == set(vocab.PRODUCTS)
    assert acc["currency"].value_counts(normalize=True).iloc[0] > 0.6
    assert acc["currency"].nunique() >= 3
    assert {"America/New_York", "America/Chicago", "Europe/London", "Asia/Shanghai"} == set(
        acc["timezone"]
    )
    assert (acc["principal"] > 0).all() and (acc["monthly_income"] > 0).all()
    assert acc["age"].between(18, 90).all()


def test_events_inside_the_window_at_whole_seconds(portfolio):
    start = pd.Timestamp(START, tz="UTC")
    end = pd.Timestamp("2025-01-01", tz="UTC")
    for name, col in (
        ("payments", "paid_at"),
        ("contacts", "contact_at"),
        ("offers", "offered_at"),
    ):
        ts = portfolio.tables[name][col]
        assert ts.min() >= start and ts.max() < end, name
        assert (ts.dt.microsecond == 0).all(), name
    assert (portfolio.tables["payments"]["amount"] >= 1.0).all()


def test_promise_fields_exactly_when_promise_to_pay(portfolio):
    c = portfolio.tables["contacts"]
    is_p = c["outcome"] == "promise_to_pay"
    assert is_p.sum() > 100
    assert c.loc[is_p, ["promised_amount", "promised_date"]].notna().all().all()
    assert c.loc[~is_p, ["promised_amount", "promised_date"]].isna().all().all()
    assert (c.loc[is_p, "promised_amount"] > 0).all()
    contact_day = c.loc[is_p, "contact_at"].dt.tz_localize(None).dt.normalize()
    ahead = (c.loc[is_p, "promised_date"] - contact_day).dt.days
    assert ahead.between(1, 14).all()


def test_outcomes_consistent_with_channel_and_agents(portfolio):
    c = portfolio.tables["contacts"]
    call_like = c["channel"].isin(["call", "visit"])
    message_outcomes = {"delivered", "undelivered", "replied"}
    assert set(c.loc[~call_like, "outcome"]) <= message_outcomes
    assert not c.loc[call_like, "outcome"].isin(message_outcomes).any()
    assert c.loc[call_like, "agent_id"].notna().all()
    assert c.loc[~call_like, "agent_id"].isna().all()
    inbound = c["direction"] == "inbound"
    assert 0 < inbound.mean() < 0.1
    assert (c.loc[inbound, "channel"] == "call").all()
    # early DPD gets messages, calls rise with DPD, letters come late (checked by share)
    assert c["channel"].value_counts().index[0] == "call"
    assert {"sms", "email", "letter", "app_push"} <= set(c["channel"])


def test_contacts_at_plausible_local_hours(portfolio):
    c = portfolio.tables["contacts"]
    tz = c["account_id"].map(portfolio.tables["accounts"].set_index("account_id")["timezone"])
    for zone in tz.unique():
        sel = (tz == zone) & (c["channel"] == "call")
        hours = c.loc[sel, "contact_at"].dt.tz_convert(zone).dt.hour
        assert hours.min() >= 8 and hours.max() <= 20, zone


def test_offers_fields_by_type(portfolio):
    o = portfolio.tables["offers"]
    assert set(o["offer_type"]) == set(vocab.OFFER_TYPES)
    settlement = o["offer_type"] == "settlement"
    assert o.loc[settlement, "discount_pct"].between(0, 100).all()
    assert o.loc[~settlement, "discount_pct"].isna().all()
    plans = o["offer_type"].isin(["installment_plan", "staged_repayment"])
    assert (o.loc[plans, "n_installments"] >= 2).all()
    assert o.loc[~plans, "n_installments"].isna().all()
    assert 0.1 < o["accepted"].mean() < 0.8


def test_special_statuses_at_plausible_rates(portfolio, types):
    acc = portfolio.tables["accounts"].set_index("account_id")
    rates = acc[list(vocab.SUPPRESSING_STATUSES) + ["hardship"]].mean()
    assert rates["deceased"] <= 0.01
    assert rates["bankruptcy"] <= 0.015
    assert 0.002 <= rates["dispute_open"] <= 0.025
    assert rates["cease_communication"] <= 0.015
    assert 0.002 <= rates["do_not_contact"] <= 0.025
    assert 0.015 <= rates["hardship"] <= 0.05
    t = types.loc[acc.index]
    assert acc.loc[t == "stubborn", "dispute_open"].mean() > 3 * acc["dispute_open"].mean()
    assert acc.loc[t == "victim", "hardship"].mean() > 2 * acc["hardship"].mean()


def test_write_and_read_back_both_formats(tmp_path):
    p = simulate_portfolio(300, 4, seed=9)
    for fmt in ("parquet", "csv"):
        paths = write_portfolio(p, tmp_path / fmt, fmt=fmt)
        assert paths["truth"].name == "truth.parquet" and paths["truth"].exists()
        back = read_tables(tmp_path / fmt)
        assert not back.parse_failures
        for name, df in p.tables.items():
            pd.testing.assert_frame_equal(back.tables[name], df, check_exact=True, obj=name)
        pd.testing.assert_frame_equal(pd.read_parquet(paths["truth"]), p.truth)
    lines = (tmp_path / "csv" / "contacts.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(COLUMNS["contacts"])
    row = next(line for line in lines[1:] if ",sms," in line)
    assert row.endswith(",,,")  # no promise, no agent: empty cells
    assert "Z," in row
    accounts_csv = (tmp_path / "csv" / "accounts.csv").read_text(encoding="utf-8")
    assert ",false," in accounts_csv and "False" not in accounts_csv


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="n_accounts"):
        simulate_portfolio(0, 3, seed=1)
    with pytest.raises(ValueError, match="n_months"):
        simulate_portfolio(10, 0, seed=1)
    with pytest.raises(ValueError, match="start"):
        simulate_portfolio(10, 2, seed=1, start="not a date")
    with pytest.raises(ValueError, match="fmt"):
        write_portfolio(simulate_portfolio(10, 2, seed=1), tmp_path, fmt="xlsx")


# ---- the truth -----------------------------------------------------------------------


def test_truth_shape_and_ranges(portfolio):
    truth = portfolio.truth
    acc = portfolio.tables["accounts"]
    assert truth.columns.tolist() == [
        "account_id",
        "month",
        "debtor_type",
        "ability",
        "willingness",
    ]
    assert not truth.duplicated(["account_id", "month"]).any()
    assert truth["month"].dt.is_month_start.all()
    months = pd.date_range(START, periods=N_MONTHS, freq="MS")
    assert set(truth["month"]) == set(months)
    # one row per account and month the account is open
    opened_month = acc["opened_date"].dt.to_period("M").dt.to_timestamp()
    first = np.searchsorted(months.to_numpy(), opened_month.to_numpy())
    assert len(truth) == int((N_MONTHS - first).sum())
    assert set(truth["account_id"]) == set(acc["account_id"])
    assert truth[["ability", "willingness"]].stack().between(0, 1).all()
    assert truth.groupby("account_id")["debtor_type"].nunique().max() == 1
    assert set(truth["debtor_type"]) == set(DEBTOR_TYPES)
    share = truth.drop_duplicates("account_id")["debtor_type"].value_counts(normalize=True)
    assert share["good_payer"] > 0.7


def test_truth_separates_unable_from_unwilling(portfolio):
    mean = portfolio.truth.groupby("debtor_type")[["ability", "willingness"]].mean()
    # victims are willing but unable; provocative and stubborn debtors are able but unwilling
    assert mean.loc["victim", "willingness"] > 0.75 > mean.loc["victim", "ability"] + 0.2
    for t in ("provocative", "stubborn"):
        assert mean.loc[t, "willingness"] < 0.55
        assert mean.loc[t, "ability"] > mean.loc["victim", "ability"] + 0.15
    assert mean.loc["good_payer"].min() > 0.9


# ---- realistic rates -----------------------------------------------------------------


@pytest.mark.parametrize("name", list(TARGETS))
def test_rate_within_target(rates, name):
    lo, hi = TARGETS[name]
    assert lo <= rates[name] <= hi, f"{name} = {rates[name]:.3f}, target {lo}-{hi}"


def test_rates_ordered_by_dpd(rates):
    assert rates["cure_1_29"] > rates["cure_30_59"] > rates["cure_90p"]
    assert rates["roll_60_89"] > rates["roll_1_29"]


def test_overdue_share_steady_from_the_first_month(portfolio):
    shares = [portfolio_rates(portfolio.tables, [d])["overdue_share"] for d in MONTH_ENDS[::3]]
    assert min(shares) >= 0.08 and max(shares) <= 0.25
    assert max(shares) - min(shares) < 0.05


# ---- the debtor types behave as documented ---------------------------------------------


def test_serial_promisers_promise_often_and_break(portfolio, types):
    good = _rates_of(portfolio, types, "good_payer")
    serial = _rates_of(portfolio, types, "serial_promiser")
    assert serial["promise_rate"] > good["promise_rate"] + 0.1
    assert serial["promise_kept_rate"] < 0.25 < 0.6 < good["promise_kept_rate"]


def test_evasive_rarely_answer(portfolio, types):
    evasive = _rates_of(portfolio, types, "evasive")
    assert evasive["rpc_rate"] < 0.5 * _rates_of(portfolio, types, "good_payer")["rpc_rate"]


def _outcome_share(portfolio, types, debtor_type, outcome):
    c = _subset(portfolio.tables, types.index[types == debtor_type])["contacts"]
    rpc = c[c["outcome"].isin(vocab.RPC_OUTCOMES)]
    return (rpc["outcome"] == outcome).mean()


def test_provocative_refuse_stubborn_dispute_victims_claim_hardship(portfolio, types):
    share = {
        (t, o): _outcome_share(portfolio, types, t, o)
        for t in DEBTOR_TYPES
        for o in ("refused", "dispute", "hardship")
    }
    for outcome, leader in (("refused", "provocative"), ("dispute", "stubborn")):
        others = [share[(t, outcome)] for t in DEBTOR_TYPES if t != leader]
        assert share[(leader, outcome)] > 2 * max(others), outcome
    assert share[("victim", "hardship")] > 2 * share[("good_payer", "hardship")]


def _overdue_snapshots(portfolio):
    """Overdue (account, month end) rows with the next month's payments and the truth."""
    t = portfolio.tables
    inst, pays = t["installments"], t["payments"]
    rows = []
    for d, e in zip(MONTH_ENDS[:-1], MONTH_ENDS[1:], strict=True):
        due = inst[inst["due_date"] < d].groupby("account_id")["amount_due"].sum()
        paid = pays[pays["paid_at"] < d.tz_localize("UTC")].groupby("account_id")["amount"].sum()
        arrears = due.sub(paid, fill_value=0.0)
        arrears = arrears[arrears > vocab.DEFAULT_MATERIALITY]
        window = pays[
            (pays["paid_at"] >= d.tz_localize("UTC")) & (pays["paid_at"] < e.tz_localize("UTC"))
        ]
        nxt = window.groupby("account_id")["amount"].sum().reindex(arrears.index, fill_value=0.0)
        month = (d - pd.offsets.MonthBegin(1)).normalize()
        rows.append(
            pd.DataFrame(
                {
                    "account_id": arrears.index,
                    "month": month,
                    "paid_any": (nxt > 0).to_numpy(),
                    "coverage": np.clip(nxt / arrears, 0, 1).to_numpy(),
                }
            )
        )
    snaps = pd.concat(rows, ignore_index=True)
    return snaps.merge(portfolio.truth, on=["account_id", "month"], how="left")


def test_willingness_drives_paying_ability_drives_coverage(portfolio):
    s = _overdue_snapshots(portfolio)
    assert len(s) > 2000
    willing = s["willingness"] >= s["willingness"].median()
    assert s.loc[willing, "paid_any"].mean() > s.loc[~willing, "paid_any"].mean() + 0.2
    payers = s[s["paid_any"]]
    able = payers["ability"] >= 0.99
    assert payers.loc[able, "coverage"].mean() > payers.loc[~able, "coverage"].mean() + 0.2


def test_confident_debtors_pay_after_contact(portfolio, types):
    t = portfolio.tables
    s = _overdue_snapshots(portfolio)
    c = t["contacts"]
    c = c[c["outcome"].isin(["right_party", "promise_to_pay", "hardship"])]
    month = c["contact_at"].dt.tz_localize(None).dt.to_period("M").dt.to_timestamp()
    # a right-party contact in the month after the snapshot
    reached = set(zip(c["account_id"], month - pd.offsets.MonthBegin(1), strict=True))
    s["reached"] = [(a, m) in reached for a, m in zip(s["account_id"], s["month"], strict=True)]

    def lift(debtor_type):
        g = s[s["debtor_type"] == debtor_type].groupby("reached")["paid_any"].mean()
        return g[True] - g[False]

    assert lift("confident") > 0.3
    assert lift("confident") > lift("good_payer") > 0
    assert lift("confident") > lift("provocative")


# ---- what tells debtors at the same DPD apart --------------------------------------------


def _arrears_at(tables, d):
    """Arrears of each account at the start of date ``d`` (installments due and payments before)."""
    inst, pays = tables["installments"], tables["payments"]
    due = inst[inst["due_date"] < d].groupby("account_id")["amount_due"].sum()
    paid = pays[pays["paid_at"] < d.tz_localize("UTC")].groupby("account_id")["amount"].sum()
    return due.sub(paid, fill_value=0.0)


def _with_month_start_arrears(portfolio, frame, time_col):
    """Rows of ``frame`` with ``arrears0``: the account's arrears at the start of the row's month."""
    t = portfolio.tables
    month = frame[time_col].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("M")
    parts = []
    for period in sorted(month.unique()):
        rows = frame[month == period]
        arrears = _arrears_at(t, period.to_timestamp())
        parts.append(rows.assign(arrears0=rows["account_id"].map(arrears).fillna(0.0).to_numpy()))
    return pd.concat(parts)


def test_early_collections_call_new_misses_from_three_days_past_due(portfolio):
    c = portfolio.tables["contacts"]
    calls = c[(c["channel"] == "call") & (c["direction"] == "outbound")]
    calls = _with_month_start_arrears(portfolio, calls, "contact_at")
    early = calls[calls["arrears0"] <= vocab.DEFAULT_MATERIALITY]
    assert len(early) > 0.05 * len(calls)
    inst = portfolio.tables["installments"]
    day = early["contact_at"].dt.tz_localize(None)
    due = early.assign(m=day.dt.to_period("M").to_numpy()).merge(
        inst.assign(m=inst["due_date"].dt.to_period("M"))[["account_id", "m", "due_date"]],
        on=["account_id", "m"],
        how="left",
    )
    # every early call comes at least 3 days after that month's (missed) due date
    assert due["due_date"].notna().all()
    late_by = due["contact_at"].dt.tz_localize(None).to_numpy() - due["due_date"].to_numpy()
    assert (late_by >= np.timedelta64(3, "D")).all()


def test_promises_made_late_in_a_month_are_kept_early_next_month(portfolio):
    t = portfolio.tables
    c, pays = t["contacts"], t["payments"]
    promises = c[c["outcome"] == "promise_to_pay"]
    promises = promises[promises["promised_date"] + pd.Timedelta(days=4) <= MONTH_ENDS[-1]]
    month = promises["contact_at"].dt.tz_localize(None).dt.to_period("M")
    spanning = promises[(promises["promised_date"].dt.to_period("M") > month)]
    kept = spanning[promise_kept(spanning, pays)].sort_values("contact_at")
    assert len(kept) > 50
    first = pd.merge_asof(
        kept,
        pays.sort_values("paid_at")[["account_id", "paid_at"]],
        left_on="contact_at",
        right_on="paid_at",
        by="account_id",
        direction="forward",
    )
    made = first["contact_at"].dt.tz_localize(None).dt.to_period("M")
    paid = first["paid_at"].dt.tz_localize(None).dt.to_period("M")
    # the payment that keeps such a promise often lands in the next month
    assert (paid > made).mean() > 0.25


def test_debtors_promise_what_they_can_pay_serial_promisers_what_is_asked(portfolio, types):
    c = portfolio.tables["contacts"]
    p = c[c["outcome"] == "promise_to_pay"]
    installment = portfolio.tables["installments"].groupby("account_id")["amount_due"].first()
    below = p["promised_amount"] < p["account_id"].map(installment) - 0.005
    kind = p["account_id"].map(types)
    # victims (low capacity) negotiate part payments; serial promisers promise it all
    assert below[kind == "victim"].mean() > 0.5
    assert below[kind == "victim"].mean() > below[kind == "serial_promiser"].mean() + 0.4


def test_skips_concentrate_among_evasive_debtors(portfolio, types):
    c = portfolio.tables["contacts"]
    calls = c[(c["channel"] == "call") & (c["direction"] == "outbound")]
    wrong = (calls["outcome"] == "wrong_number").groupby(calls["account_id"].map(types)).mean()
    assert wrong["evasive"] > 3 * wrong["good_payer"]
    assert wrong["serial_promiser"] > 2 * wrong["good_payer"]


def test_willingness_not_dpd_decides_who_pays_in_deep_arrears(portfolio):
    s = _overdue_snapshots(portfolio)
    t = portfolio.tables
    installment = t["installments"].groupby("account_id")["amount_due"].first()
    arrears = pd.concat(
        [
            _arrears_at(t, d)
            .rename("arrears")
            .reset_index()
            .assign(month=d - pd.offsets.MonthBegin(1))
            for d in MONTH_ENDS[:-1]
        ]
    )
    s = s.merge(arrears, on=["account_id", "month"])
    deep = s[s["arrears"] >= 3 * s["account_id"].map(installment)]
    assert len(deep) > 500
    willing = deep["willingness"] >= deep["willingness"].median()
    pay_w, pay_u = deep.loc[willing, "paid_any"].mean(), deep.loc[~willing, "paid_any"].mean()
    # three or more installments behind, the willing half still pays three times as often
    assert pay_w > pay_u + 0.2
    assert pay_w > 3 * pay_u


# ---- portfolio_rates on a hand-built portfolio -----------------------------------------


def _hand_tables():
    """Three accounts, 100.00 due on the 10th of Jan, Feb, Mar 2024.

    A1 pays every month (the first payment 0.50 short: under materiality).
    A2 misses January, promises 200 on 15 Feb for 20 Feb and pays it: cured by March.
    A3 misses everything until it pays 130 on 20 Mar; it promised 100 on 3 Feb and broke it.
    """
    inst = f.installments(["A1", "A2", "A3"], n=3)
    inst["due_date"] = inst["due_date"] + pd.Timedelta(days=9)
    pays = pd.DataFrame(
        {
            "payment_id": ["P1", "P2", "P3", "P4", "P5", "P6"],
            "account_id": ["A1", "A1", "A1", "A2", "A2", "A3"],
            "paid_at": f.utc(
                "2024-01-05T10:00:00",
                "2024-02-05T10:00:00",
                "2024-03-05T10:00:00",
                "2024-02-20T12:00:00",
                "2024-03-05T10:00:00",
                "2024-03-20T10:00:00",
            ),
            "amount": [99.5, 100.0, 100.0, 200.0, 100.0, 130.0],
            "channel": ["card"] * 6,
        }
    )
    contacts = pd.DataFrame(
        {
            "contact_id": ["K1", "K2", "K3", "K4", "K5"],
            "account_id": ["A3", "A3", "A2", "A2", "A3"],
            "contact_at": f.utc(
                "2024-01-15T14:00:00",
                "2024-02-03T14:00:00",
                "2024-02-15T14:00:00",
                "2024-02-16T14:00:00",
                "2024-02-17T14:00:00",
            ),
            "channel": ["call", "call", "call", "call", "sms"],
            "direction": ["outbound"] * 5,
            "outcome": ["no_answer", "promise_to_pay", "promise_to_pay", "busy", "replied"],
            "promised_amount": [None, 100.0, 200.0, None, None],
            "promised_date": f.dates(None, "2024-02-08", "2024-02-20", None, None),
            "agent_id": ["G1", "G1", "G2", "G2", None],
        }
    )
    return {"installments": inst, "payments": pays, "contacts": contacts}


def test_portfolio_rates_by_hand():
    ends = pd.to_datetime(["2024-02-01", "2024-03-01", "2024-04-01"])
    r = portfolio_rates(_hand_tables(), ends)
    # 1 Feb: A2, A3 at 22 DPD (A1 0.50 short: current). 1 Mar: A3 at 51 DPD.
    # 1 Apr: A3 paid 130 oldest first: Jan settled, Feb unpaid -> 51 DPD, still 30-59.
    assert r["overdue_share"] == pytest.approx((2 / 3 + 1 / 3 + 1 / 3) / 3)
    assert r["cure_1_29"] == pytest.approx(0.5)  # A2 cured, A3 did not
    assert r["roll_1_29"] == pytest.approx(0.5)  # A3 -> 30-59
    assert r["cure_30_59"] == 0.0 and r["roll_30_59"] == 0.0  # A3 stays 30-59
    assert np.isnan(r["cure_60_89"]) and np.isnan(r["cure_90p"])
    assert r["paid_any_rate"] == pytest.approx(2 / 3)  # A2 in Feb, A3 in Mar; not A3 in Feb
    assert r["full_cover_rate"] == pytest.approx(1 / 3)  # only A2 covered its arrears
    assert r["rpc_rate"] == pytest.approx(2 / 4)  # 2 promises among 4 outbound calls
    assert r["promise_rate"] == pytest.approx(2 / 3)  # RPCs: 2 promises + 1 sms reply
    assert r["promise_kept_rate"] == pytest.approx(0.5)  # A2 kept, A3 broke


def test_materiality_threshold_is_a_parameter():
    ends = pd.to_datetime(["2024-02-01", "2024-03-01"])
    strict = portfolio_rates(_hand_tables(), ends, materiality=0.10)
    # with a 0.10 threshold A1's 0.50 residue makes it overdue: 22 DPD on 1 Feb, then,
    # payments going to the oldest installment, the residue sits on February's: 20 DPD
    assert strict["overdue_share"] == pytest.approx((3 / 3 + 2 / 3) / 2)
    assert strict["roll_1_29"] == pytest.approx(1 / 3)  # A3 only; A1 stays 1-29


def test_promise_kept_window_and_share():
    promises = pd.DataFrame(
        {
            "account_id": ["A1", "A1", "A2", "A3"],
            "contact_at": f.utc(
                "2024-03-01T09:00:00",
                "2024-03-01T09:00:00",
                "2024-03-01T09:00:00",
                "2024-03-01T09:00:00",
            ),
            "promised_amount": [100.0, 200.0, 100.0, 100.0],
            "promised_date": f.dates("2024-03-05", "2024-03-05", "2024-03-05", "2024-03-05"),
        }
    )
    payments = pd.DataFrame(
        {
            "account_id": ["A1", "A1", "A2", "A3"],
            # A1: 60 + 40 inside the window; A2: before the promise; A3: the last grace second
            "paid_at": f.utc(
                "2024-03-02T10:00:00",
                "2024-03-08T10:00:00",
                "2024-02-28T10:00:00",
                "2024-03-08T23:59:59",
            ),
            "amount": [60.0, 40.0, 100.0, 90.0],
        }
    )
    assert promise_kept(promises, payments).tolist() == [True, False, False, True]


def test_parameters_default_reproduces_the_portfolio_and_a_change_moves_it():
    """Passing Parameters() gives the default tables; changing a rate changes behaviour."""
    import dataclasses

    from pipeline.simulator import Parameters

    base = simulate_portfolio(300, 4, seed=8)
    same = simulate_portfolio(300, 4, seed=8, params=Parameters())
    pd.testing.assert_frame_equal(base.tables["payments"], same.tables["payments"])
    quiet = simulate_portfolio(
        300, 4, seed=8, params=dataclasses.replace(Parameters(), no_contact_share=1.0)
    )
    con = quiet.tables["contacts"]
    # Only the reminders after a missed due date remain: no outbound call is made.
    assert not ((con["direction"] == "outbound") & (con["channel"] == "call")).any()
    assert (base.tables["contacts"]["channel"] == "call").sum() > 100

"""Preparation: only the accounts that may be in the population, running sums, UTC nanoseconds."""

from __future__ import annotations

from dataclasses import fields, replace

import factories
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from features.arrears import overdue_at
from features.population import Population, may_be_in
from features.prepare import NAT_NS, Prepared, prepare_tables, to_ns

D = pd.Timestamp("2024-03-01").value


def _tables(categorical: bool) -> dict[str, pd.DataFrame]:
    tables = factories.tables()
    # A second promise (A3), a contact of an unknown account and one at D (A2).
    extra = factories.contacts().assign(
        contact_id=["K7", "K8", "K9"],
        account_id=["A3", "ZZ", "A2"],
        contact_at=factories.utc("2024-02-07T10:00", "2024-02-08T10:00", "2024-03-01T00:00"),
    )
    tables["contacts"] = pd.concat([tables["contacts"], extra], ignore_index=True)
    if categorical:  # the reader's compact text: account_id as a categorical
        for name in ("installments", "payments", "contacts", "offers"):
            tables[name]["account_id"] = tables[name]["account_id"].astype("category")
    return tables


def _before(prep: Prepared, d: int) -> Prepared:
    """``prep`` without the contacts, promises and offers from ``d`` on."""
    out = {}
    for prefix, ns in (("con", prep.con_ns), ("prom", prep.prom_ns), ("off", prep.off_ns)):
        rows = ns < d
        for f in fields(Prepared):
            if f.name.startswith(prefix + "_"):
                out[f.name] = getattr(prep, f.name)[rows]
    return replace(prep, **out)


def _assert_same(got: Prepared, expected: Prepared) -> None:
    for f in fields(Prepared):
        a, b = getattr(got, f.name), getattr(expected, f.name)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype, f.name
        np.testing.assert_array_equal(a, b, err_msg=f.name)
    for name in ("inst_cum", "pay_cum"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


@settings(max_examples=30, deadline=None)
@given(threshold=st.sampled_from([None, 1.0, 50.0, 100.0, 150.0]), categorical=st.booleans())
def test_a_population_prepares_the_accounts_that_may_be_in_it_as_take_does(threshold, categorical):
    tables = _tables(categorical)
    full = prepare_tables(tables)
    got = prepare_tables(tables, Population(D, threshold))
    # At D: A1 owes 50 (paid 150 of 200), A2 100, A3 200.
    arrears = {"A1": 50.0, "A2": 100.0, "A3": 200.0}
    kept = [a for a, x in arrears.items() if threshold is None or x > threshold - 1e-6]
    assert got.account_ids.tolist() == kept
    # The same arrays as those accounts' in the full preparation, without the contact at D.
    assert (got.con_ns < D).all() and (full.con_ns >= D).sum() == 1
    _assert_same(got, _before(full.take(np.isin(full.account_ids, kept)), D))


def test_an_account_exactly_at_the_threshold_is_prepared_and_left_to_the_exact_rule():
    prep = prepare_tables(factories.tables(), Population(D, 100.0))
    assert prep.account_ids.tolist() == ["A2", "A3"]
    assert overdue_at(prep, D, 100.0).tolist() == [False, True]


# Amounts whose sums depend on the order of addition (0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1).
amount = st.sampled_from([0.1, 0.2, 0.3, 0.7, 1 / 3, 2 / 3, 1e-3, 12345.67, 1e6 + 0.1])


@settings(max_examples=200, deadline=None)
@given(
    dues=st.lists(st.tuples(st.sampled_from([0, 0, 0, 1, 2]), amount), min_size=2, max_size=12),
    pays=st.lists(st.tuples(st.sampled_from([0, 0, 1, 2]), amount), max_size=8),
    seed=st.integers(0, 2**16),
    at=st.sampled_from([0, 0, 0, 1, 2]),
    ulps=st.sampled_from([1, 1, 2, 0, 4, -1]),
)
def test_may_be_in_never_leaves_out_an_account_overdue_by_the_exact_rule(
    dues, pays, seed, at, ulps
):
    rng = np.random.default_rng(seed)
    inst = {
        "inst_code": np.array([c for c, _ in dues], dtype=np.int32),
        "inst_no": np.arange(len(dues), dtype=np.int32),
        "inst_due": np.arange(len(dues), dtype=np.int64),
        "inst_amount": np.array([a for _, a in dues]),
    }
    pay = {
        "pay_code": np.array([c for c, _ in pays], dtype=np.int32),
        "pay_ns": rng.integers(0, 5, len(pays)).astype(np.int64),
        "pay_amount": np.array([a for _, a in pays]),
    }
    order = rng.permutation(len(dues))  # input order: not the (account, time) order
    inst = {k: v[order] for k, v in inst.items()}
    opened = np.zeros(3, dtype=np.int64)
    d = 10**6
    accounts = pd.DataFrame({"account_id": ["A", "B", "C"], "opened_date": pd.to_datetime([0] * 3)})
    names = np.array(["A", "B", "C"], dtype=object)
    tables = {
        "accounts": accounts.assign(product="microloan", principal=1.0),
        "installments": pd.DataFrame(
            {
                "account_id": names[inst["inst_code"]],
                "installment_no": inst["inst_no"].astype(np.int64),
                "due_date": pd.to_datetime(inst["inst_due"]),
                "amount_due": inst["inst_amount"],
            }
        ),
        "payments": pd.DataFrame(
            {
                "account_id": names[pay["pay_code"]],
                "paid_at": pd.to_datetime(pay["pay_ns"], utc=True),
                "amount": pay["pay_amount"],
            }
        ),
        "contacts": factories.contacts().iloc[:0],
    }
    full = prepare_tables(tables)
    # A threshold a few units in the last place below an account's exact (sorted-order) arrears.
    due = np.bincount(full.inst_code, weights=full.inst_amount, minlength=3)
    paid = np.bincount(full.pay_code, weights=full.pay_amount, minlength=3)
    arrears = float(due[at] - paid[at])
    threshold = max(arrears - ulps * float(np.spacing(arrears)), 1e-6)
    exact = overdue_at(full, d, threshold)
    maybe = may_be_in(Population(d, threshold), opened, inst, pay)
    assert not (exact & ~maybe).any()
    kept = prepare_tables(tables, Population(d, threshold))
    assert set(names[exact]) <= set(kept.account_ids)
    _assert_same(kept, full.take(np.isin(full.account_ids, kept.account_ids)))


def test_running_sums_are_computed_per_account_on_first_use():
    prep = prepare_tables(factories.tables())
    # 100 due on 1 Jan, 1 Feb and 1 Mar for each account; A1 paid 100 then 50, A2 100.
    assert prep.inst_cum.tolist() == [100.0, 200.0, 300.0] * 3
    assert prep.pay_cum.tolist() == [100.0, 150.0, 100.0]
    assert prep.take(np.array([False, True, True])).pay_cum.tolist() == [100.0]


def test_times_in_any_zone_or_unit_are_utc_nanoseconds_and_nat_is_the_sentinel():
    utc = pd.to_datetime(["2024-01-01 10:00", None, "2024-07-01 23:30"], utc=True)
    expected = [1704103200 * 10**9, NAT_NS, 1719876600 * 10**9]
    for values in (
        pd.Series(utc),
        pd.Series(utc.tz_convert("America/New_York")),
        pd.Series(utc.tz_convert("Asia/Kolkata")).astype("datetime64[us, Asia/Kolkata]"),
        pd.Series(utc.tz_localize(None)),  # naive times are read as UTC
    ):
        got = to_ns(values)
        assert got.dtype == np.int64
        assert got.tolist() == expected, values.dtype

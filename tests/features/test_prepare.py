"""Preparation: the selected accounts, running sums, and times as UTC nanoseconds."""

from __future__ import annotations

from dataclasses import fields

import factories
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from features.prepare import NAT_NS, Prepared, prepare_tables, to_ns


def _tables(categorical: bool) -> dict[str, pd.DataFrame]:
    tables = factories.tables()
    # A second promise (A3) and a contact of an unknown account, so the recoding is exercised.
    extra = factories.contacts().iloc[:2].assign(contact_id=["K8", "K9"], account_id=["A3", "ZZ"])
    tables["contacts"] = pd.concat([tables["contacts"], extra], ignore_index=True)
    if categorical:  # the reader's compact text: account_id as a categorical
        for name in ("installments", "payments", "contacts", "offers"):
            tables[name]["account_id"] = tables[name]["account_id"].astype("category")
    return tables


def _assert_same(got: Prepared, expected: Prepared) -> None:
    for f in fields(Prepared):
        a, b = getattr(got, f.name), getattr(expected, f.name)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype, f.name
        np.testing.assert_array_equal(a, b, err_msg=f.name)
    for name in ("inst_cum", "pay_cum"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


@settings(max_examples=30, deadline=None)
@given(keep=st.lists(st.booleans(), min_size=3, max_size=3), categorical=st.booleans())
def test_select_prepares_the_kept_accounts_as_take_does(keep, categorical):
    tables = _tables(categorical)
    mask = np.array(keep)
    seen: list[int] = []

    def select(part: Prepared) -> np.ndarray:
        seen.append(part.n)
        assert part.con_code.size == 0  # contacts are prepared after the selection
        assert part.pay_code.size == 3
        return mask

    got = prepare_tables(tables, select=select)
    assert seen == [3]
    _assert_same(got, prepare_tables(tables).take(mask))
    assert got.account_ids.tolist() == [
        a for a, k in zip(["A1", "A2", "A3"], keep, strict=True) if k
    ]
    # Every contact of a kept account is there, and no other.
    kept_ids = set(got.account_ids)
    expected = tables["contacts"]["account_id"].astype(object).isin(kept_ids).sum()
    assert got.con_code.size == expected


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

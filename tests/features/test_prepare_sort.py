"""The event order of :func:`features.event_order.sort_order` is numpy's lexsort by (account, time,
tie) whatever shortcut it takes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from features.event_order import sort_order, sorted_keys, stable_argsort_codes
from features.groups import segmented_searchsorted

rows = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 4), st.integers(0, 3)), min_size=0, max_size=40
)


@settings(max_examples=200, deadline=None)
@given(rows=rows, time_sorted=st.booleans(), wide=st.booleans())
def test_sort_order_is_the_lexsort(rows, time_sorted, wide):
    if time_sorted:  # the usual export: events in time order, accounts interleaved
        rows = sorted(rows, key=lambda r: r[1])
    code = np.array([r[0] for r in rows], dtype=np.int64) * (70_000 if wide else 1)
    time = np.array([r[1] for r in rows], dtype=np.int64)
    tie = np.array([r[2] for r in rows], dtype=np.float64)
    order = sort_order(code, time, tie)
    expected = np.lexsort((tie, time, code))
    got = np.arange(len(rows)) if order is None else order
    assert got.tolist() == expected.tolist()
    # The keys come back gathered in that order.
    _, c, t, k = sorted_keys(code, time, tie)
    for key, sorted_key in ((code, c), (time, t), (tie, k)):
        assert sorted_key.tolist() == key[expected].tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), max_size=50))
def test_radix_argsort_is_numpys_stable_argsort(values):
    code = np.array(values, dtype=np.int64)
    assert stable_argsort_codes(code).tolist() == np.argsort(code, kind="stable").tolist()


@settings(max_examples=200, deadline=None)
@given(first=rows, second=rows, negative=st.booleans())
def test_sort_order_of_parts_each_in_time_order_is_the_lexsort(first, second, negative):
    # An export written in parts (blocks of accounts or of months), each in time order.
    rows = sorted(first, key=lambda r: r[1]) + sorted(second, key=lambda r: r[1])
    code = np.array([r[0] for r in rows], dtype=np.int64) - (2 if negative else 0)
    time = np.array([r[1] for r in rows], dtype=np.int64)
    tie = np.array([r[2] for r in rows], dtype=np.float64)
    order = sort_order(code, time, tie)
    got = np.arange(len(rows)) if order is None else order
    assert got.tolist() == np.lexsort((tie, time, code)).tolist()


@settings(max_examples=200, deadline=None)
@given(
    slices=st.lists(
        st.lists(st.sampled_from([0.5, 1.0, 2.0, 2.0, 3.5, 7.0]), max_size=9),
        min_size=1,
        max_size=6,
    ),
    queries=st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from([0.0, 0.5, 1.0, 2.0, 2.5, 7.0, 9.0])),
        max_size=12,
    ),
    side=st.sampled_from(["left", "right"]),
)
def test_segmented_searchsorted_is_searchsorted_within_each_slice(slices, queries, side):
    values = np.array([v for s in slices for v in sorted(s)], dtype=np.float64)
    ends = np.cumsum([len(s) for s in slices])
    starts = ends - np.array([len(s) for s in slices])
    which = np.array([q[0] % len(slices) for q in queries], dtype=np.int64)
    q = np.array([q[1] for q in queries], dtype=np.float64)
    got = segmented_searchsorted(values, starts[which], ends[which], q, side)
    expected = [
        lo + np.searchsorted(values[lo:hi], x, side=side)
        for lo, hi, x in zip(starts[which], ends[which], q, strict=True)
    ]
    assert got.tolist() == [int(e) for e in expected]

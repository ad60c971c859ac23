"""Tests of the capacity-constrained allocation: caps, capacity, optimality, determinism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import allocate as allocate_module
from pipeline.allocate import allocate

CALLS = np.array([0, 1, 3])
SMS = np.array([0, 2, 1])


def _instance(n: int, seed: int, k: int = 3):
    rng = np.random.default_rng(seed)
    calls = np.tile(CALLS[:k], (n, 1))
    sms = np.tile(SMS[:k], (n, 1))
    value = np.column_stack([np.zeros(n), rng.normal(5, 4, (n, k - 1))])
    feasible = rng.random((n, k)) < 0.8
    feasible[:, 0] = True
    return value, calls, sms, feasible


def _brute_force(value, calls, sms, feasible, cap_c, cap_s) -> float:
    n, k = value.shape
    best = -np.inf
    for combo in itertools.product(range(k), repeat=n):
        idx = np.array(combo)
        rows = np.arange(n)
        if not feasible[rows, idx].all():
            continue
        if calls[rows, idx].sum() > cap_c or sms[rows, idx].sum() > cap_s:
            continue
        best = max(best, value[rows, idx].sum())
    return best


def _respects(plan, value, calls, sms, feasible, cap_c, cap_s):
    rows = np.arange(len(value))
    assert feasible[rows, plan.choice].all(), "an account got an option beyond its caps"
    assert calls[rows, plan.choice].sum() == plan.calls_used <= cap_c
    assert sms[rows, plan.choice].sum() == plan.sms_used <= cap_s
    assert plan.objective == pytest.approx(value[rows, plan.choice].sum())
    assert plan.upper_bound >= plan.objective - 1e-9 and plan.gap >= 0


@pytest.mark.parametrize("seed", range(6))
def test_exact_is_optimal_by_brute_force(seed):
    value, calls, sms, feasible = _instance(6, seed)
    cap_c, cap_s = 5, 4
    plan = allocate(value, calls, sms, feasible, cap_c, cap_s, method="exact")
    _respects(plan, value, calls, sms, feasible, cap_c, cap_s)
    assert plan.objective == pytest.approx(_brute_force(value, calls, sms, feasible, cap_c, cap_s))
    assert plan.gap == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_fast_method_bound_brackets_the_brute_force_optimum(seed):
    value, calls, sms, feasible = _instance(6, seed)
    cap_c, cap_s = 5, 4
    best = _brute_force(value, calls, sms, feasible, cap_c, cap_s)
    plan = allocate(value, calls, sms, feasible, cap_c, cap_s, method="lagrange")
    _respects(plan, value, calls, sms, feasible, cap_c, cap_s)
    assert plan.objective <= best + 1e-9 <= plan.upper_bound + 2e-9


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 40),
    seed=st.integers(0, 10_000),
    cap_c=st.integers(0, 60),
    cap_s=st.integers(0, 60),
    method=st.sampled_from(["exact", "lagrange"]),
)
def test_never_exceeds_capacity_or_a_cap(n, seed, cap_c, cap_s, method):
    value, calls, sms, feasible = _instance(n, seed)
    plan = allocate(value, calls, sms, feasible, cap_c, cap_s, method=method)
    _respects(plan, value, calls, sms, feasible, cap_c, cap_s)


def test_fast_method_is_close_and_deterministic_on_a_larger_book(monkeypatch):
    # Force the price search onto a sample, as on a large book.
    monkeypatch.setattr(allocate_module, "PRICE_SAMPLE", 500)
    value, calls, sms, feasible = _instance(3000, 7)
    cap_c, cap_s = 1500, 1800
    first = allocate(value, calls, sms, feasible, cap_c, cap_s, method="lagrange")
    again = allocate(value, calls, sms, feasible, cap_c, cap_s, method="lagrange")
    np.testing.assert_array_equal(first.choice, again.choice)
    _respects(first, value, calls, sms, feasible, cap_c, cap_s)
    exact = allocate(value, calls, sms, feasible, cap_c, cap_s, method="exact")
    assert first.objective <= exact.objective + 1e-6 <= first.upper_bound + 1e-6
    assert first.gap < 0.01
    # the capacity binds: the plan uses almost all of it
    assert first.calls_used >= 0.98 * cap_c


def test_unlimited_capacity_gives_each_account_its_best_option():
    value, calls, sms, feasible = _instance(50, 3)
    plan = allocate(value, calls, sms, feasible, 10**6, 10**6)
    best = np.where(feasible, value, -np.inf).max(axis=1)
    np.testing.assert_allclose(value[np.arange(50), plan.choice], best)
    assert plan.gap == 0


def test_zero_capacity_contacts_no_one():
    value, calls, sms, feasible = _instance(20, 4)
    plan = allocate(value, calls, sms, feasible, 0, 0, method="lagrange")
    assert (plan.choice == 0).all() and plan.calls_used == 0


def test_bad_input_is_refused_with_a_clear_message():
    value, calls, sms, feasible = _instance(3, 0)
    feasible[1, 0] = False
    with pytest.raises(ValueError, match="row 1 has no feasible option"):
        allocate(value, calls, sms, feasible, 1, 1)
    with pytest.raises(ValueError, match="shape"):
        allocate(value[:, :2], calls, sms, feasible, 1, 1)
    with pytest.raises(ValueError, match="capacity must be >= 0"):
        allocate(*_instance(3, 0), -1, 1)
    with pytest.raises(ValueError, match="unknown method"):
        allocate(*_instance(3, 0), 1, 1, method="simplex")

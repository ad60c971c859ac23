"""Benchmark: plan a book under daily capacity with the value-based allocation (speed, memory, gap).

Usage::

    python benchmarks/bench_allocate.py                    # 1M accounts
    python benchmarks/bench_allocate.py --accounts 200000 --method exact
    python benchmarks/bench_allocate.py --offers           # value mode: offers by value, then allocate

A synthetic book: per account four options (no contact, low, medium, high
intensity using 0/1/3/6 calls and 0/2/3/4 texts over the 7-day horizon),
whose value is a concave incremental recovery of the arrears minus the
contact cost; 10% of accounts may not take the high option (a legal cap
already used up), 5% may take none (suppressed). Capacity: calls for 40%
and texts for 50% of what every account's own best option would use, so
both bind. Prints seconds, peak memory, capacity used and the proven gap to
the optimum. Target: 1M accounts in under 60 s on 2 cores.

With ``--offers`` the option values come from the value mode's own code
instead: synthetic scores (arrears, willingness, ability, capacity, short
shock), the offer values of :func:`pipeline.value_plan.offer_values` (4
intensities x 5 offers), the best allowed offer per intensity (10% of
accounts in hardship), contact costs, then the allocation.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np

from pipeline.allocate import allocate

CALLS = np.array([0, 1, 3, 6])
SMS = np.array([0, 2, 3, 4])


def synthetic_options(n: int, seed: int = 0):
    """Return value, calls, sms and feasible arrays of a synthetic book of ``n`` accounts."""
    rng = np.random.default_rng(seed)
    arrears = rng.lognormal(6.0, 1.0, n)
    lift = rng.beta(2, 8, n)  # share of arrears contact can move
    effect = np.array([0.0, 0.45, 0.8, 1.0])  # concave in intensity
    cost = 0.8 * CALLS + 0.05 * SMS
    value = arrears[:, None] * lift[:, None] * effect[None, :] * 0.2 - cost[None, :]
    feasible = np.ones((n, 4), dtype=bool)
    feasible[rng.random(n) < 0.10, 3] = False
    feasible[rng.random(n) < 0.05, 1:] = False
    calls = np.broadcast_to(CALLS, (n, 4))
    sms = np.broadcast_to(SMS, (n, 4))
    return value, calls, sms, feasible


def value_mode_options(n: int, seed: int = 0):
    """Return the value mode's options for ``n`` synthetic scored accounts."""
    import pandas as pd

    from pipeline.value_mode import allowed_offers, packaged_value_settings
    from pipeline.value_plan import ValueAllocation, best_offers, offer_costs, offer_values

    rng = np.random.default_rng(seed)
    scored = pd.DataFrame(
        {
            "arrears": rng.lognormal(6.0, 1.0, n),
            "p_willingness": rng.beta(3, 2, n),
            "p_ability": rng.beta(2, 2, n),
            "capacity": np.where(rng.random(n) < 0.7, rng.lognormal(4.5, 0.5, n), np.nan),
            "short_shock": np.where(rng.random(n) < 0.1, rng.random(n), 0.0),
        }
    )
    settings = {**packaged_value_settings(), "calls_per_day": 1, "sms_per_day": 1}
    cfg = ValueAllocation.model_validate(settings)
    hardship = rng.random(n) < 0.1
    recovery, _ = offer_values(scored, cfg)
    _, net = best_offers(recovery, offer_costs(cfg), allowed_offers(hardship, hardship))
    del recovery
    calls = np.broadcast_to(CALLS, (n, 4))
    sms = np.broadcast_to(SMS, (n, 4))
    value = net - net[:, :1] - (cfg.cost_per_call * calls + cfg.cost_per_sms * sms)
    value[:, 0] = 0.0
    feasible = np.ones((n, 4), dtype=bool)
    feasible[hardship, 2:] = False
    return value, calls, sms, feasible


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--method", default="auto", choices=["auto", "exact", "lagrange"])
    parser.add_argument("--offers", action="store_true", help="time the value mode's offers too")
    args = parser.parse_args()
    t_start = time.perf_counter()
    build = value_mode_options if args.offers else synthetic_options
    value, calls, sms, feasible = build(args.accounts)
    t_options = time.perf_counter() - t_start
    rows = np.arange(args.accounts)
    own = np.where(feasible, value, -np.inf).argmax(axis=1)
    cap_c = 0.4 * calls[rows, own].sum()
    cap_s = 0.5 * sms[rows, own].sum()
    t0 = time.perf_counter()
    plan = allocate(value, calls, sms, feasible, cap_c, cap_s, method=args.method)
    seconds = time.perf_counter() - t0
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = kb / 1024**2 if sys.platform != "darwin" else kb / 1024**3
    print(
        f"allocate{' (value mode offers)' if args.offers else ''}: {args.accounts:,} accounts "
        f"x 4 options, options {t_options:.1f} s, method {plan.method} {seconds:.1f} s, "
        f"peak {peak:.2f} GB; calls {plan.calls_used:,}/{cap_c:,.0f}, "
        f"texts {plan.sms_used:,}/{cap_s:,.0f}; objective {plan.objective:,.0f}, "
        f"bound {plan.upper_bound:,.0f}, gap {plan.gap:.2e}"
    )


if __name__ == "__main__":
    main()

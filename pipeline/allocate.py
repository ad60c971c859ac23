"""Choose one option per account to maximise value under shared contact capacity.

The problem: accounts ``i`` each take exactly one of ``K`` options ``k`` (a
contact intensity with its best offer; option 0 is usually "no contact").
Option ``k`` of account ``i`` is worth ``value[i, k]`` (expected incremental
recovery minus contact cost), uses ``calls[i, k]`` calls and ``sms[i, k]``
texts over the plan's horizon, and is allowed only where ``feasible[i, k]``
(the account's legal and policy caps). Total calls and texts must stay within
the team's capacity. This is a multiple-choice knapsack with two resources.

Two methods, both returning a feasible plan with a proven bound:

- ``exact``: the integer program through HiGHS (:func:`scipy.optimize.milp`),
  optimal (or within the solver's reported MIP gap if it hits its time limit);
  for small books and for checking the fast method.
- ``lagrange``: prices ``lam`` per call and ``mu`` per text are searched so
  that every account's own best option ``argmax_k value - lam calls - mu sms``
  fits the capacity; a greedy pass then spends what capacity is left on the
  best upgrades. By weak duality ``sum_i max_k (value - lam calls - mu sms) +
  lam C + mu S`` bounds the optimum from above, so the plan's gap to the
  optimum is at most ``(bound - objective) / bound``, reported with every
  plan. Vectorised; a million accounts take seconds.

``auto`` uses ``exact`` up to :data:`EXACT_MAX_VARIABLES` account-options and
``lagrange`` above.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

#: ``auto`` solves the integer program exactly up to this many account-options.
EXACT_MAX_VARIABLES = 2_000
_BISECTIONS = 24
#: Accounts the prices are searched on (a fixed random sample when the book is larger).
PRICE_SAMPLE = 20_000
#: Bisection steps per price when refining the sample's prices on the whole book.
REFINE_BISECTIONS = 10


@dataclass(frozen=True)
class Allocation:
    """A chosen option per account, its value, and the proof of how good it is."""

    choice: np.ndarray
    objective: float
    upper_bound: float
    gap: float
    calls_used: int
    sms_used: int
    method: str
    seconds: float


def _check(value, calls, sms, feasible, calls_capacity, sms_capacity):
    value = np.asarray(value, dtype=np.float64)
    shapes = {np.shape(a) for a in (value, calls, sms, feasible)}
    if len(shapes) != 1 or value.ndim != 2:
        raise ValueError(
            f"value, calls, sms and feasible must share one (n, K) shape, got {shapes}"
        )
    if not np.isfinite(value).all():
        raise ValueError("value must be finite for every account and option")
    calls = np.asarray(calls, dtype=np.int64)
    sms = np.asarray(sms, dtype=np.int64)
    if (calls < 0).any() or (sms < 0).any():
        raise ValueError("calls and sms per option must be >= 0")
    if calls_capacity < 0 or sms_capacity < 0:
        raise ValueError(f"capacity must be >= 0, got calls {calls_capacity}, sms {sms_capacity}")
    feasible = np.asarray(feasible, dtype=bool)
    free = feasible & (calls == 0) & (sms == 0)
    if len(value) and not free.any(axis=1).all():
        bad = int(np.flatnonzero(~free.any(axis=1))[0])
        raise ValueError(
            f"account row {bad} has no feasible option that uses no capacity; "
            "every account needs one (no contact) so that a plan always exists"
        )
    return value, calls, sms, feasible


def allocate(
    value: np.ndarray,
    calls: np.ndarray,
    sms: np.ndarray,
    feasible: np.ndarray,
    calls_capacity: float,
    sms_capacity: float,
    method: str = "auto",
    time_limit: float = 60.0,
) -> Allocation:
    """Choose one feasible option per account maximising total value within capacity.

    Parameters
    ----------
    value : numpy.ndarray
        (n, K) worth of each option (incremental recovery minus contact cost).
    calls, sms : numpy.ndarray
        (n, K) non-negative whole calls and texts each option uses.
    feasible : numpy.ndarray
        (n, K) bool: the option is within the account's caps. Every account
        needs a feasible option that uses no capacity.
    calls_capacity, sms_capacity : float
        Total calls and texts available over the plan's horizon.
    method : {"auto", "exact", "lagrange"}
        See the module docstring.
    time_limit : float
        Seconds the exact solver may take.

    Returns
    -------
    Allocation
        ``choice`` (n,) option index per account; ``objective`` its total
        value; ``upper_bound`` a proven bound on the optimum; ``gap`` the
        relative distance between them (0 when proven optimal).

    Raises
    ------
    ValueError
        On inconsistent shapes, negative use or capacity, non-finite values,
        an account with no free option, or an unknown method.
    """
    t0 = time.perf_counter()
    value, calls, sms, feasible = _check(value, calls, sms, feasible, calls_capacity, sms_capacity)
    if method == "auto":
        method = "exact" if value.size <= EXACT_MAX_VARIABLES else "lagrange"
    if method == "exact":
        choice, bound = _exact(
            value, calls, sms, feasible, calls_capacity, sms_capacity, time_limit
        )
    elif method == "lagrange":
        choice, bound = _lagrange(value, calls, sms, feasible, calls_capacity, sms_capacity)
    else:
        raise ValueError(f"unknown method {method!r}: use auto, exact or lagrange")
    rows = np.arange(len(value))
    objective = float(value[rows, choice].sum())
    bound = max(bound, objective)
    gap = (bound - objective) / abs(bound) if bound else 0.0
    return Allocation(
        choice=choice,
        objective=objective,
        upper_bound=float(bound),
        gap=float(max(gap, 0.0)),
        calls_used=int(calls[rows, choice].sum()),
        sms_used=int(sms[rows, choice].sum()),
        method=method,
        seconds=round(time.perf_counter() - t0, 3),
    )


def _exact(value, calls, sms, feasible, cap_c, cap_s, time_limit):
    """Solve the integer program with HiGHS; return the choice and a proven bound."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_array

    n, k = value.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0.0
    nk = n * k
    one = csr_array((np.ones(nk), (np.repeat(np.arange(n), k), np.arange(nk))), shape=(n, nk))
    use = np.vstack([calls.ravel(), sms.ravel()]).astype(np.float64)
    constraints = [
        LinearConstraint(one, 1.0, 1.0),
        LinearConstraint(use, -np.inf, np.array([cap_c, cap_s], dtype=np.float64)),
    ]
    res = milp(
        -value.ravel(),
        integrality=np.ones(nk),
        bounds=Bounds(np.zeros(nk), feasible.ravel().astype(np.float64)),
        constraints=constraints,
        options={"time_limit": float(time_limit), "mip_rel_gap": 1e-9},
    )
    if res.x is None:  # cannot happen: "no contact" for everyone is feasible
        raise RuntimeError(f"the allocation solver found no plan: {res.message}")
    choice = np.asarray(res.x).reshape(n, k).argmax(axis=1)
    objective = float(value[np.arange(n), choice].sum())
    gap = float(getattr(res, "mip_gap", 0.0) or 0.0) if res.status != 0 else 0.0
    # HiGHS reports |primal - dual| / |primal|: turn it back into a bound.
    return choice, objective + gap * abs(objective)


def _best(masked, calls, sms, lam, mu):
    """Return each account's best option at prices (lam, mu), and its priced value.

    The arrays are option-major, (K, n): the loop runs over the few options,
    each step vectorised over all accounts (much faster than argmax over a
    short second axis).
    """
    best = masked[0] - lam * calls[0] - mu * sms[0]
    k = np.zeros(best.shape, dtype=np.int64)
    for j in range(1, len(masked)):
        adj = masked[j] - lam * calls[j] - mu * sms[j]
        better = adj > best
        k[better] = j
        np.maximum(best, adj, out=best)
    return k, best


def _used(use, k):
    return float(np.take_along_axis(use, k[None, :], axis=0).sum())


def _fit_price(masked, own, other, cap, other_price, lo, hi, iters):
    """Return the smallest price of ``own`` in [lo, hi] whose choices fit ``cap``, else None.

    ``_best`` is symmetric in its two resources, so one function prices both.
    """
    if _used(own, _best(masked, own, other, lo, other_price)[0]) <= cap:
        return lo
    if _used(own, _best(masked, own, other, hi, other_price)[0]) > cap:
        return None
    for _ in range(iters):
        mid = (lo + hi) / 2
        if _used(own, _best(masked, own, other, mid, other_price)[0]) <= cap:
            hi = mid
        else:
            lo = mid
    return hi


def _prices(masked, calls, sms, cap_c, cap_s):
    """Return prices (lam, mu) under which the accounts' own best choices fit both capacities.

    Nested bisection: the text price outside, the call price inside.
    """
    spread = float(np.ptp(np.where(np.isfinite(masked), masked, 0.0)) + 1.0)

    def lam_at(mu):
        return _fit_price(masked, calls, sms, cap_c, mu, 0.0, spread, _BISECTIONS)

    lam = lam_at(0.0)
    if _used(sms, _best(masked, calls, sms, lam, 0.0)[0]) <= cap_s:
        return lam, 0.0
    lo, hi = 0.0, spread
    lam_hi = lam_at(hi)
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        lam_mid = lam_at(mid)
        if _used(sms, _best(masked, calls, sms, lam_mid, mid)[0]) <= cap_s:
            hi, lam_hi = mid, lam_mid
        else:
            lo = mid
    return lam_hi, hi


def _refine(masked, calls, sms, cap_c, cap_s, lam, mu):
    """Adjust a sample's prices on the whole book: one bisection per resource, in turn.

    Each step searches x/2 .. 2x (+ a little) for the price that just fits its
    own resource with the other price fixed; a step that finds none keeps the
    price (the repair pass makes the plan fit whatever the prices).
    """
    for _ in range(2):
        got = _fit_price(masked, calls, sms, cap_c, mu, lam / 2, 2 * lam + 1e-6, REFINE_BISECTIONS)
        lam = lam if got is None else got
        got = _fit_price(masked, sms, calls, cap_s, lam, mu / 2, 2 * mu + 1e-6, REFINE_BISECTIONS)
        mu = mu if got is None else got
    return lam, mu


def _lagrange(value, calls, sms, feasible, cap_c, cap_s):
    """Price both resources so each account's own choice fits, then repair and fill.

    On a large book the prices are searched on a fixed random sample of
    :data:`PRICE_SAMPLE` accounts (capacities scaled to it), then refined on
    the whole book (:func:`_refine`). Any prices give a valid bound;
    the repair and fill passes make the plan fit exactly.
    """
    n = len(value)
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0.0
    masked = np.ascontiguousarray(np.where(feasible, value, -np.inf).T)
    c_t = np.ascontiguousarray(calls.T, dtype=np.float64)
    s_t = np.ascontiguousarray(sms.T, dtype=np.float64)
    if n > PRICE_SAMPLE:
        rows = np.sort(np.random.default_rng(0).choice(n, PRICE_SAMPLE, replace=False))
        scale = PRICE_SAMPLE / n
        lam, mu = _prices(masked[:, rows], c_t[:, rows], s_t[:, rows], cap_c * scale, cap_s * scale)
        lam, mu = _refine(masked, c_t, s_t, cap_c, cap_s, lam, mu)
    else:
        lam, mu = _prices(masked, c_t, s_t, cap_c, cap_s)
    choice, priced = _best(masked, c_t, s_t, lam, mu)
    del masked, c_t, s_t
    bound = float(priced.sum() + lam * cap_c + mu * cap_s)
    choice = _repair(value, calls, sms, feasible, choice, cap_c, cap_s)
    choice = _fill(value, calls, sms, feasible, choice, cap_c, cap_s)
    return choice, bound


def _repair(value, calls, sms, feasible, choice, cap_c, cap_s):
    """Downgrade the accounts that lose least per unit of capacity freed until the plan fits."""
    rows = np.arange(len(value))
    over_c = calls[rows, choice].sum() - cap_c
    over_s = sms[rows, choice].sum() - cap_s
    if over_c <= 0 and over_s <= 0:
        return choice
    loss = value[rows, choice][:, None] - value
    fc = calls[rows, choice][:, None] - calls
    fs = sms[rows, choice][:, None] - sms
    freed = np.maximum(fc, 0) / max(over_c, 1) * (over_c > 0) + np.maximum(fs, 0) / max(
        over_s, 1
    ) * (over_s > 0)
    ok = feasible & (fc >= 0) & (fs >= 0) & (freed > 0)
    ratio = np.where(ok, np.maximum(loss, 0.0) / np.where(ok, freed, 1.0), np.inf)
    best = ratio.argmin(axis=1)
    cand = np.flatnonzero(np.isfinite(ratio[rows, best]))
    order = cand[np.argsort(ratio[cand, best[cand]], kind="stable")]
    got_c = np.cumsum(fc[order, best[order]])
    got_s = np.cumsum(fs[order, best[order]])
    enough = (got_c >= over_c) & (got_s >= over_s)
    stop = int(np.argmax(enough)) + 1 if enough.any() else len(order)
    out = choice.copy()
    out[order[:stop]] = best[order[:stop]]
    return out


def _fill(value, calls, sms, feasible, choice, cap_c, cap_s):
    """Spend the capacity left on the upgrades worth most per unit of capacity, best first."""
    rows = np.arange(len(value))
    left_c = cap_c - calls[rows, choice].sum()
    left_s = cap_s - sms[rows, choice].sum()
    dv = value - value[rows, choice][:, None]
    dc = calls - calls[rows, choice][:, None]
    ds = sms - sms[rows, choice][:, None]
    weight = np.maximum(dc, 0) / max(left_c, 1) + np.maximum(ds, 0) / max(left_s, 1)
    ratio = np.where(feasible & (dv > 0), dv / np.maximum(weight, 1e-12), -np.inf)
    best = ratio.argmax(axis=1)
    gain = ratio[rows, best]
    cand = np.flatnonzero(np.isfinite(gain))
    if not len(cand):
        return choice
    order = cand[np.argsort(-gain[cand], kind="stable")]
    take_c = np.cumsum(dc[order, best[order]])
    take_s = np.cumsum(ds[order, best[order]])
    fits = (take_c <= left_c) & (take_s <= left_s)
    stop = len(order) if fits.all() else int(np.argmin(fits))
    out = choice.copy()
    out[order[:stop]] = best[order[:stop]]
    return out


__all__ = ["EXACT_MAX_VARIABLES", "Allocation", "allocate"]

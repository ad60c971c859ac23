"""The value mode of the policy engine: the plan step that chooses intensity and offer by value.

:func:`assign_value_plans` is :func:`pipeline.plan.assign_plans` with one more
step after compliance, :func:`choose_by_value`: for every account outside the
control group and not suppressed, the options are the four intensities, each
with its best offer among those the account may get; their caps are the
policy's intensity caps cut by the plan's own contact limits (the law of the
account's jurisdiction, the contact log, holds) and by the hardship maximum;
the team's capacity over the plan's horizon, less what the control group
uses, is shared by :func:`pipeline.allocate.allocate`. The chosen plan goes
through the contact limits once more, so its caps, holds and limit reasons
are the law's.
"""

from __future__ import annotations

import logging
from functools import partial
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from features.vocab import CONTACT_INTENSITIES, OUTPUT_OFFERS
from pipeline.allocate import Allocation, allocate
from pipeline.compliance import (
    FORBEARANCE_OFFERS,
    HARDSHIP_FORBIDDEN_OFFERS,
    PROFILES,
    profile_arrays,
)
from pipeline.control import explore_draw, tier_shares
from pipeline.plan import assign_plans
from pipeline.plan_compliance import apply_contact_limits
from pipeline.policy import Policy, PolicyError
from pipeline.value_plan import (
    VALUE_OFFERS,
    ValueAllocation,
    best_offers,
    offer_costs,
    offer_values,
)

log = logging.getLogger(__name__)

#: The packaged value-mode settings, added to a policy that has none (replay, examples).
VALUE_ALLOCATION_FILE = "value_allocation.yaml"

_OFFER_CODE = np.array([OUTPUT_OFFERS.index(o) for o in VALUE_OFFERS])


def allowed_offers(hardship: np.ndarray, difficulty: np.ndarray) -> np.ndarray:
    """Return (n, offers) bool: the value offers each account may get under the compliance rules.

    Hardship never gets an offer of :data:`pipeline.compliance.HARDSHIP_FORBIDDEN_OFFERS`;
    difficulty (hardship, or low ability under a forbearance-first profile)
    gets forbearance (:data:`pipeline.compliance.FORBEARANCE_OFFERS`) or a
    plain reminder only.
    """
    names = np.array(VALUE_OFFERS, dtype=object)
    forbidden = np.isin(names, list(HARDSHIP_FORBIDDEN_OFFERS))
    forbearance = np.isin(names, [*FORBEARANCE_OFFERS, "reminder"])
    out = np.ones((len(hardship), len(names)), dtype=bool)
    out &= ~(np.asarray(hardship, bool)[:, None] & forbidden[None, :])
    out &= ~(np.asarray(difficulty, bool)[:, None] & ~forbearance[None, :])
    return out


def _difficulty(steps, scored, acc, history, policy: Policy):
    """Return (hardship, difficulty) per account, as the plan's status rules read them."""
    flag = acc["hardship"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    hardship = flag | history["hardship_log"].to_numpy(bool)
    juris = steps["jurisdiction"]
    threshold = juris.map({j: policy.threshold_for(j) for j in PROFILES}).to_numpy(np.float64)
    low = profile_arrays(juris)["forbearance_for_low_ability"].to_numpy(bool) & (
        scored["p_ability"].to_numpy(dtype=np.float64) < threshold
    )
    return hardship, hardship | low


def value_options(steps, scored, acc, history, as_of, policy: Policy):
    """Return the options of every account: value, calls, sms, feasible, best offer, eligible.

    The calls and texts of intensity ``k`` are what the plan's own contact
    limits (:func:`pipeline.plan_compliance.apply_contact_limits`) leave of that
    intensity's caps: the law and the contact log bind every option.
    """
    cfg = policy.value_allocation
    n = len(steps)
    caps_c = np.array([policy.intensity_caps[i].max_calls_7d for i in CONTACT_INTENSITIES])
    caps_s = np.array([policy.intensity_caps[i].max_sms_7d for i in CONTACT_INTENSITIES])
    hardship, difficulty = _difficulty(steps, scored, acc, history, policy)
    eligible = ~steps["control_group"].to_numpy(bool) & steps["suppressed_reason"].isna().to_numpy()
    calls = np.zeros((n, len(CONTACT_INTENSITIES)), dtype=np.int64)
    sms = np.zeros_like(calls)
    for k in range(1, len(CONTACT_INTENSITIES)):
        trial = steps.assign(
            intensity=np.where(eligible, k, steps["intensity"].to_numpy()),
            calls=np.where(eligible, caps_c[k], steps["calls"].to_numpy()),
            sms=np.where(eligible, caps_s[k], steps["sms"].to_numpy()),
        )
        lawful = apply_contact_limits(trial, acc, history, as_of, policy)
        calls[:, k] = lawful["calls"].to_numpy(np.int64)
        sms[:, k] = lawful["sms"].to_numpy(np.int64)
    feasible = np.ones_like(calls, dtype=bool)
    hard_max = CONTACT_INTENSITIES.index(policy.overrides.hardship.max_intensity)
    feasible[hardship, hard_max + 1 :] = False
    feasible[~eligible, 1:] = False
    recovery, _ = offer_values(scored, cfg)
    offer, net = best_offers(recovery, offer_costs(cfg), allowed_offers(hardship, difficulty))
    value = net - net[:, :1] - (cfg.cost_per_call * calls + cfg.cost_per_sms * sms)
    value[:, 0] = 0.0
    return value, calls, sms, feasible, offer, eligible


def lawful_intensities(calls: np.ndarray, sms: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    """Return (n, K) bool: feasible (hardship's maximum) and, above none, with contact left by the law.

    Examples
    --------
    >>> calls, sms = np.array([[0, 1, 2, 3], [0, 0, 0, 0]]), np.zeros((2, 4), dtype=int)
    >>> lawful_intensities(calls, sms, np.ones((2, 4), dtype=bool)).sum(axis=1).tolist()
    [4, 1]
    """
    return feasible & ((calls + sms > 0) | (np.arange(calls.shape[1]) == 0)[None, :])


def explore(uniform, tier, calls, sms, lawful, policy: Policy, cap_c: int, cap_s: int):
    """Return per eligible row the explored intensity (-1: none explored) and its probability.

    ``explore_share`` of the eligible accounts outside the control group get
    an intensity drawn uniformly among their lawful ones
    (:func:`pipeline.control.explore_draw`, on ``uniform``: the control
    group's draw per episode; ``tier`` sets the control share); ``lawful``
    marks the lawful ones (:func:`lawful_intensities`). Explored rows use the
    capacity first; if they need more than there is, those with the smallest
    draws are kept while they fit (a random share, not by value).
    """
    cfg = policy.value_allocation
    n = len(calls)
    if cfg.explore_share <= 0 or n == 0:
        return np.full(n, -1, dtype=np.int64), np.full(n, np.nan)
    u = np.asarray(uniform, dtype=np.float64)
    k, prob = explore_draw(u, tier_shares(policy, np.asarray(tier)), cfg.explore_share, lawful)
    rows = np.flatnonzero(k >= 0)
    rows = rows[np.argsort(u[rows], kind="stable")]
    fits = (np.cumsum(calls[rows, k[rows]]) <= cap_c) & (np.cumsum(sms[rows, k[rows]]) <= cap_s)
    stop = len(rows) if fits.all() else int(np.argmin(fits))
    k[rows[stop:]], prob[rows[stop:]] = -1, np.nan
    return k, prob


def value_inputs(steps, value, calls, sms, feasible, lawful, eligible) -> dict:
    """Return what the book-wide decision reads: the eligible rows' options and the fixed use.

    Arrays are per eligible row, in the plan's order (``account_id`` names
    them; ``uniform``, ``tier`` and ``lawful`` are the episode's draw, the
    tier and the lawful intensities, for exploration); ``fixed_calls`` and ``fixed_sms`` are what the other rows
    (control group, suppressed) use. Inputs of parts of a book (shards)
    concatenate, their fixed uses add up.
    """
    rows = np.flatnonzero(eligible)
    return {
        "account_id": steps["account_id"].to_numpy()[rows],
        "uniform": steps["uniform"].to_numpy(np.float64)[rows],
        "tier": steps["tier"].to_numpy()[rows],
        "value": value[rows],
        "calls": calls[rows],
        "sms": sms[rows],
        "feasible": feasible[rows],
        "lawful": lawful[rows],
        "fixed_calls": int(steps["calls"].to_numpy()[~eligible].sum()),
        "fixed_sms": int(steps["sms"].to_numpy()[~eligible].sum()),
    }


def decide_by_value(inputs: dict, policy: Policy) -> tuple[dict, dict]:
    """Explore, then choose every other eligible row's intensity under the team's capacity.

    ``inputs``: :func:`value_inputs`. The capacity over the plan's horizon,
    less the fixed use, goes to the explored rows first (:func:`explore`),
    the rest is shared by :func:`pipeline.allocate.allocate`. Returns per
    eligible row ``choice``, ``arm`` (-1: not explored) and
    ``arm_probability``, and the allocation record.
    """
    cfg = policy.value_allocation
    days = cfg.horizon_days
    cap_c = max(cfg.calls_per_day * days - inputs["fixed_calls"], 0)
    cap_s = max(cfg.sms_per_day * days - inputs["fixed_sms"], 0)
    value, calls, sms, feasible = (inputs[k] for k in ("value", "calls", "sms", "feasible"))
    n = len(value)
    arm, arm_p = explore(
        inputs["uniform"], inputs["tier"], calls, sms, inputs["lawful"], policy, cap_c, cap_s
    )
    explored = np.flatnonzero(arm >= 0)
    rows = np.flatnonzero(arm < 0)
    left_c = cap_c - int(calls[explored, arm[explored]].sum())
    left_s = cap_s - int(sms[explored, arm[explored]].sum())
    plan: Allocation = allocate(
        value[rows], calls[rows], sms[rows], feasible[rows], left_c, left_s, method="auto"
    )
    log.info(
        "value allocation: %d accounts (+%d explored), calls %d/%d, texts %d/%d, value %.0f, "
        "gap %.2e (%s, %.1fs)", len(rows), len(explored), plan.calls_used, left_c,
        plan.sms_used, left_s, plan.objective, plan.gap, plan.method, plan.seconds,
    )  # fmt: skip
    choice = np.zeros(n, dtype=np.int64)
    choice[rows] = plan.choice
    choice[explored] = arm[explored]
    return {"choice": choice, "arm": arm, "arm_probability": arm_p}, {
        "accounts": int(len(rows)),
        "explored": int(len(explored)),
        "calls_capacity": int(cap_c),
        "sms_capacity": int(cap_s),
        "calls_used": plan.calls_used + cap_c - left_c,
        "sms_used": plan.sms_used + cap_s - left_s,
        "objective": plan.objective,
        "upper_bound": plan.upper_bound,
        "gap": plan.gap,
        "method": plan.method,
    }


def choose_by_value(
    steps, scored, acc, history, as_of, policy: Policy, decide=decide_by_value
) -> pd.DataFrame:
    """Plan step (after compliance): re-choose intensity and offer of eligible accounts by value.

    ``decide`` takes :func:`value_inputs` and the policy and returns the
    eligible rows' ``choice`` (and, when it explored, ``arm`` and
    ``arm_probability``) as a dict of arrays, and the allocation record
    (default :func:`decide_by_value`; a sharded run decides once for the
    whole book). Every eligible row gets ``lawful_arms``, how many
    intensities were lawful for it (:func:`lawful_intensities`; null for
    the control group and the suppressed).
    """
    value, calls, sms, feasible, offer, eligible = value_options(
        steps, scored, acc, history, as_of, policy
    )
    # Computed once: exploration draws among these, and lawful_arms counts them.
    lawful = lawful_intensities(calls, sms, feasible)
    inputs = value_inputs(steps, value, calls, sms, feasible, lawful, eligible)
    picked, record = decide(inputs, policy)
    n = len(steps)
    choice = np.zeros(n, dtype=np.int64)
    choice[eligible] = picked["choice"]
    arm, arm_p = np.full(n, -1, dtype=np.int64), np.full(n, np.nan)
    arm[eligible] = picked.get("arm", -1)
    arm_p[eligible] = picked.get("arm_probability", np.nan)
    out = _apply_choice(steps, acc, history, as_of, policy, choice, offer, calls, sms, eligible)
    names = np.array(CONTACT_INTENSITIES, dtype=object)
    count = lawful.sum(axis=1).astype(np.int64)
    out = out.assign(
        arm=np.where(arm >= 0, names[np.maximum(arm, 0)], out["arm"].to_numpy()),
        arm_probability=np.where(arm >= 0, arm_p, out["arm_probability"].to_numpy()),
        lawful_arms=pd.arrays.IntegerArray(count, ~eligible),
    )
    out.attrs["allocation"] = record
    return out


def _apply_choice(steps, acc, history, as_of, policy, choice, offer, calls, sms, eligible):
    """Give eligible rows the chosen intensity, its best offer and caps, under the law again."""
    caps_c = np.array([policy.intensity_caps[i].max_calls_7d for i in CONTACT_INTENSITIES])
    caps_s = np.array([policy.intensity_caps[i].max_sms_7d for i in CONTACT_INTENSITIES])
    rows = np.flatnonzero(eligible)
    k = steps["intensity"].to_numpy().copy()
    k[rows] = choice[rows]
    new_offer = steps["offer"].to_numpy().copy()
    # With no contact the offer is kept for an inbound call: the best one at low intensity.
    new_offer[rows] = _OFFER_CODE[offer[rows, np.maximum(choice[rows], 1)]]
    chosen = steps.assign(
        intensity=k,
        calls=np.where(eligible, caps_c[k], steps["calls"].to_numpy()),
        sms=np.where(eligible, caps_s[k], steps["sms"].to_numpy()),
        offer=new_offer,
    )
    # The same contact limits again, so the caps, holds and limit reasons are the law's;
    # then held to what the allocation counted (per-person shares can only shrink).
    out = apply_contact_limits(chosen, acc, history, as_of, policy)
    budget_c = steps["calls"].to_numpy().copy()
    budget_s = steps["sms"].to_numpy().copy()
    budget_c[rows] = calls[rows, choice[rows]]
    budget_s[rows] = sms[rows, choice[rows]]
    new_calls = np.minimum(out["calls"].to_numpy(), budget_c)
    return out.assign(
        calls=new_calls,
        sms=np.minimum(out["sms"].to_numpy(), budget_s),
        calls_day=np.minimum(out["calls_day"].to_numpy(), new_calls),
        calls_today=np.minimum(out["calls_today"].to_numpy(), new_calls),
    )


def assign_value_plans(
    scored: pd.DataFrame,
    accounts: pd.DataFrame,
    contacts: pd.DataFrame | None,
    as_of: pd.Timestamp,
    policy: Policy,
    policy_version: str,
    promises: pd.DataFrame | None = None,
    decide=decide_by_value,
) -> pd.DataFrame:
    """Return :func:`pipeline.plan.assign_plans`'s plan with intensity and offer chosen by value.

    ``decide``: as in :func:`choose_by_value` (a sharded run decides once for the book).

    Raises
    ------
    ValueError
        If the policy has no ``value_allocation`` section, or as ``assign_plans``.
    """
    if policy.value_allocation is None:
        raise ValueError("the policy has no value_allocation section; use the fixed-tier plan")
    choose = partial(choose_by_value, decide=decide)
    return assign_plans(
        scored, accounts, contacts, as_of, policy, policy_version, promises, choose=choose
    )


def packaged_value_settings() -> dict:
    """Return the packaged value settings (``value_allocation.yaml``) as a dict to adjust."""
    return yaml.safe_load(
        resources.files("pipeline").joinpath(VALUE_ALLOCATION_FILE).read_text("utf-8")
    )


def with_value_allocation(policy: Policy, path: Path | None = None) -> Policy:
    """Return the policy in value mode: its own section, else the packaged (or given) settings.

    Raises
    ------
    pipeline.policy.PolicyError
        If the file cannot be read or its settings are invalid.
    """
    if policy.value_allocation is not None:
        return policy
    if path is None:
        raw = resources.files("pipeline").joinpath(VALUE_ALLOCATION_FILE).read_text("utf-8")
        source = f"packaged {VALUE_ALLOCATION_FILE}"
    else:
        try:
            raw, source = Path(path).read_text("utf-8"), str(path)
        except OSError as exc:
            raise PolicyError(f"cannot read value settings {path}: {exc.strerror or exc}") from None
    try:
        cfg = ValueAllocation.model_validate(yaml.safe_load(raw))
    except (ValidationError, yaml.YAMLError) as exc:
        raise PolicyError(f"invalid value settings {source}: {exc}") from None
    return policy.model_copy(update={"value_allocation": cfg})


def at_capacity(policy: Policy, calls_7d: int, sms_7d: int) -> Policy:
    """Return the policy with its value mode's capacity set to these totals over the horizon.

    Raises
    ------
    ValueError
        If the policy has no ``value_allocation`` section.
    """
    cfg = policy.value_allocation
    if cfg is None:
        raise ValueError("the policy has no value_allocation section")
    days = cfg.horizon_days
    cfg = cfg.model_copy(
        update={"calls_per_day": int(calls_7d) // days, "sms_per_day": int(sms_7d) // days}
    )
    return policy.model_copy(update={"value_allocation": cfg})


def plans_at_equal_capacity(
    scored: pd.DataFrame,
    accounts: pd.DataFrame,
    contacts: pd.DataFrame | None,
    as_of: pd.Timestamp,
    fixed_policy: Policy,
    value_policy: Policy,
    policy_version: str,
    promises: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Plan by value with the calls and texts the fixed-tier policy would plan tonight.

    For a fair comparison: the value mode gets exactly the capacity (rounded
    down to whole calls and texts a day) that ``fixed_policy``'s own plan
    uses, so any gain comes from where the contacts go, not from more of them.
    """
    fixed = assign_plans(scored, accounts, contacts, as_of, fixed_policy, policy_version, promises)
    policy = at_capacity(value_policy, fixed["max_calls_7d"].sum(), fixed["max_sms_7d"].sum())
    return assign_value_plans(scored, accounts, contacts, as_of, policy, policy_version, promises)


__all__ = [
    "allowed_offers",
    "assign_value_plans",
    "at_capacity",
    "choose_by_value",
    "decide_by_value",
    "explore",
    "lawful_intensities",
    "plans_at_equal_capacity",
    "value_inputs",
    "value_options",
    "with_value_allocation",
]

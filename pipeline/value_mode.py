"""The value mode of the policy engine: the plan step that chooses intensity and offer by value.

:func:`assign_value_plans` is :func:`pipeline.plan.assign_plans` with one more
step after compliance, :func:`choose_by_value`: for every account outside the
control group and not suppressed, the options are the four intensities, each
with its best offer among those the account may get; their caps are the
policy's intensity caps cut to the legal caps of the contact log (and to the
hardship maximum); the team's capacity over the plan's horizon, less what the
control group uses, is shared by :func:`pipeline.allocate.allocate`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from features.vocab import CONTACT_INTENSITIES, OUTPUT_OFFERS
from pipeline.allocate import Allocation, allocate
from pipeline.compliance import FORBEARANCE_OFFERS, HARDSHIP_FORBIDDEN_OFFERS, call_caps
from pipeline.plan import assign_plans
from pipeline.policy import Policy
from pipeline.value_plan import VALUE_OFFERS, best_offers, offer_costs, offer_values

log = logging.getLogger(__name__)

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


def value_options(steps, scored, acc, contacts, as_of, policy: Policy):
    """Return the options of every account: value, calls, sms, feasible, best offer, eligible, legal day cap."""
    cfg = policy.value_allocation
    profile = policy.profile
    n = len(steps)
    caps_c = np.array([policy.intensity_caps[i].max_calls_7d for i in CONTACT_INTENSITIES])
    caps_s = np.array([policy.intensity_caps[i].max_sms_7d for i in CONTACT_INTENSITIES])
    legal = call_caps(_contacts(contacts), steps["account_id"], as_of, profile)
    no_cap = np.iinfo(np.int64).max
    legal_7d = legal["max_calls_7d_legal"].to_numpy(dtype=np.int64, na_value=no_cap)
    legal_day = legal["max_calls_day_legal"].to_numpy(dtype=np.int64, na_value=no_cap)
    calls = np.minimum(caps_c[None, :], legal_7d[:, None])
    sms = np.broadcast_to(caps_s, (n, len(caps_s))).copy()
    if profile.max_sms_7d is not None:
        sms = np.minimum(sms, profile.max_sms_7d)
    hardship = acc["hardship"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    difficulty = hardship.copy()
    if profile.forbearance_for_low_ability:
        difficulty |= scored["p_ability"].to_numpy(dtype=np.float64) < policy.low_ability_threshold
    eligible = ~steps["control_group"].to_numpy(bool) & steps["suppressed_reason"].isna().to_numpy()
    feasible = np.ones((n, len(CONTACT_INTENSITIES)), dtype=bool)
    hard_max = CONTACT_INTENSITIES.index(policy.overrides.hardship.max_intensity)
    feasible[hardship, hard_max + 1 :] = False
    feasible[~eligible, 1:] = False
    recovery, _ = offer_values(scored, cfg)
    offer, net = best_offers(recovery, offer_costs(cfg), allowed_offers(hardship, difficulty))
    cost = cfg.cost_per_call * calls + cfg.cost_per_sms * sms
    value = net - net[:, :1] - cost  # incremental over no contact
    value[:, 0] = 0.0
    calls[:, 0] = 0
    sms[:, 0] = 0
    return value, calls, sms, feasible, offer, eligible, legal_day


def choose_by_value(steps, scored, acc, contacts, as_of, policy: Policy) -> pd.DataFrame:
    """Plan step (after compliance): re-choose intensity and offer of eligible accounts by value."""
    cfg = policy.value_allocation
    value, calls, sms, feasible, offer, eligible, legal_day = value_options(
        steps, scored, acc, contacts, as_of, policy
    )
    days = cfg.horizon_days
    fixed_calls = int(steps["calls"].to_numpy()[~eligible].sum())
    fixed_sms = int(steps["sms"].to_numpy()[~eligible].sum())
    cap_c = max(cfg.calls_per_day * days - fixed_calls, 0)
    cap_s = max(cfg.sms_per_day * days - fixed_sms, 0)
    idx = np.flatnonzero(eligible)
    plan: Allocation = allocate(
        value[idx], calls[idx], sms[idx], feasible[idx], cap_c, cap_s, method="auto"
    )
    log.info(
        "value allocation: %d accounts, calls %d/%d, texts %d/%d, value %.0f, gap %.2e (%s, %.1fs)",
        len(idx), plan.calls_used, cap_c, plan.sms_used, cap_s, plan.objective, plan.gap,
        plan.method, plan.seconds,
    )  # fmt: skip
    k = steps["intensity"].to_numpy().copy()
    new_calls, new_sms = steps["calls"].to_numpy().copy(), steps["sms"].to_numpy().copy()
    new_offer = steps["offer"].to_numpy().copy()
    rows = idx
    k[rows] = plan.choice
    new_calls[rows] = calls[rows, plan.choice]
    new_sms[rows] = sms[rows, plan.choice]
    # With no contact the offer is kept for an inbound call: the best one at low intensity.
    chosen_offer = offer[rows, np.maximum(plan.choice, 1)]
    new_offer[rows] = _OFFER_CODE[chosen_offer]
    calls_day = steps["calls_day"].to_numpy().copy()
    calls_day[rows] = np.minimum(new_calls[rows], legal_day[rows])
    out = steps.assign(
        intensity=k,
        calls=new_calls,
        sms=new_sms,
        offer=new_offer,
        calls_day=calls_day,
    )
    out.attrs["allocation"] = {
        "accounts": int(len(idx)),
        "calls_capacity": int(cap_c),
        "sms_capacity": int(cap_s),
        "calls_used": plan.calls_used,
        "sms_used": plan.sms_used,
        "objective": plan.objective,
        "upper_bound": plan.upper_bound,
        "gap": plan.gap,
        "method": plan.method,
    }
    return out


def assign_value_plans(
    scored: pd.DataFrame,
    accounts: pd.DataFrame,
    contacts: pd.DataFrame | None,
    as_of: pd.Timestamp,
    policy: Policy,
    policy_version: str,
) -> pd.DataFrame:
    """Return :func:`pipeline.plan.assign_plans`'s plan with intensity and offer chosen by value.

    Raises
    ------
    ValueError
        If the policy has no ``value_allocation`` section, or as ``assign_plans``.
    """
    if policy.value_allocation is None:
        raise ValueError("the policy has no value_allocation section; use the fixed-tier plan")
    return assign_plans(
        scored, accounts, contacts, as_of, policy, policy_version, choose=choose_by_value
    )


def _contacts(contacts: pd.DataFrame | None) -> pd.DataFrame:
    if contacts is not None:
        return contacts
    return pd.DataFrame(
        {
            "account_id": pd.Series(dtype=object),
            "contact_at": pd.Series(dtype="datetime64[ns, UTC]"),
            "channel": pd.Series(dtype=object),
            "direction": pd.Series(dtype=object),
            "outcome": pd.Series(dtype=object),
        }
    )


__all__ = ["allowed_offers", "assign_value_plans", "choose_by_value", "value_options"]

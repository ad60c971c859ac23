"""Step 4 of the policy engine: statuses and the law's contact limits, per account's jurisdiction.

:func:`apply_compliance` applies to every plan, control group included:
:func:`apply_status_rules` (suppression, hardship and difficulty, from the
flags and the contact log), then :func:`apply_contact_limits` (the policy's
and the law's caps cut to what the log leaves; :mod:`pipeline.limits`). The
value mode (:mod:`pipeline.value_mode`) applies the contact limits again to
the intensities it tries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.vocab import SUPPRESSING_STATUSES
from pipeline.compliance import (
    FORBEARANCE_OFFERS,
    HARDSHIP_FORBIDDEN_OFFERS,
    PROFILES,
    contact_window,
    profile_arrays,
    suppressed_reason,
)
from pipeline.limits import LIMIT_REASONS, lawful_limits
from pipeline.plan_inputs import INTENSITY_CODE, OFFER_CODE, caps_table
from pipeline.policy import Policy


def apply_compliance(
    steps: pd.DataFrame,
    scored: pd.DataFrame,
    acc: pd.DataFrame,
    history: pd.DataFrame,
    as_of: pd.Timestamp,
    policy: Policy,
) -> pd.DataFrame:
    """Step 4, for everyone (control group included), under each account's own profile.

    Statuses first (:func:`apply_status_rules`: suppression, hardship,
    difficulty), then the caps the contact log leaves
    (:func:`apply_contact_limits`).
    """
    steps = steps.assign(
        jurisdiction=acc["jurisdiction"].to_numpy(), customer_id=acc["customer_id"].to_numpy()
    )
    steps = apply_status_rules(steps, scored, acc, history, policy)
    return apply_contact_limits(steps, acc, history, as_of, policy)


def apply_status_rules(
    steps: pd.DataFrame,
    scored: pd.DataFrame,
    acc: pd.DataFrame,
    history: pd.DataFrame,
    policy: Policy,
) -> pd.DataFrame:
    """Suppress, route hardship and difficulty to forbearance; flags and the log alike."""
    prof = profile_arrays(steps["jurisdiction"])
    intensity, offer = steps["intensity"].to_numpy(), steps["offer"].to_numpy()
    calls, sms = steps["calls"].to_numpy(), steps["sms"].to_numpy()
    caps_calls, caps_sms = caps_table(policy, "max_calls_7d"), caps_table(policy, "max_sms_7d")
    flag = acc["hardship"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    hardship = flag | history["hardship_log"].to_numpy(bool)
    threshold = steps["jurisdiction"].map({j: policy.threshold_for(j) for j in PROFILES})
    low = prof["forbearance_for_low_ability"].to_numpy(bool) & (
        scored["p_ability"].to_numpy(dtype=np.float64) < threshold.to_numpy(dtype=np.float64)
    )
    hard_offer = OFFER_CODE[policy.overrides.hardship.offer]
    to_forbearance = (hardship | low) & ~np.isin(offer, [OFFER_CODE[o] for o in FORBEARANCE_OFFERS])
    offer = np.where(to_forbearance, hard_offer, offer)
    hard_max = INTENSITY_CODE[policy.overrides.hardship.max_intensity]
    lowered = hardship & (
        (intensity > hard_max) | (calls > caps_calls[hard_max]) | (sms > caps_sms[hard_max])
    )
    intensity = np.where(hardship, np.minimum(intensity, hard_max), intensity)
    calls = np.where(hardship, np.minimum(calls, caps_calls[hard_max]), calls)
    sms = np.where(hardship, np.minimum(sms, caps_sms[hard_max]), sms)
    changed = hardship & (to_forbearance | lowered)

    flags = pd.DataFrame(
        {
            c: acc[c].astype("boolean").fillna(True).to_numpy(dtype=bool)
            for c in SUPPRESSING_STATUSES
        }
    )
    dispute_log = history["dispute_log"].to_numpy(bool) & ~flags["dispute_open"].to_numpy()
    flags["dispute_open"] = flags["dispute_open"].to_numpy() | dispute_log
    reason = suppressed_reason(flags).to_numpy()
    suppressed = pd.notna(reason)
    override = {s: OFFER_CODE[getattr(policy.overrides, s).offer] for s in SUPPRESSING_STATUSES}
    offer = np.where(suppressed, pd.Series(reason).map(override).to_numpy(), offer).astype(np.int64)
    # The hardship rule has the last word, over overrides too.
    forbidden = np.isin(offer, [OFFER_CODE[o] for o in HARDSHIP_FORBIDDEN_OFFERS])
    offer = np.where(hardship & forbidden, hard_offer, offer)
    reasons = {f"r_{s}": flags[s].to_numpy() for s in SUPPRESSING_STATUSES}
    reasons["r_dispute_open"] = reasons["r_dispute_open"] & ~dispute_log
    return steps.assign(
        intensity=np.where(suppressed, 0, intensity),
        offer=offer,
        calls=calls,
        sms=sms,
        suppressed_reason=reason,
        r_dispute_log=dispute_log,
        r_hardship=changed & flag,
        r_hardship_log=changed & ~flag,
        r_uk_conc_low_ability=to_forbearance & ~hardship,
        **reasons,
    )


def apply_contact_limits(
    steps: pd.DataFrame,
    acc: pd.DataFrame,
    history: pd.DataFrame,
    as_of: pd.Timestamp,
    policy: Policy,
) -> pd.DataFrame:
    """Cut the caps to the jurisdiction's settings and to what the contact log leaves."""
    juris = steps["jurisdiction"]
    calls, sms = steps["calls"].to_numpy(), steps["sms"].to_numpy()
    own = {j: policy.jurisdictions.get(j) for j in PROFILES}
    own_calls = juris.map({j: _or_no_cap(r and r.max_calls_7d) for j, r in own.items()}).to_numpy()
    own_sms = juris.map({j: _or_no_cap(r and r.max_sms_7d) for j, r in own.items()}).to_numpy()
    contactable = steps["intensity"].to_numpy() > 0
    by_override = contactable & ((calls > own_calls) | (sms > own_sms))
    limits = lawful_limits(
        pd.DataFrame(
            {
                "account_id": steps["account_id"].to_numpy(),
                # A person's allowance is shared within one jurisdiction's accounts.
                "customer_id": (steps["customer_id"].astype(str) + "|" + juris).to_numpy(),
                "calls": np.minimum(calls, own_calls),
                "sms": np.minimum(sms, own_sms),
                "contactable": contactable,
            }
        ),
        history,
        profile_arrays(juris),
        history["promise_hold_until"],
        as_of,
    )
    window = np.full(len(steps), None, dtype=object)
    for name in pd.unique(juris):
        rows = (juris == name).to_numpy()
        hours = policy.hours_for(name)
        window[rows] = contact_window(acc["timezone"][rows], PROFILES[name], hours).to_numpy()
    suppressed = pd.notna(steps["suppressed_reason"]).to_numpy()
    checked = {f"r_{c}": limits[c].to_numpy() for c in limits.columns if c in LIMIT_REASONS}
    return steps.assign(
        calls=limits["calls"].to_numpy(),
        sms=limits["sms"].to_numpy(),
        calls_day=limits["calls_day"].to_numpy(),
        calls_today=limits["calls_today"].to_numpy(),
        contact_hold_until=limits["contact_hold_until"].to_numpy(),
        contact_window=np.where(suppressed, None, window),
        third_party_contact_allowed=profile_arrays(juris)["third_party_contact_allowed"].to_numpy(),
        r_jurisdiction_override=by_override,
        **checked,
    )


def _or_no_cap(value: int | None) -> int:
    return np.iinfo(np.int64).max if value is None else int(value)

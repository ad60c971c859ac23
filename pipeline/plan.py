"""Turn scored accounts into contact plans and offers under a policy and the law.

:func:`assign_plans` is the policy engine the nightly scorer calls. It reads
as its steps, each a pure function of the working plan (one row per scored
account, in the scored order) with its own tests:

0. :func:`account_history`: what the whole contact log says about each
   account (:mod:`pipeline.contact_log`: usage in local days, statuses told
   to collectors, promises).
1. :func:`assign_tier`: the tier from the policy's willingness x ability
   rectangles, with its intensity, caps and offer.
2. :func:`apply_stage`: the DPD stage (early, mid, late) may step the
   intensity up (caps rise to those of the new intensity, never below the
   tier's own) and replace the tier's offer (e.g. late + able_unwilling ->
   legal_review); :func:`apply_broken_promises` steps it up again for each
   recently broken promise.
3. :func:`assign_control_group`: a reproducible random share
   (``control_share``, per tier if the tier sets one) gets the baseline
   treatment instead (the stage's ``baseline_intensity`` with its caps,
   ``control_offer`` and ``control_channels``). The draw is made once per
   delinquency episode (:mod:`pipeline.control`), so it holds every night
   until the account cures; control rows carry the plan they would have had
   (``treated_*``) and every row its ``plan_id``.
4. :func:`apply_compliance`, for everyone, control group included, under each
   account's own jurisdiction (:mod:`pipeline.plan_compliance`):
   :func:`~pipeline.plan_compliance.apply_status_rules` (suppression from
   the flags or a dispute in the log; hardship from the flag or the log, and
   low ability under ``uk_conc``, get forbearance and at most
   ``overrides.hardship.max_intensity``), then
   :func:`~pipeline.plan_compliance.apply_contact_limits` (policy and legal
   caps cut to what the log leaves, per person where the law says so, holds;
   :mod:`pipeline.limits`).
5. :func:`size_offers`: plans people can keep (:mod:`pipeline.offers`).

Every rule that cut a plan below its tier is listed in ``limit_reasons``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from features.vocab import CONTACT_INTENSITIES, OUTPUT_OFFERS
from pipeline.contact_log import log_statuses, log_usage, promise_holds
from pipeline.control import ARM_COLUMNS, TREATED_COLUMNS, draw_control, plan_id
from pipeline.limits import limit_reasons
from pipeline.offers import SIZED_OFFERS, size_installments, size_offer_terms
from pipeline.plan_compliance import apply_compliance
from pipeline.plan_inputs import (
    INTENSITY_CODE,
    OFFER_CODE,
    SCORED_COLUMNS,
    accounts_rows,
    caps_table,
    check_scored,
    contacts_or_empty,
)
from pipeline.policy import STAGES, Policy

__all__ = [
    "PLAN_COLUMNS",
    "SCORED_COLUMNS",
    "SIZED_OFFERS",
    "assign_plans",
    "size_installments",
]

#: Columns of the plan, in order (one row per scored account).
PLAN_COLUMNS: tuple[str, ...] = (
    "account_id",
    "risk_tier",
    "dpd_stage",
    "contact_intensity",
    "channel_order",
    "max_calls_7d",
    "max_sms_7d",
    "max_calls_day",
    "contact_window",
    "third_party_contact_allowed",
    "offer",
    "offer_installment",
    "offer_n_installments",
    "offer_first_due_date",
    "offer_step_amounts",
    "suppressed_reason",
    "expected_recovery",
    "control_group",
    "control_probability",
    "jurisdiction",
    "max_calls_today",
    "contact_hold_until",
    "limit_reasons",
    "policy_version",
    "plan_id",
    *TREATED_COLUMNS,
    *ARM_COLUMNS,
)

_OFFER_NAMES = np.array(OUTPUT_OFFERS, dtype=object)
_INTENSITY_NAMES = np.array(CONTACT_INTENSITIES, dtype=object)


def assign_plans(
    scored: pd.DataFrame,
    accounts: pd.DataFrame,
    contacts: pd.DataFrame | None,
    as_of: pd.Timestamp,
    policy: Policy,
    policy_version: str,
    promises: pd.DataFrame | None = None,
    choose: Callable[..., pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Give every scored account its tier, lawful contact plan, offer and control assignment.

    Parameters
    ----------
    scored : pandas.DataFrame
        One row per scored account: ``account_id``, ``dpd``, ``arrears``,
        ``p_willingness``, ``p_ability``, ``capacity`` (monthly amount shown
        payable, NaN if none), ``installment_amount`` (usual monthly
        installment) and optionally ``expected_share`` (E[coverage | pay];
        when absent or NaN, ``p_ability`` stands in, a lower bound of it).
    accounts : pandas.DataFrame
        The accounts table (contract flags, ``customer_id``, ``timezone``,
        optional ``jurisdiction``); must hold every scored account. Its other
        accounts count for per-person limits.
    contacts : pandas.DataFrame or None
        The whole contact log, including any contact at or after D (None: no
        contacts).
    as_of : pandas.Timestamp
        The as-of date D (tz-naive midnight); the plan covers days D..D+6.
    policy : Policy
        The validated policy.
    policy_version : str
        The policy's content hash, written into every row.
    promises : pandas.DataFrame, optional
        :func:`features.ledger.promise_states` as of D, for promise holds and
        broken promises (None: none judged).
    choose : callable, optional
        A step run after compliance, ``choose(steps, scored, acc, history,
        as_of, policy)``, that may re-choose intensity, caps and offer within
        what compliance allows (the value mode, :mod:`pipeline.value_mode`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PLAN_COLUMNS`, one row per row of ``scored``, in its
        order (RangeIndex). ``suppressed_reason`` and ``contact_window`` are
        None for suppressed / contactable accounts respectively;
        ``channel_order`` is a comma-separated list of the channels that
        remain usable ("" when none).

    Raises
    ------
    ValueError
        If a column is missing, a probability is outside [0, 1] or NaN, a
        dpd is missing, or a scored account is not in ``accounts``.
    """
    check_scored(scored)
    scored = scored.reset_index(drop=True)
    ids = scored["account_id"].astype(object)
    acc = accounts_rows(accounts, ids, policy.jurisdiction)
    history = account_history(accounts, contacts_or_empty(contacts), promises, ids, as_of, policy)
    steps = assign_tier(scored, policy)
    steps = apply_stage(steps, scored["dpd"], policy)
    steps = apply_broken_promises(steps, history["broken_promises"], policy)
    steps = assign_control_group(steps, as_of, policy, scored)
    steps = apply_compliance(steps, scored, acc, history, as_of, policy)
    if choose is not None:
        steps = choose(steps, scored, acc, history, as_of, policy)
    steps = size_offers(steps, scored, as_of, policy)
    return _publishable(steps, policy, policy_version)


def account_history(
    accounts: pd.DataFrame,
    contacts: pd.DataFrame,
    promises: pd.DataFrame | None,
    ids: pd.Series,
    as_of: pd.Timestamp,
    policy: Policy,
) -> pd.DataFrame:
    """Read what the whole contact log says about each account (see :mod:`pipeline.contact_log`)."""
    return pd.concat(
        [
            log_usage(contacts, accounts, ids, as_of),
            log_statuses(contacts, ids),
            promise_holds(promises, contacts, ids, as_of, policy.promises.broken_lookback_days),
        ],
        axis=1,
    )


def assign_tier(scored: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Step 1: place each account in the first tier whose rectangle holds it.

    Returns the working plan: ``account_id``, ``tier`` (index into
    ``policy.tiers``), ``intensity`` and ``offer`` (codes of
    :data:`features.vocab.CONTACT_INTENSITIES` / ``OUTPUT_OFFERS``), ``calls``
    and ``sms`` (7-day caps), ``source`` (whose channel order applies: a tier
    index, or ``len(policy.tiers)`` for the control group).
    """
    w = scored["p_willingness"].to_numpy(dtype=np.float64)
    a = scored["p_ability"].to_numpy(dtype=np.float64)
    tier = np.full(len(scored), -1, dtype=np.int64)
    for i, t in enumerate(policy.tiers):
        inside = _in_range(w, t.p_willingness) & _in_range(a, t.p_ability)
        tier[inside & (tier < 0)] = i
    if (tier < 0).any():  # cannot happen with a validated policy and checked scores
        raise ValueError("some accounts fall in no tier; is the policy validated?")
    tiers = policy.tiers
    return pd.DataFrame(
        {
            "account_id": scored["account_id"].astype(object).to_numpy(),
            "tier": tier,
            "intensity": np.array([INTENSITY_CODE[t.contact_intensity] for t in tiers])[tier],
            "calls": np.array([t.max_calls_7d for t in tiers], dtype=np.int64)[tier],
            "sms": np.array([t.max_sms_7d for t in tiers], dtype=np.int64)[tier],
            "offer": np.array([OFFER_CODE[t.offer] for t in tiers])[tier],
            "source": tier,
        }
    )


def apply_stage(steps: pd.DataFrame, dpd: pd.Series, policy: Policy) -> pd.DataFrame:
    """Step 2: the DPD stage steps the intensity up (caps never below the tier's) and may swap the offer."""
    dpd = np.asarray(dpd, dtype=np.float64)
    stages = [getattr(policy.dpd_stages, s) for s in STAGES]
    stage = np.select([dpd < stages[1].dpd[0], dpd < stages[2].dpd[0]], [0, 1], 2)
    tier_int = steps["intensity"].to_numpy()
    step = np.array([s.intensity_step for s in stages])[stage]
    top = len(CONTACT_INTENSITIES) - 1
    intensity = np.where(tier_int > 0, np.minimum(tier_int + step, top), 0)
    raised = intensity > tier_int
    calls, sms = steps["calls"].to_numpy(), steps["sms"].to_numpy()
    offer_table = np.array(
        [[OFFER_CODE[s.offers.get(t.name, t.offer)] for t in policy.tiers] for s in stages]
    )
    return steps.assign(
        stage=stage,
        intensity=intensity,
        calls=np.where(
            raised, np.maximum(calls, caps_table(policy, "max_calls_7d")[intensity]), calls
        ),
        sms=np.where(raised, np.maximum(sms, caps_table(policy, "max_sms_7d")[intensity]), sms),
        offer=offer_table[stage, steps["tier"].to_numpy()],
    )


def apply_broken_promises(steps: pd.DataFrame, broken: pd.Series, policy: Policy) -> pd.DataFrame:
    """Step 2b: each recently broken promise steps the intensity up (``promises.broken_intensity_step``)."""
    step = np.minimum(np.asarray(broken, dtype=np.int64) * policy.promises.broken_intensity_step, 3)
    current = steps["intensity"].to_numpy()
    intensity = np.where(current > 0, np.minimum(current + step, len(CONTACT_INTENSITIES) - 1), 0)
    raised = intensity > current
    calls, sms = steps["calls"].to_numpy(), steps["sms"].to_numpy()
    return steps.assign(
        intensity=intensity,
        calls=np.where(
            raised, np.maximum(calls, caps_table(policy, "max_calls_7d")[intensity]), calls
        ),
        sms=np.where(raised, np.maximum(sms, caps_table(policy, "max_sms_7d")[intensity]), sms),
    )


def assign_control_group(
    steps: pd.DataFrame, as_of: pd.Timestamp, policy: Policy, scored: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Step 3: a reproducible random share, drawn per delinquency episode, gets the baseline.

    ``scored`` gives each account's episode (``episode_days_current`` or
    ``dpd``); without it every account's episode is taken to start on D.
    """
    draw = draw_control(steps, scored, as_of, policy)
    control = draw["control_group"].to_numpy()
    stages = [getattr(policy.dpd_stages, s) for s in STAGES]
    baseline = np.array([INTENSITY_CODE[s.baseline_intensity] for s in stages])[
        steps["stage"].to_numpy()
    ]
    return steps.assign(
        control_group=control,
        control_probability=draw["control_probability"].to_numpy(),
        plan_id=plan_id(steps["account_id"], as_of),
        **{c: draw[c].to_numpy() for c in TREATED_COLUMNS},
        arm=np.where(control, "control", "plan").astype(object),
        arm_probability=np.where(control, draw["control_probability"].to_numpy(), np.nan),
        lawful_arms=pd.array(np.full(len(steps), np.nan), dtype="Int64"),  # set by value mode
        uniform=draw["uniform"].to_numpy(),
        intensity=np.where(control, baseline, steps["intensity"]),
        calls=np.where(control, caps_table(policy, "max_calls_7d")[baseline], steps["calls"]),
        sms=np.where(control, caps_table(policy, "max_sms_7d")[baseline], steps["sms"]),
        offer=np.where(control, OFFER_CODE[policy.control_offer], steps["offer"]),
        source=np.where(control, len(policy.tiers), steps["source"]),
    )


def size_offers(
    steps: pd.DataFrame, scored: pd.DataFrame, as_of: pd.Timestamp, policy: Policy
) -> pd.DataFrame:
    """Step 5: size plan offers within shown capacity and the policy's terms; expected recovery."""
    arrears = scored["arrears"].to_numpy(dtype=np.float64)
    terms = policy.offer_terms.model_dump()
    terms["fallback_installment_share"] = policy.fallback_installment_share
    sized = size_offer_terms(
        _OFFER_NAMES[steps["offer"].to_numpy()],
        arrears,
        scored["capacity"].to_numpy(dtype=np.float64),
        scored["installment_amount"].to_numpy(dtype=np.float64),
        terms,
        as_of,
    )
    share = scored["p_ability"].to_numpy(dtype=np.float64)
    if "expected_share" in scored.columns:
        given = scored["expected_share"].to_numpy(dtype=np.float64)
        share = np.where(np.isnan(given), share, given)
    w = scored["p_willingness"].to_numpy(dtype=np.float64)
    return steps.assign(
        offer=sized["offer"].map(OFFER_CODE).to_numpy(),
        offer_installment=sized["offer_installment"].to_numpy(),
        offer_n_installments=sized["offer_n_installments"].array,
        offer_first_due_date=sized["offer_first_due_date"].to_numpy(),
        offer_step_amounts=sized["offer_step_amounts"].to_numpy(),
        expected_recovery=arrears * w * np.clip(share, 0.0, 1.0),
    )


def _publishable(steps: pd.DataFrame, policy: Policy, policy_version: str) -> pd.DataFrame:
    """Turn the working plan's codes into the published columns :data:`PLAN_COLUMNS`."""
    intensity = steps["intensity"].to_numpy()
    calls, sms = steps["calls"].to_numpy(np.int64), steps["sms"].to_numpy(np.int64)
    channel_order = _channel_order(
        policy, steps["source"].to_numpy(), calls > 0, sms > 0, intensity > 0
    )
    tier_names = np.array([t.name for t in policy.tiers], dtype=object)
    out = steps.assign(
        risk_tier=tier_names[steps["tier"].to_numpy()],
        dpd_stage=np.array(STAGES, dtype=object)[steps["stage"].to_numpy()],
        contact_intensity=_INTENSITY_NAMES[intensity],
        channel_order=channel_order,
        max_calls_7d=calls,
        max_sms_7d=sms,
        max_calls_day=steps["calls_day"].to_numpy(np.int64),
        max_calls_today=steps["calls_today"].to_numpy(np.int64),
        offer=_OFFER_NAMES[steps["offer"].to_numpy()],
        limit_reasons=limit_reasons(steps),
        policy_version=policy_version,
    )
    return out[list(PLAN_COLUMNS)]


def _in_range(x: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    lo, hi = bounds
    upper = (x <= hi) if hi >= 1.0 else (x < hi)  # the top edge 1.0 is included
    return (x >= lo) & upper


def _channel_order(
    policy: Policy,
    source: np.ndarray,
    calls_ok: np.ndarray,
    sms_ok: np.ndarray,
    contactable: np.ndarray,
) -> np.ndarray:
    """Channel order per account, without channels whose cap is 0 (a small lookup table)."""
    orders = [t.channels for t in policy.tiers] + [policy.control_channels]
    table = []
    for channels in orders:
        for c_ok in (False, True):
            for s_ok in (False, True):
                kept = [
                    c
                    for c in channels
                    if not ((c == "call" and not c_ok) or (c == "sms" and not s_ok))
                ]
                table.append(",".join(kept))
    lookup = np.array(table, dtype=object)
    code = source * 4 + calls_ok.astype(np.int64) * 2 + sms_ok.astype(np.int64)
    return np.where(contactable, lookup[code], "").astype(object)

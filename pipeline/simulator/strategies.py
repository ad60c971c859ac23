"""Replay strategies: functions from a night's state to the plans a dialer follows.

A strategy is any callable ``(night: Night) -> pandas.DataFrame`` returning
plan rows (at least ``account_id``, ``max_calls_7d``, ``max_sms_7d``,
``max_calls_day``, ``offer``, ``offer_installment``; see
:data:`pipeline.plan.PLAN_COLUMNS`) for the accounts it wants contacted. Two
kinds ship:

* :func:`policy_strategy` with a model: what ``propensity score`` publishes
  (the same feature build, calibrated probabilities, :func:`pipeline.score.scored_frame`
  and :func:`pipeline.plan.assign_plans`), under any policy file.
* :func:`baseline_strategy` ``dpd_buckets``: the usual industry strategy,
  intensity by DPD bucket only (``dpd_buckets.yaml``), planned by the same
  :func:`~pipeline.plan.assign_plans`, so the same law applies to both.

* :func:`value_strategy` with a model: value mode (:mod:`pipeline.value_mode`),
  by default at the capacity the fixed-tier policy would plan that night.

Another strategy only needs to return plan rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: Baselines by the name ``propensity replay --baseline`` takes.
BASELINES: dict[str, Path] = {"dpd_buckets": Path(__file__).with_name("dpd_buckets.yaml")}


@dataclass(frozen=True)
class Night:
    """What a strategy may read on the night before ``as_of``'s contacts.

    ``tables`` holds the contract's tables with every event before ``as_of``;
    ``ledger`` has one row per account overdue at ``as_of``: ``account_id``,
    ``dpd``, ``arrears``, ``installment_amount`` and ``capacity`` (payments of
    the last 180 days spread over six months, NaN when none), the columns
    :func:`pipeline.plan.assign_plans` needs besides the probabilities.
    """

    as_of: pd.Timestamp
    tables: dict[str, pd.DataFrame]
    ledger: pd.DataFrame


Strategy = Callable[[Night], pd.DataFrame]


def policy_strategy(policy_path: Path | None, model) -> tuple[str, Strategy]:
    """Plan as ``propensity score`` does: features, the model's probabilities, the policy.

    Returns the strategy's name (the policy's ``version``) and the strategy.
    """
    from features.build import build_features
    from pipeline.plan import assign_plans
    from pipeline.policy import load_policy_and_version
    from pipeline.score import scored_frame

    policy, pversion = load_policy_and_version(policy_path)

    def plan(night: Night) -> pd.DataFrame:
        tables = night.tables
        # validate=False: the output schema check is a safety net for lenders' data;
        # the replay feeds the tables it wrote itself (0.4 s a night saved).
        feats = build_features(tables, night.as_of, materiality=policy.materiality, validate=False)
        scored = scored_frame(feats, model.predict_proba(feats))
        assign = assign_plans
        if policy.value_allocation is not None:  # value mode, as the scorer does
            from pipeline.value_mode import assign_value_plans as assign
            from pipeline.value_plan import short_shock

            scored["short_shock"] = short_shock(feats)
        return assign(scored, tables["accounts"], tables["contacts"], night.as_of,
                      policy, pversion, _promises(night, policy))  # fmt: skip

    return policy.version, plan


def value_strategy(
    policy_path: Path | None,
    model,
    equal_capacity: bool = True,
    learn_nights: int = 0,
    explore_share: float | None = None,
) -> tuple[str, Strategy]:
    """Plan by expected incremental recovery, as ``propensity score`` does in value mode.

    The same features, calibrated probabilities, tiers, control group and
    compliance as :func:`policy_strategy`, then intensity and offer chosen by
    value (the policy's ``value_allocation``, else the packaged settings).
    With ``equal_capacity`` the calls and texts are those the fixed-tier plan
    of the same policy would use that night, so the comparison asks where the
    contacts go, not how many there are.

    With ``learn_nights`` > 0 the first nights explore (``explore_share``,
    else the settings' own) and are logged; on night ``learn_nights`` a
    T-learner is fitted on the explored units whose horizon is complete
    (:class:`pipeline.simulator.learning.EffectLearner`, reachable as the
    strategy's ``learner`` attribute) and the later nights plan with its
    effects, exploration off. With 0 the priors plan every night, as before.
    """
    from features.build import build_features
    from pipeline.policy import load_policy_and_version
    from pipeline.score import scored_frame
    from pipeline.simulator.learning import UPLIFT_FEATURES, EffectLearner
    from pipeline.value_mode import (
        assign_value_plans,
        plans_at_equal_capacity,
        with_value_allocation,
    )
    from pipeline.value_plan import short_shock

    fixed, pversion = load_policy_and_version(policy_path)
    valued = with_value_allocation(fixed)
    fixed = fixed.model_copy(update={"value_allocation": None})
    cfg = valued.value_allocation
    share = cfg.explore_share if explore_share is None else explore_share
    learning = valued.model_copy(
        update={"value_allocation": cfg.model_copy(update={"explore_share": share})}
    )
    exploiting = valued.model_copy(
        update={"value_allocation": cfg.model_copy(update={"explore_share": 0.0})}
    )
    learner = EffectLearner(learn_nights, cfg.horizon_days) if learn_nights > 0 else None

    def plan(night: Night) -> pd.DataFrame:
        tables = night.tables
        feats = build_features(tables, night.as_of, materiality=fixed.materiality, validate=False)
        scored = scored_frame(feats, model.predict_proba(feats))
        scored["short_shock"] = short_shock(feats)
        policy, i = valued, -1
        if learner is not None:
            X = pd.DataFrame(
                {c: (scored[c] if c in scored else feats[c]).to_numpy() for c in UPLIFT_FEATURES}
            )
            i = learner.night(night.as_of)
            if i == learn_nights:
                learner.fit(tables["payments"], night.as_of)
            policy = learning if i < learn_nights else exploiting
            if i >= learn_nights and learner.model is not None:
                scored = scored.join(learner.effects(X))
        args = (scored, tables["accounts"], tables["contacts"], night.as_of)
        promises = _promises(night, fixed)
        if equal_capacity:
            out = plans_at_equal_capacity(*args, fixed, policy, pversion, promises)
        else:
            out = assign_value_plans(*args, policy, pversion, promises)
        if learner is not None and i < learn_nights:
            learner.record(night.as_of, out, X)
        return out

    plan.learner = learner  # type: ignore[attr-defined]
    name = f"value-{fixed.version}" + ("@fixed-capacity" if equal_capacity else "")
    return name + (f"+learned{learn_nights}" if learn_nights else ""), plan


def baseline_strategy(name: str) -> tuple[str, Strategy]:
    """Plan by DPD bucket only (scores play no part), under the same law as the policies.

    Raises
    ------
    KeyError
        When ``name`` is not in :data:`BASELINES`.
    """
    from pipeline.plan import assign_plans
    from pipeline.policy import load_policy_and_version

    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(sorted(BASELINES))}")
    policy, pversion = load_policy_and_version(BASELINES[name])

    def plan(night: Night) -> pd.DataFrame:
        scored = night.ledger.assign(
            p_willingness=0.5, p_ability=0.5, expected_share=np.nan
        ).reset_index(drop=True)
        tables = night.tables
        return assign_plans(scored, tables["accounts"], tables["contacts"], night.as_of,
                            policy, pversion, _promises(night, policy))  # fmt: skip

    return name, plan


def _promises(night: Night, policy) -> pd.DataFrame:
    """The promises judged as of the night, as the scorer passes them (holds, broken ones)."""
    from pipeline.contact_log import recent_promises

    t = night.tables
    return recent_promises(
        t["contacts"], t["payments"], night.as_of, policy.promises.broken_lookback_days
    )

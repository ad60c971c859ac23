"""Value-based plans: intensity and offer per account by expected incremental recovery under capacity.

The fixed-tier policy gives every account in a rectangle of willingness x
ability the same intensity and offer. In value mode (the policy's
``value_allocation`` section) the plan instead chooses, for each account
outside the control group and not suppressed, the contact intensity and the
offer that maximise expected incremental recovery minus contact and offer
cost, subject to the team's capacity (calls and texts a day) and to every
per-account cap (the intensity caps, the legal call caps from the contact
log, hardship's maximum intensity). The tier, DPD stage, control group and
every compliance rule of :mod:`pipeline.plan` still apply first; this step
only chooses among what they allow.

The value of each choice comes from a stated, documented prior
(:func:`offer_values`), whose parameters sit in the policy so a risk team can
read and change them. When the scored frame carries learned effects
(:data:`EFFECT_COLUMNS`, from a T-learner fitted on randomised arms,
:func:`effects_from_model`), they replace ``contact_lift`` per account
(:func:`learned_payers`); the offers' priors stay.

- contact at intensity ``k`` turns a share ``contact_lift[k]`` of would-be
  non-payers into payers: ``p_k = 1 - (1 - p_willingness)(1 - lift_k)``;
- ``reminder`` recovers ``arrears x p_k x s`` (``s`` = expected share covered);
- ``installment_plan`` adds ``(1 - s) x uptake`` of the rest, halved when the
  account has shown no capacity to size it on, and loses ``deferral_cost`` of
  all it recovers (paid later; some who would have paid now take the plan);
- ``staged_repayment`` the same at its own uptake and deferral, fitting any capacity;
- ``extension`` the same, its uptake scaled by ``short_shock`` (0..1: evidence of a
  recent, temporary drop), so it goes to short shocks;
- ``settlement`` recovers ``(1 - discount)`` of what is paid, and is accepted
  by ``uptake x (1 + p_k) / 2`` of those who would not have paid (the discount
  draws even some unwilling): it only wins where the recovery without it is low.
"""

from __future__ import annotations

import logging
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from features.vocab import CONTACT_INTENSITIES
from pipeline.allocate import allocate
from pipeline.policy_parts import FrozenModel

log = logging.getLogger(__name__)

#: Offers the value mode chooses among (legal_review stays a fixed-tier decision).
VALUE_OFFERS: tuple[str, ...] = (
    "reminder",
    "installment_plan",
    "extension",
    "staged_repayment",
    "settlement",
)
#: Intensities in escalation order (the first uses no contact).
_INTENSITIES: tuple[str, ...] = CONTACT_INTENSITIES
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Money = Annotated[float, Field(ge=0.0)]


class OfferPrior(FrozenModel):
    """What an offer costs, how often it is taken up, and the share lost by deferring (a prior)."""

    uptake: Share
    cost: Money = 0.0
    deferral_cost: Share = 0.0


class SettlementPrior(OfferPrior):
    """A settlement also states the discount it gives, within the policy's limit."""

    discount_pct: Annotated[float, Field(ge=0.0, le=100.0)]


class ValueAllocation(FrozenModel):
    """The value mode: daily capacity, contact costs and the priors of each choice."""

    calls_per_day: Annotated[int, Field(ge=0)]
    sms_per_day: Annotated[int, Field(ge=0)]
    horizon_days: Annotated[int, Field(ge=1, le=7)] = 7
    cost_per_call: Money = 1.5
    cost_per_sms: Money = 0.05
    contact_lift: dict[str, Share]
    installment_plan: OfferPrior
    extension: OfferPrior
    staged_repayment: OfferPrior
    settlement: SettlementPrior
    max_settlement_discount_pct: Annotated[float, Field(ge=0.0, le=100.0)] = 30.0
    explore_share: Share = 0.05

    @model_validator(mode="after")
    def _consistent(self) -> ValueAllocation:
        missing = [k for k in _INTENSITIES[1:] if k not in self.contact_lift]
        extra = sorted(set(self.contact_lift) - set(_INTENSITIES[1:]))
        if missing or extra:
            raise ValueError(
                f"contact_lift: give low, medium and high (missing {missing}, unknown {extra})"
            )
        lifts = [self.contact_lift[k] for k in _INTENSITIES[1:]]
        if lifts != sorted(lifts):
            raise ValueError(f"contact_lift must not fall with intensity, got {lifts}")
        if self.settlement.discount_pct > self.max_settlement_discount_pct:
            raise ValueError(
                f"settlement.discount_pct {self.settlement.discount_pct} is above "
                f"max_settlement_discount_pct {self.max_settlement_discount_pct}; lower it"
            )
        return self


def offer_values(
    scored: pd.DataFrame, config: ValueAllocation
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Return the expected recovery of every (intensity, offer) per account, before costs.

    Parameters
    ----------
    scored : pandas.DataFrame
        ``arrears``, ``p_willingness``, ``p_ability``, ``capacity`` and
        optionally ``expected_share``, ``short_shock`` (0 when absent) and
        learned effects (:data:`EFFECT_COLUMNS`, replacing ``contact_lift``;
        :func:`learned_payers`).
    config : ValueAllocation
        The priors.

    Returns
    -------
    (numpy.ndarray, tuple of str)
        Array (n, 4 intensities, 5 offers) of expected recovery in money, and
        the offers' names (:data:`VALUE_OFFERS`).
    """
    arrears = scored["arrears"].to_numpy(dtype=np.float64)
    w = scored["p_willingness"].to_numpy(dtype=np.float64)
    s = scored["p_ability"].to_numpy(dtype=np.float64)
    if "expected_share" in scored.columns:
        given = scored["expected_share"].to_numpy(dtype=np.float64)
        s = np.where(np.isnan(given), s, given)
    s = np.clip(s, 0.0, 1.0)
    shock = np.zeros(len(scored))
    if "short_shock" in scored.columns:
        shock = np.clip(scored["short_shock"].to_numpy(dtype=np.float64, na_value=0.0), 0, 1)
    capacity = scored["capacity"].to_numpy(dtype=np.float64)
    fit = np.where(np.nan_to_num(capacity) > 0, 1.0, 0.5)
    lift = np.array([0.0, *(config.contact_lift[k] for k in _INTENSITIES[1:])])
    p = 1.0 - (1.0 - w[:, None]) * (1.0 - lift[None, :])  # (n, K)
    learned = learned_payers(scored, w, s)
    if learned is not None:
        p = np.where(np.isnan(learned), p, learned)
    rest = (1.0 - s)[:, None]
    base = p * s[:, None]
    d = config.settlement.discount_pct / 100.0
    plan, ext, staged = config.installment_plan, config.extension, config.staged_repayment
    cov = np.stack(
        [
            base,
            (1 - plan.deferral_cost) * p * (s[:, None] + rest * plan.uptake * fit[:, None]),
            (1 - ext.deferral_cost) * p * (s[:, None] + rest * ext.uptake * shock[:, None]),
            (1 - staged.deferral_cost) * p * (s[:, None] + rest * staged.uptake),
            (1.0 - d) * (base + (1.0 - base) * config.settlement.uptake * (0.5 + 0.5 * p)),
        ],
        axis=2,
    )
    return arrears[:, None, None] * cov, VALUE_OFFERS


#: Columns of a scored frame holding learned effects (share of arrears, over no contact).
EFFECT_COLUMNS: tuple[str, ...] = tuple(f"effect_{k}" for k in _INTENSITIES[1:])


def monotone_effects(effects: np.ndarray) -> np.ndarray:
    """Return effects (n, 3: low, medium, high) clipped to >= 0 and non-decreasing in intensity.

    The caps are nested (a higher intensity allows every contact of a lower
    one), so its recovery before cost is at least the lower one's; an arm's
    estimate below a lower arm's, or below no contact, is read as noise of
    arms fitted apart, not as harm. NaN (no estimate) stays NaN.

    Examples
    --------
    >>> monotone_effects(np.array([[0.02, -0.01, 0.05], [-0.03, 0.01, 0.0]])).tolist()
    [[0.02, 0.02, 0.05], [0.0, 0.01, 0.01]]
    """
    e = np.asarray(effects, dtype=np.float64)
    missing = np.isnan(e).any(axis=1)
    out = np.maximum.accumulate(np.maximum(np.nan_to_num(e), 0.0), axis=1)
    out[missing] = np.nan
    return out


def learned_payers(scored: pd.DataFrame, w: np.ndarray, s: np.ndarray) -> np.ndarray | None:
    """Return (n, 4) payer shares ``p_k`` implied by learned effects, or None without them.

    With ``effect_low/medium/high`` (:data:`EFFECT_COLUMNS`, the share of
    arrears an intensity adds over no contact, e.g. :func:`effects_from_model`)
    the reminder's recovery at intensity ``k`` becomes ``arrears x (w s + e_k)``:
    ``p_k = w + e_k / s`` (clipped to [w, 1]; :func:`monotone_effects` first),
    so every offer's prior applies on top of the learned contact effect.
    Rows with a NaN effect keep the prior lift (NaN returned there).
    """
    if not set(EFFECT_COLUMNS) <= set(scored.columns):
        return None
    e = monotone_effects(scored[list(EFFECT_COLUMNS)].to_numpy(dtype=np.float64))
    p = w[:, None] + e / np.maximum(s, 1e-6)[:, None]
    p = np.clip(p, w[:, None], 1.0)
    return np.column_stack([np.where(np.isnan(p[:, 0]), np.nan, w), p])


def effects_from_model(model, X: pd.DataFrame) -> pd.DataFrame:
    """Return :data:`EFFECT_COLUMNS` from an uplift model with arms none, low, medium, high.

    ``model`` is a :class:`models.uplift.UpliftModel` (its ``effects``: each
    arm's expected outcome, the share of arrears paid in the horizon, minus
    the baseline's); ``X`` holds its columns.

    Raises
    ------
    ValueError
        If the model's arms are not ``none, low, medium, high``.
    """
    if tuple(model.arms) != _INTENSITIES:
        raise ValueError(f"uplift model arms {list(model.arms)} must be {list(_INTENSITIES)}")
    eff = model.effects(X)
    return pd.DataFrame(
        {f"effect_{k}": eff[k].to_numpy(dtype=np.float64) for k in _INTENSITIES[1:]},
        index=X.index,
    )


def offer_costs(config: ValueAllocation) -> np.ndarray:
    """Return the cost of making each offer of :data:`VALUE_OFFERS`."""
    return np.array(
        [
            0.0,
            config.installment_plan.cost,
            config.extension.cost,
            config.staged_repayment.cost,
            config.settlement.cost,
        ]
    )


def best_offers(
    recovery: np.ndarray, costs: np.ndarray, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return per account and intensity the best allowed offer and its net value.

    Parameters
    ----------
    recovery : numpy.ndarray
        (n, K, O) expected recovery of :func:`offer_values`.
    costs : numpy.ndarray
        (O,) cost of each offer.
    allowed : numpy.ndarray
        (n, O) bool: offers the law and the policy allow the account
        (``reminder`` should always be allowed).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        (n, K) index of the best offer, and (n, K) its recovery minus cost.
    """
    net = recovery - costs[None, None, :]
    net = np.where(allowed[:, None, :], net, -np.inf)
    best = net.argmax(axis=2)
    return best, np.take_along_axis(net, best[..., None], axis=2)[..., 0]


def short_shock(features: pd.DataFrame) -> np.ndarray:
    """Return 0..1 evidence of a recent, temporary drop: paid well for a year, stopped lately.

    ``ontime_share_365d`` (a good record) times the fall of the paid ratio
    over the last 90 days (``-paid_ratio_trend_90d``, clipped to 0..1); a
    hardship told to a collector in the last 365 days counts as at least 0.5.
    """
    ontime = features["ontime_share_365d"].to_numpy(dtype=np.float64, na_value=0.0)
    fall = np.clip(-features["paid_ratio_trend_90d"].to_numpy(dtype=np.float64, na_value=0.0), 0, 1)
    told = features["hardship_count_365d"].to_numpy(dtype=np.float64, na_value=0.0) > 0
    return np.maximum(np.nan_to_num(ontime) * fall, np.where(told, 0.5, 0.0))


__all__ = [
    "EFFECT_COLUMNS",
    "VALUE_OFFERS",
    "OfferPrior",
    "SettlementPrior",
    "ValueAllocation",
    "allocate",
    "best_offers",
    "effects_from_model",
    "learned_payers",
    "monotone_effects",
    "offer_costs",
    "offer_values",
    "short_shock",
]

"""A synthetic training set with a small feature spec, for tests and benchmarks.

This is not the portfolio simulator (``pipeline/simulator/``); it draws a
training set directly in the shape the feature jobs produce (one row per
overdue account and month end, features, ``paid_any`` and ``coverage``), from
latent willingness and ability per account, so that the model code can be
tested and timed without the feature code. Willingness drives whether anyone
pays; ability drives how much of the arrears is covered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.vocab import PRODUCTS
from models.spec import FeatureSpec

SYNTHETIC_SPEC = FeatureSpec(
    columns=(
        "dpd",
        "arrears",
        "arrears_to_installment",
        "arrears_to_income",
        "days_since_last_payment",
        "paid_ratio_3m",
        "promises_broken_90d",
        "promise_kept_rate_180d",
        "rpc_rate_30d",
        "attempts_call_30d",
        "partial_payments_90d",
        "noise_a",
        "product",
    ),
    categorical={"product": PRODUCTS},
    monotone_willingness={
        "dpd": -1,
        "promises_broken_90d": -1,
        "days_since_last_payment": -1,
    },
    monotone_ability={"arrears_to_income": -1},
    descriptions={
        "dpd": "days past due",
        "arrears": "overdue amount",
        "arrears_to_installment": "arrears relative to the monthly installment",
        "arrears_to_income": "arrears relative to the monthly income",
        "days_since_last_payment": "days since the last payment",
        "paid_ratio_3m": "paid-to-due ratio over 3 months",
        "promises_broken_90d": "broken promises in the last 90 days",
        "promise_kept_rate_180d": "share of promises kept over 180 days",
        "rpc_rate_30d": "right-party contact rate over 30 days",
        "attempts_call_30d": "call attempts over 30 days",
        "partial_payments_90d": "partial payments over 90 days",
        "noise_a": "an uninformative feature",
        "product": "product",
    },
    code_version="synthetic-1",
)


@dataclass(frozen=True)
class SyntheticData:
    """A synthetic training set, its spec and the latent truth per account and month."""

    frame: pd.DataFrame
    spec: FeatureSpec
    truth: pd.DataFrame


def make_training_set(
    n_accounts: int = 3000,
    n_months: int = 12,
    seed: int = 0,
    overdue_share: float = 0.3,
    start: str = "2024-01-31",
    extra_features: int = 0,
) -> SyntheticData:
    """Draw a synthetic training set of overdue account-months with labels.

    Parameters
    ----------
    n_accounts : int
        Accounts in the portfolio.
    n_months : int
        Month-end snapshots, starting at ``start``.
    seed : int
        Seed of the numpy generator; the same seed gives the same frame.
    overdue_share : float
        Probability that an account is overdue (has a row) at a month end.
    start : str
        First month end.
    extra_features : int
        Extra numeric columns ``extra_001``... (noisy mixes of the latent
        state and the other features), to reach the width of the real
        feature catalogue in benchmarks.

    Returns
    -------
    SyntheticData
        ``frame`` has ``account_id``, ``as_of_date``, the columns of
        :data:`SYNTHETIC_SPEC`, ``paid_any`` (int 0/1) and ``coverage``;
        ``truth`` has ``account_id``, ``month`` (month start of the label
        horizon), ``debtor_type``, ``ability`` and ``willingness``.

    Examples
    --------
    >>> data = make_training_set(n_accounts=50, n_months=3, seed=1)
    >>> sorted(data.frame["as_of_date"].dt.day.unique().tolist())
    [29, 31]
    """
    rng = np.random.default_rng(seed)
    month_ends = pd.date_range(start, periods=n_months, freq="ME")
    will0 = rng.beta(2.0, 2.0, n_accounts)
    abil0 = rng.beta(2.0, 2.0, n_accounts)
    product_codes = rng.integers(0, len(PRODUCTS), n_accounts)
    installment = rng.lognormal(5.0, 0.6, n_accounts)
    income = installment * rng.lognormal(2.0, 0.4, n_accounts) * (0.5 + abil0)

    # Less willing or able debtors are overdue more often.
    p_overdue = np.clip(overdue_share * (1.6 - 0.6 * will0 - 0.6 * abil0), 0.01, 0.99)
    mask = rng.random((n_months, n_accounts)) < p_overdue[None, :]
    month_idx, acc = np.nonzero(mask)
    n = acc.size

    # Latent states drift a little from month to month.
    will = np.clip(will0[acc] + rng.normal(0, 0.05, n), 0, 1)
    abil = np.clip(abil0[acc] + rng.normal(0, 0.05, n), 0, 1)
    dpd = np.clip(1 + rng.exponential(15 + 150 * (1 - 0.6 * will - 0.4 * abil)), 1, 720).round()
    arrears_to_inst = 1 + dpd / 30 + rng.exponential(0.3, n)
    arrears = installment[acc] * arrears_to_inst
    income_obs = np.where(rng.random(n) < 0.2, np.nan, income[acc])
    never_paid = rng.random(n) < 0.25 * (1 - will)
    dslp = np.where(never_paid, np.nan, dpd * (0.3 + 0.7 * rng.random(n)) + 30 * (1 - will))
    paid_ratio = np.clip(rng.beta(1 + 4 * will * abil, 1 + 3 * (1 - will * abil)), 0, 1)
    broken = rng.poisson(1.5 * (1 - will) ** 2 * (dpd > 15))
    kept_rate = np.where(rng.random(n) < 0.4, np.nan, rng.beta(1 + 5 * will, 1 + 5 * (1 - will)))
    rpc = np.clip(rng.beta(1 + 3 * will, 3), 0, 1)
    attempts = rng.poisson(2 + dpd / 20)
    partial = rng.poisson(2 * will * (1 - abil))
    month_effect = 0.15 * np.sin(month_idx)
    # Small balances (microloan, bnpl, credit card) are easier to clear than
    # secured loans; a non-linear, categorical effect no additive scorecard
    # of numeric features captures.
    product_pay = np.array([0.2, 0.0, 0.3, -0.3, -0.5, 0.4])[product_codes[acc]]
    product_cover = np.array([0.4, -0.2, 1.0, -1.0, -1.4, 1.2])[product_codes[acc]]

    logit_pay = (
        -0.4
        + 4.0 * (will - 0.5)
        - 0.008 * dpd
        + 0.8 * (abil - 0.5)
        + month_effect
        + product_pay
        - 0.3 * broken
    )
    paid_any = (rng.random(n) < 1 / (1 + np.exp(-logit_pay))).astype("int64")
    logit_full = (
        -0.2
        + 5.0 * (abil - 0.5)
        - 0.35 * np.log(arrears_to_inst)
        + 0.5 * (will - 0.5)
        + product_cover
    )
    full = rng.random(n) < 1 / (1 + np.exp(-logit_full))
    partial_cov = rng.uniform(0.05, 0.95, n) * (0.5 + 0.5 * abil)
    coverage = np.where(paid_any == 1, np.where(full, 1.0, partial_cov), 0.0)

    account_ids = np.char.add("A", np.char.zfill(np.arange(1, n_accounts + 1).astype(str), 7))
    frame = pd.DataFrame(
        {
            "account_id": account_ids[acc].astype(object),
            "as_of_date": month_ends[month_idx],
            "dpd": dpd,
            "arrears": arrears,
            "arrears_to_installment": arrears_to_inst,
            "arrears_to_income": arrears / income_obs,
            "days_since_last_payment": dslp,
            "paid_ratio_3m": paid_ratio,
            "promises_broken_90d": broken.astype("float64"),
            "promise_kept_rate_180d": kept_rate,
            "rpc_rate_30d": rpc,
            "attempts_call_30d": attempts.astype("float64"),
            "partial_payments_90d": partial.astype("float64"),
            "noise_a": rng.normal(size=n),
            "product": pd.Categorical.from_codes(product_codes[acc], categories=list(PRODUCTS)),
            "paid_any": paid_any,
            "coverage": coverage,
        }
    )
    spec = SYNTHETIC_SPEC
    if extra_features:
        base = frame[list(SYNTHETIC_SPEC.numeric)].to_numpy()
        weights = rng.normal(size=(base.shape[1], extra_features)) / base.shape[1]
        scaled = np.nan_to_num((base - np.nanmean(base, 0)) / np.nanstd(base, 0))
        extra = scaled @ weights + rng.normal(0, 0.5, (n, extra_features))
        extra[rng.random(extra.shape) < 0.05] = np.nan
        names = [f"extra_{i:03d}" for i in range(1, extra_features + 1)]
        frame = pd.concat([frame, pd.DataFrame(extra, columns=names)], axis=1)
        spec = FeatureSpec(
            columns=(*SYNTHETIC_SPEC.columns, *names),
            categorical=SYNTHETIC_SPEC.categorical,
            monotone_willingness=SYNTHETIC_SPEC.monotone_willingness,
            monotone_ability=SYNTHETIC_SPEC.monotone_ability,
            descriptions={**SYNTHETIC_SPEC.descriptions, **{c: "a synthetic mix" for c in names}},
            code_version=SYNTHETIC_SPEC.code_version,
        )
    frame = frame.sort_values(["as_of_date", "account_id"], kind="stable").reset_index(drop=True)
    truth = pd.DataFrame(
        {
            "account_id": account_ids[acc].astype(object),
            "month": (month_ends[month_idx] + pd.Timedelta(days=1)).to_period("M").to_timestamp(),
            "debtor_type": "synthetic",
            "ability": abil,
            "willingness": will,
        }
    )
    return SyntheticData(frame=frame, spec=spec, truth=truth)

"""Account features: product, principal, income and the ratios built on them."""

from __future__ import annotations

from functools import partial

import numpy as np

from features.catalogue.base import FeatureSpec
from features.context import AsOfContext, safe_divide


def _account(field: str, ctx: AsOfContext) -> np.ndarray:
    return getattr(ctx.prep, field)


def _installment_to(field: str, ctx: AsOfContext) -> np.ndarray:
    return safe_divide(ctx.ledger.installment_amount, getattr(ctx.prep, field))


def _arrears_to_income(ctx: AsOfContext) -> np.ndarray:
    return safe_divide(ctx.ledger.arrears, ctx.prep.monthly_income)


def specs() -> list[FeatureSpec]:
    """Return the account features, in their fixed column order."""
    S = FeatureSpec
    out: list[FeatureSpec] = [
        S(
            "product",
            "account",
            "category",
            "Product of the account (categories: features.vocab.PRODUCTS).",
            partial(_account, "product"),
            dtype="category",
            minimum=None,
            reason="product: {v}",
        ),
        S(
            "principal",
            "account",
            "money",
            "Principal of the loan (credit limit for revolving products).",
            partial(_account, "principal"),
            reason="principal of {v}",
        ),
        S(
            "installment_to_principal",
            "account",
            "share",
            "Latest installment amount divided by the principal.",
            partial(_installment_to, "principal"),
            nullable=True,
            reason="installment is {v} of the principal",
            reason_null="no installment due yet",
        ),
        S(
            "monthly_income",
            "account",
            "money",
            "Declared monthly income (optional column; null when absent).",
            partial(_account, "monthly_income"),
            nullable=True,
            reason="monthly income of {v}",
            reason_null="income not known",
        ),
        S(
            "age",
            "account",
            "years",
            "Age of the debtor in years (optional column; null when absent).",
            partial(_account, "age"),
            nullable=True,
            reason="aged {v}",
            reason_null="age not known",
        ),
        S(
            "installment_to_income",
            "account",
            "share",
            "Latest installment amount divided by the monthly income.",
            partial(_installment_to, "monthly_income"),
            nullable=True,
            reason="installment takes {v} of monthly income",
            reason_null="income not known",
        ),
        S(
            "arrears_to_income",
            "account",
            "ratio",
            "Arrears divided by the monthly income.",
            _arrears_to_income,
            nullable=True,
            reason="arrears {v} the monthly income",
            reason_zero="no arrears",
            reason_null="income not known",
        ),
    ]
    return out

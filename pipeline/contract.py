"""The data contract of ``../shared/DATA_CONTRACT.md`` as pandera schemas.

Each input table is a :class:`pandera.pandas.DataFrameModel`. The models hold
the single-table rules (types, ranges, closed categories, unique keys, row
rules such as "promise fields exactly when the outcome is promise_to_pay");
:func:`table_schema` adds the cross-table rule (``account_id`` must be in
``accounts``) for a given set of account ids. The readers in
:mod:`pipeline.io` coerce CSV and parquet into the dtypes checked here, and
:mod:`pipeline.validation` turns failures into rejects.

When this module and DATA_CONTRACT.md disagree, fix one of them in the same
commit.
"""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from features import vocab

#: Column order of each table, as in the contract.
COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": (
        "account_id",
        "customer_id",
        "product",
        "opened_date",
        "principal",
        "currency",
        "timezone",
        "do_not_contact",
        "cease_communication",
        "dispute_open",
        "hardship",
        "deceased",
        "bankruptcy",
    ),
    "installments": ("account_id", "installment_no", "due_date", "amount_due"),
    "payments": ("payment_id", "account_id", "paid_at", "amount", "channel"),
    "contacts": (
        "contact_id",
        "account_id",
        "contact_at",
        "channel",
        "direction",
        "outcome",
        "promised_amount",
        "promised_date",
        "agent_id",
    ),
    "offers": (
        "offer_id",
        "account_id",
        "offered_at",
        "offer_type",
        "accepted",
        "discount_pct",
        "n_installments",
    ),
}
#: Optional columns a lender may send; features use them when present.
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": ("monthly_income", "age", "region"),
}
#: Columns that may be absent and take a default (the contract's "default false").
DEFAULTS: dict[str, dict[str, object]] = {"accounts": {"do_not_contact": False}}
#: Logical type of every column, used by the readers to coerce CSV exports.
TYPES: dict[str, dict[str, str]] = {
    "accounts": {
        "account_id": "str",
        "customer_id": "str",
        "product": "str",
        "opened_date": "date",
        "principal": "float",
        "currency": "str",
        "timezone": "str",
        "do_not_contact": "bool",
        "cease_communication": "bool",
        "dispute_open": "bool",
        "hardship": "bool",
        "deceased": "bool",
        "bankruptcy": "bool",
        "monthly_income": "float",
        "age": "float",
        "region": "str",
    },
    "installments": {
        "account_id": "str",
        "installment_no": "int",
        "due_date": "date",
        "amount_due": "float",
    },
    "payments": {
        "payment_id": "str",
        "account_id": "str",
        "paid_at": "timestamp",
        "amount": "float",
        "channel": "str",
    },
    "contacts": {
        "contact_id": "str",
        "account_id": "str",
        "contact_at": "timestamp",
        "channel": "str",
        "direction": "str",
        "outcome": "str",
        "promised_amount": "float",
        "promised_date": "date",
        "agent_id": "str",
    },
    "offers": {
        "offer_id": "str",
        "account_id": "str",
        "offered_at": "timestamp",
        "offer_type": "str",
        "accepted": "bool",
        "discount_pct": "float",
        "n_installments": "int",
    },
}

_UTC = pd.DatetimeTZDtype(unit="ns", tz="UTC")


@cache
def _timezones() -> frozenset[str]:
    """Return the IANA time zone names known to this Python (read lazily, once)."""
    return frozenset(available_timezones())


class AccountsSchema(pa.DataFrameModel):
    """``accounts``: one row per loan account."""

    account_id: Series[str] = pa.Field(unique=True, nullable=False)
    customer_id: Series[str] = pa.Field(nullable=False)
    product: Series[str] = pa.Field(isin=vocab.PRODUCTS)
    opened_date: Series[pa.DateTime] = pa.Field(nullable=False)
    principal: Series[float] = pa.Field(gt=0)
    currency: Series[str] = pa.Field(str_matches=r"^[A-Z]{3}$")
    timezone: Series[str] = pa.Field(nullable=False)
    do_not_contact: Series[bool] = pa.Field(nullable=False)
    cease_communication: Series[bool] = pa.Field(nullable=False)
    dispute_open: Series[bool] = pa.Field(nullable=False)
    hardship: Series[bool] = pa.Field(nullable=False)
    deceased: Series[bool] = pa.Field(nullable=False)
    bankruptcy: Series[bool] = pa.Field(nullable=False)
    monthly_income: Series[float] | None = pa.Field(nullable=True, ge=0)
    age: Series[float] | None = pa.Field(nullable=True, ge=16, le=120)
    region: Series[str] | None = pa.Field(nullable=True)

    @pa.check("timezone", name="iana_timezone")
    def _iana_timezone(cls, tz: Series[str]) -> Series[bool]:
        """Time zones must be IANA names (contact windows use them)."""
        return tz.isin(_timezones())

    class Config:
        strict = True
        coerce = False


class InstallmentsSchema(pa.DataFrameModel):
    """``installments``: the repayment schedule."""

    account_id: Series[str] = pa.Field(nullable=False)
    installment_no: Series[np.int64] = pa.Field(ge=1)
    due_date: Series[pa.DateTime] = pa.Field(nullable=False)
    amount_due: Series[float] = pa.Field(gt=0)

    @pa.dataframe_check(name="due_date_increasing_with_installment_no")
    def _due_dates_increase(cls, df: pd.DataFrame) -> Series[bool]:
        """Within an account, due_date must rise strictly with installment_no."""
        ordered = df.sort_values(["account_id", "installment_no"], kind="stable")
        same_account = ordered["account_id"].eq(ordered["account_id"].shift())
        prev_due = ordered["due_date"].shift()
        next_due = ordered["due_date"].shift(-1)
        next_same = ordered["account_id"].eq(ordered["account_id"].shift(-1))
        # Flag both rows of an out-of-order pair so the reject names each.
        bad = (same_account & ~(ordered["due_date"] > prev_due)) | (
            next_same & ~(next_due > ordered["due_date"])
        )
        return (~bad).reindex(df.index)

    class Config:
        strict = True
        coerce = False
        unique = ["account_id", "installment_no"]


class PaymentsSchema(pa.DataFrameModel):
    """``payments``: money received."""

    payment_id: Series[str] = pa.Field(unique=True, nullable=False)
    account_id: Series[str] = pa.Field(nullable=False)
    paid_at: Series[_UTC] = pa.Field(nullable=False)  # type: ignore[valid-type]
    amount: Series[float] = pa.Field(gt=0)
    channel: Series[str] = pa.Field(isin=vocab.PAYMENT_CHANNELS)

    class Config:
        strict = True
        coerce = False


class ContactsSchema(pa.DataFrameModel):
    """``contacts``: the contact log."""

    contact_id: Series[str] = pa.Field(unique=True, nullable=False)
    account_id: Series[str] = pa.Field(nullable=False)
    contact_at: Series[_UTC] = pa.Field(nullable=False)  # type: ignore[valid-type]
    channel: Series[str] = pa.Field(isin=vocab.CONTACT_CHANNELS)
    direction: Series[str] = pa.Field(isin=vocab.DIRECTIONS)
    outcome: Series[str] = pa.Field(isin=vocab.OUTCOMES)
    promised_amount: Series[float] = pa.Field(nullable=True, gt=0)
    promised_date: Series[pa.DateTime] = pa.Field(nullable=True)
    agent_id: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check(name="promise_fields_iff_promise_to_pay")
    def _promise_fields(cls, df: pd.DataFrame) -> Series[bool]:
        """promised_amount and promised_date are set exactly when outcome is promise_to_pay."""
        is_promise = df["outcome"].eq("promise_to_pay")
        has_amount = df["promised_amount"].notna()
        has_date = df["promised_date"].notna()
        return (is_promise & has_amount & has_date) | (~is_promise & ~has_amount & ~has_date)

    @pa.dataframe_check(name="promised_date_on_or_after_contact")
    def _promise_after_contact(cls, df: pd.DataFrame) -> Series[bool]:
        """A promised_date may not lie before the day of the contact."""
        contact_day = df["contact_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
        return df["promised_date"].isna() | (df["promised_date"] >= contact_day)

    class Config:
        strict = True
        coerce = False


class OffersSchema(pa.DataFrameModel):
    """``offers``: optional history of arrangements offered."""

    offer_id: Series[str] = pa.Field(unique=True, nullable=False)
    account_id: Series[str] = pa.Field(nullable=False)
    offered_at: Series[_UTC] = pa.Field(nullable=False)  # type: ignore[valid-type]
    offer_type: Series[str] = pa.Field(isin=vocab.OFFER_TYPES)
    accepted: Series[bool] = pa.Field(nullable=False)
    discount_pct: Series[float] = pa.Field(nullable=True, ge=0, le=100)
    n_installments: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=1)

    @pa.dataframe_check(name="discount_pct_for_settlement_only")
    def _discount_settlement_only(cls, df: pd.DataFrame) -> Series[bool]:
        """discount_pct is only given for settlements."""
        return df["discount_pct"].isna() | df["offer_type"].eq("settlement")

    @pa.dataframe_check(name="n_installments_for_plans_only")
    def _n_installments_plans_only(cls, df: pd.DataFrame) -> Series[bool]:
        """n_installments is only given for installment_plan and staged_repayment."""
        plans = df["offer_type"].isin(["installment_plan", "staged_repayment"])
        return df["n_installments"].isna() | plans

    class Config:
        strict = True
        coerce = False


SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "accounts": AccountsSchema,
    "installments": InstallmentsSchema,
    "payments": PaymentsSchema,
    "contacts": ContactsSchema,
    "offers": OffersSchema,
}


def table_schema(table: str, account_ids: pd.Index | None = None) -> pa.DataFrameSchema:
    """Return the schema of ``table``, with the foreign key into accounts when ids are given.

    Parameters
    ----------
    table : str
        One of the contract's tables.
    account_ids : pandas.Index, optional
        The valid ``accounts.account_id`` values. When given (and the table is
        not ``accounts``), ``account_id`` must be one of them: a row that is not
        is an orphan.

    Returns
    -------
    pandera.pandas.DataFrameSchema

    Examples
    --------
    >>> schema = table_schema("payments", pd.Index(["A1"]))
    >>> [c.name for c in schema.columns["account_id"].checks]
    ['foreign_key_accounts']
    """
    if table not in SCHEMAS:
        raise KeyError(f"unknown table {table!r}; the contract has {', '.join(SCHEMAS)}")
    schema = SCHEMAS[table].to_schema()
    if account_ids is not None and table != "accounts":
        allowed = pd.Index(account_ids).unique()
        fk = pa.Check(lambda s: s.isin(allowed), name="foreign_key_accounts")
        column = schema.columns["account_id"]
        schema = schema.update_column("account_id", checks=[*column.checks, fk])
    return schema

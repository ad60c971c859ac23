"""The contract's tables as plain facts: their columns, optional columns, defaults and types.

Kept apart from :mod:`pipeline.contract` (the pandera rules, which re-exports
these names) so that code that only reads tables, such as
:mod:`pipeline.io` and the driver of a sharded job, does not import pandera.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
    "accounts": ("monthly_income", "age", "region", "jurisdiction"),
    # The published plan a contact served (scores.plan_id), logged by the dialer.
    "contacts": ("plan_id",),
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
        "jurisdiction": "str",
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
        "plan_id": "str",
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


def as_object(values: pd.Series) -> pd.Series:
    """Return a categorical or arrow-string column as the ``object`` column it stands for.

    Nulls become None. A categorical's codes take its distinct strings, so
    no string is copied; other columns are returned as they are.

    Examples
    --------
    >>> as_object(pd.Series(["b", None, "b"], dtype="category")).tolist()
    ['b', None, 'b']
    """
    if isinstance(values.dtype, pd.StringDtype):
        objects = values.to_numpy(dtype=object, na_value=None)
        return pd.Series(objects, index=values.index, name=values.name, dtype=object)
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return values
    codes = values.cat.codes.to_numpy()
    lookup = np.append(values.cat.categories.to_numpy(dtype=object), None)
    return pd.Series(lookup[codes], index=values.index, name=values.name, dtype=object)

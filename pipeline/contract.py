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

The rules run on a million accounts (some 40 million rows) in seconds, so a
few are computed by vectorised code (:mod:`pipeline.contract_rules`) rather
than pandera's generic built-ins:
string columns use the :class:`Text` dtype (one inference pass instead of a
Python call per cell); unique ids and unique (account_id, installment_no)
pairs, the due-date order and the foreign key work on integer codes (one
hash pass over the strings, no string sort); the closed vocabularies
(pandera's ``isin``) and the foreign key look each distinct value up once
(a categorical's categories) and map the answer to the rows by their codes;
the string dtype rule of a categorical reads its categories only
(``contract_rules._TextColumnBackend``); row rules hand pandera at most
:data:`ROW_RULE_EXAMPLES` failure cases and :mod:`pipeline.validation` reads
all failing rows from the check output. Each rule keeps its name, so a reject
reads the same. ``benchmarks/bench_validate.py`` measures it.
"""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from features import vocab
from pipeline.compliance import PROFILES
from pipeline.contract_columns import (  # noqa: F401 (the contract's facts, re-exported)
    COLUMNS,
    DEFAULTS,
    OPTIONAL_COLUMNS,
    TYPES,
    as_object,
)
from pipeline.contract_rules import (
    Text,
    due_dates_increase_pandas,
    flag_pairs,
    not_duplicated,
    rows_pass,
    schedule_key,
    vocabulary,
    with_text_backend,
)

_UTC = pd.DatetimeTZDtype(unit="ns", tz="UTC")
_DAY_NS = 86_400 * 10**9
#: Failing rows a row-level (dataframe) rule hands to pandera's error report.
#: pandera reshapes each failing row of such a rule one by one (about 0.1 ms a
#: row), so a rule failing on 10,000 rows would add seconds; the full list of
#: failing rows is the check's boolean output (``SchemaError.check_output``),
#: which is what :mod:`pipeline.validation` turns into rejects.
ROW_RULE_EXAMPLES = 100
#: The contract's currency code: three capital letters.
CURRENCY_PATTERN = r"^[A-Z]{3}$"


@cache
def _timezones() -> frozenset[str]:
    """Return the IANA time zone names known to this Python (read lazily, once)."""
    return frozenset(available_timezones())


class AccountsSchema(pa.DataFrameModel):
    """``accounts``: one row per loan account."""

    account_id: Series[Text] = pa.Field(nullable=False)
    customer_id: Series[Text] = pa.Field(nullable=False)
    product: Series[Text] = pa.Field(nullable=False)
    opened_date: Series[pa.DateTime] = pa.Field(nullable=False)
    principal: Series[float] = pa.Field(gt=0)
    currency: Series[Text] = pa.Field(nullable=False)
    timezone: Series[Text] = pa.Field(nullable=False)
    do_not_contact: Series[bool] = pa.Field(nullable=False)
    cease_communication: Series[bool] = pa.Field(nullable=False)
    dispute_open: Series[bool] = pa.Field(nullable=False)
    hardship: Series[bool] = pa.Field(nullable=False)
    deceased: Series[bool] = pa.Field(nullable=False)
    bankruptcy: Series[bool] = pa.Field(nullable=False)
    monthly_income: Series[float] | None = pa.Field(nullable=True, ge=0)
    age: Series[float] | None = pa.Field(nullable=True, ge=16, le=120)
    region: Series[Text] | None = pa.Field(nullable=True)
    # The account's legal profile; null means the policy's default jurisdiction.
    jurisdiction: Series[Text] | None = pa.Field(nullable=True)

    _product_known = vocabulary("product", vocab.PRODUCTS)
    _jurisdiction_known = vocabulary("jurisdiction", tuple(PROFILES))

    @pa.check("account_id", name="field_uniqueness", ignore_na=False)
    def _account_id_unique(cls, ids: Series[Text]) -> Series[bool]:
        """account_id is unique: every row of a repeated id fails."""
        return not_duplicated(ids)

    @pa.check("currency", name=f"str_matches('{CURRENCY_PATTERN}')")
    def _currency_code(cls, currency: Series[Text]) -> Series[bool]:
        """Three capital letters: pandera's ``str_matches`` rule, each distinct value matched once."""
        codes, uniques = pd.factorize(currency)
        matched = pd.Series(uniques, dtype=object).str.match(CURRENCY_PATTERN)
        ok = matched.fillna(False).to_numpy(dtype=bool)
        return rows_pass(ok, codes, currency.index)

    @pa.check("timezone", name="iana_timezone")
    def _iana_timezone(cls, tz: Series[Text]) -> Series[bool]:
        """Time zones must be IANA names (contact windows use them)."""
        return tz.isin(_timezones())

    class Config:
        strict = True
        coerce = False


class InstallmentsSchema(pa.DataFrameModel):
    """``installments``: the repayment schedule."""

    account_id: Series[Text] = pa.Field(nullable=False)
    installment_no: Series[np.int64] = pa.Field(ge=1)
    due_date: Series[pa.DateTime] = pa.Field(nullable=False)
    amount_due: Series[float] = pa.Field(gt=0)

    @pa.dataframe_check(
        name="due_date_non_decreasing_with_installment_no",
        ignore_na=False,
        n_failure_cases=ROW_RULE_EXAMPLES,
    )
    def _due_dates_increase(cls, df: pd.DataFrame) -> Series[bool]:
        """Within an account, due_date must not fall as installment_no rises.

        Two installments may fall due on the same day (real schedules do).
        Both rows of an out-of-order pair fail, so the rejects name each.
        """
        schedule = schedule_key(df)
        if schedule is None:
            return due_dates_increase_pandas(df)
        key, stride, order = schedule
        if len(key) < 2:
            return pd.Series(True, index=df.index)
        if key[0] < stride:
            # The smallest key is a row without an account_id (rare: it fails
            # not_nullable). The reference implementation decides how such rows
            # compare, by pandas' sort of the nulls.
            return due_dates_increase_pandas(df)
        account = key // stride
        same = account[1:] == account[:-1]
        del account
        due = df["due_date"].to_numpy().view(np.int64)
        due = due if order is None else due[order]
        nat = np.iinfo(np.int64).min
        rises = (due[1:] >= due[:-1]) & (due[:-1] != nat) & (due[1:] != nat)
        return pd.Series(flag_pairs(same & ~rises, order), index=df.index)

    @pa.dataframe_check(
        name="multiple_fields_uniqueness", ignore_na=False, n_failure_cases=ROW_RULE_EXAMPLES
    )
    def _unique_installment(cls, df: pd.DataFrame) -> Series[bool]:
        """(account_id, installment_no) is unique; every row of a duplicated pair fails.

        The same rule as ``Config.unique = ["account_id", "installment_no"]``
        (with pandera's default of reporting all duplicates), computed on
        integer codes instead of hashing string pairs.
        """
        schedule = schedule_key(df)
        if schedule is None:
            pairs = df[["installment_no"]].assign(account_id=as_object(df["account_id"]))
            return ~pairs.duplicated(["account_id", "installment_no"], keep=False)
        key, _, order = schedule
        if len(key) < 2:
            return pd.Series(True, index=df.index)
        return pd.Series(flag_pairs(key[1:] == key[:-1], order), index=df.index)

    class Config:
        strict = True
        coerce = False


class PaymentsSchema(pa.DataFrameModel):
    """``payments``: money received."""

    payment_id: Series[Text] = pa.Field(nullable=False)
    account_id: Series[Text] = pa.Field(nullable=False)
    paid_at: Series[_UTC] = pa.Field(nullable=False)  # type: ignore[valid-type]
    amount: Series[float] = pa.Field(gt=0)
    channel: Series[Text] = pa.Field(nullable=False)

    _channel_known = vocabulary("channel", vocab.PAYMENT_CHANNELS)

    @pa.check("payment_id", name="field_uniqueness", ignore_na=False)
    def _payment_id_unique(cls, ids: Series[Text]) -> Series[bool]:
        """payment_id is unique: every row of a repeated id fails."""
        return not_duplicated(ids)

    class Config:
        strict = True
        coerce = False


class ContactsSchema(pa.DataFrameModel):
    """``contacts``: the contact log."""

    contact_id: Series[Text] = pa.Field(nullable=False)
    account_id: Series[Text] = pa.Field(nullable=False)
    contact_at: Series[_UTC] = pa.Field(nullable=False)  # type: ignore[valid-type]
    channel: Series[Text] = pa.Field(nullable=False)
    direction: Series[Text] = pa.Field(nullable=False)
    outcome: Series[Text] = pa.Field(nullable=False)
    promised_amount: Series[float] = pa.Field(nullable=True, gt=0)
    promised_date: Series[pa.DateTime] = pa.Field(nullable=True)
    agent_id: Series[Text] = pa.Field(nullable=True)
    plan_id: Series[Text] | None = pa.Field(nullable=True)

    _channel_known = vocabulary("channel", vocab.CONTACT_CHANNELS)
    _direction_known = vocabulary("direction", vocab.DIRECTIONS)
    _outcome_known = vocabulary("outcome", vocab.OUTCOMES)

    @pa.dataframe_check(
        name="promise_fields_iff_promise_to_pay", ignore_na=False, n_failure_cases=ROW_RULE_EXAMPLES
    )
    def _promise_fields(cls, df: pd.DataFrame) -> Series[bool]:
        """promised_amount and promised_date are set exactly when outcome is promise_to_pay."""
        is_promise = df["outcome"].eq("promise_to_pay")
        has_amount = df["promised_amount"].notna()
        has_date = df["promised_date"].notna()
        return (is_promise & has_amount & has_date) | (~is_promise & ~has_amount & ~has_date)

    @pa.dataframe_check(
        name="promised_date_on_or_after_contact", ignore_na=False, n_failure_cases=ROW_RULE_EXAMPLES
    )
    def _promise_after_contact(cls, df: pd.DataFrame) -> Series[bool]:
        """A promised_date may not lie before the day of the contact (its UTC date)."""
        if df["contact_at"].dtype != _UTC or df["promised_date"].dtype != "datetime64[ns]":
            contact_day = df["contact_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
            return df["promised_date"].isna() | (df["promised_date"] >= contact_day)
        # The same rule on the int64 nanoseconds, without three datetime copies.
        nat = np.iinfo(np.int64).min
        at = df["contact_at"].to_numpy(dtype="datetime64[ns]").view(np.int64)  # UTC instants
        promised = df["promised_date"].to_numpy().view(np.int64)
        ok = promised == nat
        rows = np.flatnonzero(~ok)  # the contacts with a promised date (a few percent)
        at, promised = at[rows], promised[rows]
        day = at - at % _DAY_NS  # floor to the UTC midnight
        ok[rows] = (promised >= day) & (at != nat)
        return pd.Series(ok, index=df.index)

    @pa.check("contact_id", name="field_uniqueness", ignore_na=False)
    def _contact_id_unique(cls, ids: Series[Text]) -> Series[bool]:
        """contact_id is unique: every row of a repeated id fails."""
        return not_duplicated(ids)

    class Config:
        strict = True
        coerce = False


class OffersSchema(pa.DataFrameModel):
    """``offers``: optional history of arrangements offered."""

    offer_id: Series[Text] = pa.Field(nullable=False)
    account_id: Series[Text] = pa.Field(nullable=False)
    offered_at: Series[_UTC] = pa.Field(nullable=False)  # type: ignore[valid-type]
    offer_type: Series[Text] = pa.Field(nullable=False)
    accepted: Series[bool] = pa.Field(nullable=False)
    discount_pct: Series[float] = pa.Field(nullable=True, ge=0, le=100)
    n_installments: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=1)

    _offer_type_known = vocabulary("offer_type", vocab.OFFER_TYPES)

    @pa.dataframe_check(
        name="discount_pct_for_settlement_only", ignore_na=False, n_failure_cases=ROW_RULE_EXAMPLES
    )
    def _discount_settlement_only(cls, df: pd.DataFrame) -> Series[bool]:
        """discount_pct is only given for settlements."""
        return df["discount_pct"].isna() | df["offer_type"].eq("settlement")

    @pa.dataframe_check(
        name="n_installments_for_plans_only", ignore_na=False, n_failure_cases=ROW_RULE_EXAMPLES
    )
    def _n_installments_plans_only(cls, df: pd.DataFrame) -> Series[bool]:
        """n_installments is only given for installment_plan and staged_repayment."""
        plans = df["offer_type"].isin(["installment_plan", "staged_repayment"])
        return df["n_installments"].isna() | plans

    @pa.check("offer_id", name="field_uniqueness", ignore_na=False)
    def _offer_id_unique(cls, ids: Series[Text]) -> Series[bool]:
        """offer_id is unique: every row of a repeated id fails."""
        return not_duplicated(ids)

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


def table_schema(
    table: str, account_ids: pd.Index | None = None, without: tuple[str, ...] = ()
) -> pa.DataFrameSchema:
    """Return the schema of ``table``, with the foreign key into accounts when ids are given.

    Parameters
    ----------
    table : str
        One of the contract's tables.
    account_ids : pandas.Index, optional
        The valid ``accounts.account_id`` values. When given (and the table is
        not ``accounts``), ``account_id`` must be one of them: a row that is not
        is an orphan.
    without : tuple of str
        Columns left out of the schema: their rules are known to hold
        (:func:`rules_hold_unread`) and the frame does not hold them.

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
        # The same Index object for every table, so that its hash table is built once.
        allowed = account_ids if isinstance(account_ids, pd.Index) else pd.Index(account_ids)
        if not allowed.is_unique:
            allowed = allowed.unique()

        def in_accounts(s: pd.Series) -> pd.Series:
            # Look each distinct value up once in the accounts' own hash table (built
            # once per Index, shared by tables): a categorical's categories, or the
            # uniques of one hash pass over the rows' strings (factorize).
            if isinstance(s.dtype, pd.CategoricalDtype):
                codes, uniques = s.cat.codes.to_numpy(), s.cat.categories
            else:
                codes, uniques = pd.factorize(s)
            # Code -1 is a null: it passes here and fails not_nullable instead.
            return rows_pass(allowed.get_indexer(uniques) >= 0, codes, s.index)

        fk = pa.Check(in_accounts, name="foreign_key_accounts", ignore_na=False)
        column = schema.columns["account_id"]
        schema = schema.update_column("account_id", checks=[*column.checks, fk])
    return with_text_backend(schema, without)


def rules_hold_unread(table: str, column: str, ids_clean: bool = False) -> bool:
    """True when every rule of ``table.column`` holds for a column stored as text, unread.

    A column stored as text (:func:`pipeline.parquet_read.is_text_type`)
    passes its type rule; with ``ids_clean`` (the partition found the
    table's ids non-null and unique over the book), the table's key passes
    its non-null and uniqueness rules too. The column qualifies when the
    schema gives it no other rule: a nullable text column without checks
    (``contacts.agent_id``), or a clean table's key whose one check is its
    uniqueness. (No row rule reads these columns; a test validates tables
    without them.)

    Examples
    --------
    >>> rules_hold_unread("contacts", "agent_id"), rules_hold_unread("contacts", "contact_id")
    (True, False)
    >>> rules_hold_unread("contacts", "contact_id", ids_clean=True)
    True
    >>> rules_hold_unread("contacts", "channel", ids_clean=True)
    False
    """
    schema = _plain_schema(table)
    if column not in schema.columns:
        return False
    rule = schema.columns[column]
    key = ids_clean and column == vocab.TABLE_KEYS[table]
    proven = {"field_uniqueness"} if key else set()
    checks = {c.name for c in rule.checks}
    return (
        isinstance(rule.dtype, Text)
        and checks <= proven
        and (rule.nullable or key)
        and (not rule.unique or key)
    )


@cache
def _plain_schema(table: str) -> pa.DataFrameSchema:
    """The pandera schema of ``table`` as declared (read, never changed)."""
    return SCHEMAS[table].to_schema()

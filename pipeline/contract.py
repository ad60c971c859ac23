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
few are computed by vectorised code rather than pandera's generic built-ins:
string columns use the :class:`Text` dtype (one inference pass instead of a
Python call per cell); unique ids and unique (account_id, installment_no)
pairs, the due-date order and the foreign key work on integer codes (one
hash pass over the strings, no string sort); the closed vocabularies
(pandera's ``isin``) and the foreign key look each distinct value up once
(a categorical's categories) and map the answer to the rows by their codes;
the string dtype rule of a categorical reads its categories only
(:class:`_TextColumnBackend`); row rules hand pandera at most
:data:`ROW_RULE_EXAMPLES` failure cases and :mod:`pipeline.validation` reads
all failing rows from the check output. Each rule keeps its name, so a reject
reads the same. ``benchmarks/bench_validate.py`` measures it.
"""

from __future__ import annotations

import copy
from functools import cache
from zoneinfo import available_timezones

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc
from pandera import dtypes
from pandera.backends.base import CoreCheckResult
from pandera.backends.pandas.components import ColumnBackend
from pandera.config import ValidationScope
from pandera.engines import pandas_engine
from pandera.typing import Series
from pandera.validation_depth import validate_scope

from features import vocab
from pipeline.compliance import PROFILES
from pipeline.contract_columns import (  # noqa: F401 (the contract's facts, re-exported)
    COLUMNS,
    DEFAULTS,
    OPTIONAL_COLUMNS,
    TYPES,
    as_object,
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


@pandas_engine.Engine.register_dtype
@dtypes.immutable
class Text(pandas_engine.NpString):
    """pandera dtype of the contract's string columns: ``str`` cells (or nulls) in an object column.

    The same rule as pandera's ``str`` (which tests ``isinstance(x, str)`` cell
    by cell through ``Series.map``, about 40 s over a million accounts' tables),
    answered first by one vectorised pass (:func:`pandas.api.types.infer_dtype`).
    Only when that pass finds a non-string cell does it fall back to pandera's
    cell-by-cell check, which names the failing cells. Failures still read
    ``dtype('str')``.

    A pandas ``Categorical`` whose categories are all strings (how
    :func:`pipeline.io.read_tables` reads repeated text with
    ``categories=True``) holds the same cells and passes too, as do arrow
    strings (``pandas.StringDtype``); the check then looks at the distinct
    values only, or at nothing.

    Examples
    --------
    >>> Text().check(Text(), pd.Series(["a", None], dtype=object))
    True
    >>> Text().check(Text(), pd.Series(["a", 1], dtype=object)).tolist()
    [True, False]
    >>> Text().check(Text(), pd.Series(["a", None, "a"], dtype="category"))
    True
    """

    def check(self, pandera_dtype, data_container=None):
        if data_container is not None and isinstance(data_container.dtype, pd.StringDtype):
            return True  # arrow strings: every cell is a string or null
        if data_container is not None and isinstance(data_container.dtype, pd.CategoricalDtype):
            if _string_categories(data_container.dtype):
                return True
            return super().check(pandera_dtype, data_container.astype(object))
        if (
            data_container is not None
            and data_container.dtype == object
            and pd.api.types.infer_dtype(data_container, skipna=True) in ("string", "empty")
        ):
            return True
        return super().check(pandera_dtype, data_container)


def _string_categories(dtype: pd.CategoricalDtype) -> bool:
    """True when every category is a ``str`` (or there are none): each cell is a string or null."""
    return pd.api.types.infer_dtype(dtype.categories, skipna=False) in ("string", "empty")


class _TextColumnBackend(ColumnBackend):
    """pandera's column backend, with the dtype rule of a categorical of strings read directly.

    pandera converts a column's pandas dtype to its own before the
    :class:`Text` rule sees it; for a categorical that copies and hashes every
    category (some 15 ms for the 60,000 account ids of a shard's table). The
    rule itself needs only the categories: when they are all strings it
    passes, as :meth:`Text.check` would; anything else takes pandera's path.
    """

    @validate_scope(scope=ValidationScope.SCHEMA)
    def check_dtype(self, check_obj: pd.Series, schema) -> CoreCheckResult:
        if (
            isinstance(schema.dtype, Text)
            and isinstance(check_obj.dtype, pd.CategoricalDtype)
            and _string_categories(check_obj.dtype)
        ):
            return CoreCheckResult(passed=True, check=f"dtype('{schema.dtype}')")
        return super().check_dtype(check_obj, schema)


class _TextColumn(pa.Column):
    """A pandera ``Column`` validated by :class:`_TextColumnBackend` (the same rules)."""


def _with_text_backend(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """Return a copy of ``schema`` whose :class:`Text` columns use :class:`_TextColumnBackend`."""
    _TextColumn.register_backend(pd.DataFrame, _TextColumnBackend)
    schema = copy.copy(schema)
    schema.columns = {
        name: _TextColumn(**column.properties) if isinstance(column.dtype, Text) else column
        for name, column in schema.columns.items()
    }
    return schema


def _not_duplicated(s: pd.Series) -> pd.Series:
    """True for each row whose value occurs once in ``s``; nulls pass (not_nullable reports them).

    The rule of pandera's ``unique=True`` (every copy of a repeated value
    fails; null failure cases are dropped), computed without pandas' object
    hash table, which takes seconds on ten million distinct strings: ids that
    are strictly increasing (the usual export order) are unique by one
    comparison pass; otherwise arrow's dictionary encoding counts each value.

    Examples
    --------
    >>> _not_duplicated(pd.Series(["b", "a", None, "b", None, "c"])).tolist()
    [False, True, True, False, True, True]
    """
    if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
        return _arrow_not_duplicated(pa_arrow.array(s.array), s.index)
    values = s.to_numpy()
    n = len(values)
    if values.dtype == object and n > 1:
        try:
            if bool((values[1:] > values[:-1]).all()):
                return pd.Series(True, index=s.index)
        except TypeError:  # nulls or mixed types: no order
            pass
        # The system allocator returns these temporaries to the OS when they are freed.
        pool = pa_arrow.system_memory_pool()
        try:
            arr = pa_arrow.array(values, type=pa_arrow.string(), from_pandas=True, memory_pool=pool)
        except (pa_arrow.ArrowTypeError, pa_arrow.ArrowInvalid):
            arr = None
        if arr is not None:
            encoded = pc.dictionary_encode(arr, memory_pool=pool)  # nulls stay null
            del arr
            if len(encoded.dictionary) == n:
                return pd.Series(True, index=s.index)
            indices = encoded.indices
            null = indices.is_null().to_numpy(zero_copy_only=False)
            codes = indices.fill_null(0).to_numpy()
            counts = np.bincount(codes[~null], minlength=len(encoded.dictionary))
            return pd.Series((counts[codes] == 1) | null, index=s.index)
    return ~s.duplicated(keep=False) | s.isna()


def _arrow_not_duplicated(
    arr: pa_arrow.Array | pa_arrow.ChunkedArray, index: pd.Index
) -> pd.Series:
    """:func:`_not_duplicated` of an arrow string column, in arrow (no Python string per row)."""
    if isinstance(arr, pa_arrow.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    if n < 2:
        return pd.Series(True, index=index)
    if arr.null_count == 0 and pc.all(pc.greater(arr[1:], arr[:-1])).as_py():
        return pd.Series(True, index=index)
    encoded = pc.dictionary_encode(arr)  # nulls stay null
    if len(encoded.dictionary) == n:
        return pd.Series(True, index=index)
    null = encoded.indices.is_null().to_numpy(zero_copy_only=False)
    codes = encoded.indices.fill_null(0).to_numpy()
    counts = np.bincount(codes[~null], minlength=len(encoded.dictionary))
    return pd.Series((counts[codes] == 1) | null, index=index)


def _schedule_key(df: pd.DataFrame) -> tuple[np.ndarray, int, np.ndarray | None] | None:
    """Return one integer key per installment row, sorted, with its stride and the sort order.

    ``key = (account code + 1) * stride + (installment_no - min)``, where the
    account code is a categorical's own code or comes from one hash pass over
    the account_id strings (-1 for a null: rows without an account share code
    0 of ``key // stride``, as
    ``None == None`` groups them in pandas). Sorting by the
    key sorts by (account, installment_no), stably. The order is None when the
    rows are already sorted (the usual layout of an export), so the common case
    needs no sort; a nearly sorted key sorts quickly (timsort). Returns None
    when the columns are not in the canonical dtypes (the dtype checks report
    those) or the installment numbers span too wide a range for one int64; the
    callers then use plain pandas.
    """
    no = df["installment_no"].to_numpy()
    if no.dtype.kind not in "iu" or df["due_date"].dtype != "datetime64[ns]":
        return None
    account = df["account_id"]
    if isinstance(account.dtype, pd.CategoricalDtype):
        codes = account.cat.codes.to_numpy()
    else:
        codes = pd.factorize(account)[0]
    if len(codes) == 0:
        return codes.astype(np.int64), 1, None
    low, high = int(no.min()), int(no.max())
    stride = high - low + 1
    bound = (int(codes.max()) + 2) * stride
    if high > 2**62 or low < -(2**62) or bound >= 2**62:
        return None
    # int32 when it fits (a million accounts of 24 installments do): half the memory.
    key = codes.astype(np.int32 if bound < 2**31 else np.int64)
    del codes
    # In place, to hold one array of the table's length rather than several.
    key += 1
    key *= stride
    key += (no - low).astype(key.dtype, copy=False)
    if len(key) < 2 or bool((key[1:] >= key[:-1]).all()):
        return key, stride, None
    order = np.argsort(key, kind="stable")
    return key[order], stride, order


def _flag_pairs(pair_bad: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """Mark both rows of each flagged adjacent pair and return, per row in input order, True if fine."""
    bad = np.zeros(len(pair_bad) + 1, dtype=bool)
    bad[1:] |= pair_bad
    bad[:-1] |= pair_bad
    if order is None:
        return ~bad
    ok = np.empty_like(bad)
    ok[order] = ~bad
    return ok


def _rows_pass(known: np.ndarray, codes: np.ndarray, index: pd.Index) -> pd.Series:
    """Map a verdict per distinct value (its code) to the rows; a null (code -1) passes.

    Examples
    --------
    >>> _rows_pass(np.array([True, False]), np.array([0, 1, -1, 0]), pd.RangeIndex(4)).tolist()
    [True, False, True, True]
    """
    if known.all():  # the usual case: no row to look up
        return pd.Series(np.ones(len(codes), dtype=bool), index=index)
    return pd.Series(np.append(known, True)[codes], index=index)


def _in_vocabulary(values: pd.Series, allowed: tuple[str, ...]) -> pd.Series:
    """True for each cell in ``allowed`` or null (not_nullable reports nulls): ``isin`` on distinct values.

    The rule of pandera's ``isin`` with its default ``ignore_na``, answered
    once per distinct value and mapped to the rows by their codes: a
    categorical's own codes, or those of one hash pass over other columns.

    Examples
    --------
    >>> _in_vocabulary(pd.Series(["sms", None, "fax", "sms"]), ("sms",)).tolist()
    [True, True, False, True]
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        known = values.cat.categories.isin(allowed)
        codes = values.cat.codes.to_numpy()
    else:
        codes, uniques = pd.factorize(values)
        known = pd.Index(uniques).isin(allowed)
    # Code -1 is a null: it passes here, as pandera's isin drops nulls.
    return _rows_pass(known, codes, values.index)


def _vocabulary(column: str, allowed: tuple[str, ...]) -> classmethod:
    """Return the check method "``column`` is one of ``allowed``" for a DataFrameModel.

    It reads as pandera's ``isin`` rule (its name and error text), so a
    reject is the same as with ``pa.Field(isin=allowed)``.
    """

    def in_vocabulary(cls, values: Series[Text]) -> Series[bool]:
        return _in_vocabulary(values, allowed)

    in_vocabulary.__doc__ = f"{column} is one of the contract's list."
    error = f"isin({allowed})"
    stats = {"allowed_values": allowed}
    return pa.check(column, name="isin", error=error, ignore_na=False, statistics=stats)(
        in_vocabulary
    )


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

    _product_known = _vocabulary("product", vocab.PRODUCTS)
    _jurisdiction_known = _vocabulary("jurisdiction", tuple(PROFILES))

    @pa.check("account_id", name="field_uniqueness", ignore_na=False)
    def _account_id_unique(cls, ids: Series[Text]) -> Series[bool]:
        """account_id is unique: every row of a repeated id fails."""
        return _not_duplicated(ids)

    @pa.check("currency", name=f"str_matches('{CURRENCY_PATTERN}')")
    def _currency_code(cls, currency: Series[Text]) -> Series[bool]:
        """Three capital letters: pandera's ``str_matches`` rule, each distinct value matched once."""
        codes, uniques = pd.factorize(currency)
        matched = pd.Series(uniques, dtype=object).str.match(CURRENCY_PATTERN)
        ok = matched.fillna(False).to_numpy(dtype=bool)
        return _rows_pass(ok, codes, currency.index)

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
        schedule = _schedule_key(df)
        if schedule is None:
            return _due_dates_increase_pandas(df)
        key, stride, order = schedule
        if len(key) < 2:
            return pd.Series(True, index=df.index)
        if key[0] < stride:
            # The smallest key is a row without an account_id (rare: it fails
            # not_nullable). The reference implementation decides how such rows
            # compare, by pandas' sort of the nulls.
            return _due_dates_increase_pandas(df)
        account = key // stride
        same = account[1:] == account[:-1]
        del account
        due = df["due_date"].to_numpy().view(np.int64)
        due = due if order is None else due[order]
        nat = np.iinfo(np.int64).min
        rises = (due[1:] >= due[:-1]) & (due[:-1] != nat) & (due[1:] != nat)
        return pd.Series(_flag_pairs(same & ~rises, order), index=df.index)

    @pa.dataframe_check(
        name="multiple_fields_uniqueness", ignore_na=False, n_failure_cases=ROW_RULE_EXAMPLES
    )
    def _unique_installment(cls, df: pd.DataFrame) -> Series[bool]:
        """(account_id, installment_no) is unique; every row of a duplicated pair fails.

        The same rule as ``Config.unique = ["account_id", "installment_no"]``
        (with pandera's default of reporting all duplicates), computed on
        integer codes instead of hashing string pairs.
        """
        schedule = _schedule_key(df)
        if schedule is None:
            pairs = df[["installment_no"]].assign(account_id=as_object(df["account_id"]))
            return ~pairs.duplicated(["account_id", "installment_no"], keep=False)
        key, _, order = schedule
        if len(key) < 2:
            return pd.Series(True, index=df.index)
        return pd.Series(_flag_pairs(key[1:] == key[:-1], order), index=df.index)

    class Config:
        strict = True
        coerce = False


def _due_dates_increase_pandas(df: pd.DataFrame) -> pd.Series:
    """The due-date rule in plain pandas: the reference, used for frames off the fast path.

    That is frames not in the canonical dtypes, and schedules with a row
    without an account_id (pandas groups such rows by its sort of the nulls).
    """
    # Categorical ids as the strings they stand for: pandas sorts and compares nulls apart.
    df = df.assign(account_id=as_object(df["account_id"]))
    ordered = df.sort_values(["account_id", "installment_no"], kind="stable")
    same_account = ordered["account_id"].eq(ordered["account_id"].shift())
    prev_due = ordered["due_date"].shift()
    next_due = ordered["due_date"].shift(-1)
    next_same = ordered["account_id"].eq(ordered["account_id"].shift(-1))
    bad = (same_account & ~(ordered["due_date"] >= prev_due)) | (
        next_same & ~(next_due >= ordered["due_date"])
    )
    return (~bad).reindex(df.index)


class PaymentsSchema(pa.DataFrameModel):
    """``payments``: money received."""

    payment_id: Series[Text] = pa.Field(nullable=False)
    account_id: Series[Text] = pa.Field(nullable=False)
    paid_at: Series[_UTC] = pa.Field(nullable=False)  # type: ignore[valid-type]
    amount: Series[float] = pa.Field(gt=0)
    channel: Series[Text] = pa.Field(nullable=False)

    _channel_known = _vocabulary("channel", vocab.PAYMENT_CHANNELS)

    @pa.check("payment_id", name="field_uniqueness", ignore_na=False)
    def _payment_id_unique(cls, ids: Series[Text]) -> Series[bool]:
        """payment_id is unique: every row of a repeated id fails."""
        return _not_duplicated(ids)

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

    _channel_known = _vocabulary("channel", vocab.CONTACT_CHANNELS)
    _direction_known = _vocabulary("direction", vocab.DIRECTIONS)
    _outcome_known = _vocabulary("outcome", vocab.OUTCOMES)

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
        return _not_duplicated(ids)

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

    _offer_type_known = _vocabulary("offer_type", vocab.OFFER_TYPES)

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
        return _not_duplicated(ids)

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
            return _rows_pass(allowed.get_indexer(uniques) >= 0, codes, s.index)

        fk = pa.Check(in_accounts, name="foreign_key_accounts", ignore_na=False)
        column = schema.columns["account_id"]
        schema = schema.update_column("account_id", checks=[*column.checks, fk])
    return _with_text_backend(schema)

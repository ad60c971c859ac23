"""The vectorised machinery of the contract's rules: the string dtype and the checks that scale.

:mod:`pipeline.contract` declares the rules (its pandera models are the
contract's executable form); this module holds how some of them are
computed so that they run on a million accounts in seconds, each reading as
the pandera rule it stands for (same name, same failing cells):

- :class:`Text`, the string dtype, decided by one inference pass (or a
  categorical's categories, see :class:`_TextColumnBackend`);
- unique ids by one comparison pass or arrow's dictionary encoding;
- the schedule rules on integer keys (account code, installment number);
- the closed vocabularies (pandera's ``isin``) once per distinct value.
"""

from __future__ import annotations

import copy

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

from pipeline.contract_columns import as_object


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


def with_text_backend(
    schema: pa.DataFrameSchema, without: tuple[str, ...] = ()
) -> pa.DataFrameSchema:
    """Return a copy of ``schema`` whose :class:`Text` columns use :class:`_TextColumnBackend`,
    and without the columns ``without``."""
    _TextColumn.register_backend(pd.DataFrame, _TextColumnBackend)
    schema = copy.copy(schema)
    schema.columns = {
        name: _TextColumn(**column.properties) if isinstance(column.dtype, Text) else column
        for name, column in schema.columns.items()
        if name not in without
    }
    return schema


def not_duplicated(s: pd.Series) -> pd.Series:
    """True for each row whose value occurs once in ``s``; nulls pass (not_nullable reports them).

    The rule of pandera's ``unique=True`` (every copy of a repeated value
    fails; null failure cases are dropped), computed without pandas' object
    hash table, which takes seconds on ten million distinct strings: ids that
    are strictly increasing (the usual export order) are unique by one
    comparison pass; otherwise arrow's dictionary encoding counts each value.

    Examples
    --------
    >>> not_duplicated(pd.Series(["b", "a", None, "b", None, "c"])).tolist()
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
    """:func:`not_duplicated` of an arrow string column, in arrow (no Python string per row)."""
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


def schedule_key(df: pd.DataFrame) -> tuple[np.ndarray, int, np.ndarray | None] | None:
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


def flag_pairs(pair_bad: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """Mark both rows of each flagged adjacent pair and return, per row in input order, True if fine."""
    bad = np.zeros(len(pair_bad) + 1, dtype=bool)
    bad[1:] |= pair_bad
    bad[:-1] |= pair_bad
    if order is None:
        return ~bad
    ok = np.empty_like(bad)
    ok[order] = ~bad
    return ok


def rows_pass(known: np.ndarray, codes: np.ndarray, index: pd.Index) -> pd.Series:
    """Map a verdict per distinct value (its code) to the rows; a null (code -1) passes.

    Examples
    --------
    >>> rows_pass(np.array([True, False]), np.array([0, 1, -1, 0]), pd.RangeIndex(4)).tolist()
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
    return rows_pass(known, codes, values.index)


def vocabulary(column: str, allowed: tuple[str, ...]) -> classmethod:
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


def due_dates_increase_pandas(df: pd.DataFrame) -> pd.Series:
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

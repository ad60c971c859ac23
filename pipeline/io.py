"""Read the contract's input tables from a data folder, coercing what exports look like.

A data folder holds one entry per table: ``<table>.parquet``, ``<table>.csv``
or a folder ``<table>/`` of parquet parts. CSV is read as text and coerced
column by column (ISO dates, UTC timestamps, booleans spelled true/false,
1/0, yes/no, y/n or t/f in any case, empty cells as null; an empty suppression
flag counts as set, the safe side). A cell that cannot be coerced does not stop the read: it
becomes null and is reported as a *parse failure* so that validation rejects
its row with the raw value, instead of losing it silently.

Problems that make a table unreadable (a required table missing, a file that
is not parquet/CSV, a missing required column) raise :class:`DataReadError`,
whose message names the file and the problem. Columns the contract does not
name are ignored with a warning and listed per table in ``RawTables.files``
(``ignored_columns``), which the manifest carries.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features import vocab
from pipeline.contract_columns import COLUMNS, DEFAULTS, OPTIONAL_COLUMNS, TYPES
from pipeline.parquet_read import (
    arrow_text_columns,
    categorical_columns,
    read_parquet,
    table_files,
)

log = logging.getLogger(__name__)

_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


class DataReadError(Exception):
    """A table cannot be read at all; the message names the file and the problem."""

    @classmethod
    def unreadable(cls, path: Path | str, table: str, exc: BaseException) -> DataReadError:
        """The error for a file of ``table`` that the reader (arrow, pandas, the OS) failed on.

        Examples
        --------
        >>> str(DataReadError.unreadable("p.parquet", "payments", OSError("bad footer\\nmore")))
        "p.parquet: cannot read table 'payments': bad footer"
        """
        return cls(f"{path}: cannot read table {table!r}: {first_line(exc)}")


#: What the readers raise on a file they cannot read (UnicodeDecodeError is a ValueError).
UNREADABLE = (OSError, ValueError, pa.ArrowException)


@dataclass
class ParseFailure:
    """Cells of one column that could not be coerced to the contract's type."""

    table: str
    column: str
    check: str
    index: pd.Index
    values: pd.Series


@dataclass
class RawTables:
    """Tables as read and coerced, with the cells that failed coercion and file facts."""

    tables: dict[str, pd.DataFrame]
    parse_failures: list[ParseFailure] = field(default_factory=list)
    files: dict[str, dict[str, object]] = field(default_factory=dict)
    #: Per table, the columns in its file left undecoded (``read_tables``'s ``skip``):
    #: the contract's name -> the name in the file.
    left_out: dict[str, dict[str, str]] = field(default_factory=dict)


def first_line(exc: BaseException) -> str:
    """Return the first line of an error's message (its type's name when it has none).

    Examples
    --------
    >>> first_line(OSError("disk full\\nmore")), first_line(ValueError())
    ('disk full', 'ValueError')
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def find_table(data_dir: Path, table: str) -> Path | None:
    """Return the path of ``table`` in ``data_dir`` (parquet, CSV or a folder of parts), if any.

    Examples
    --------
    >>> find_table(Path("/nonexistent"), "accounts") is None
    True
    """
    for candidate in (
        data_dir / f"{table}.parquet",
        data_dir / f"{table}.csv",
        data_dir / table,
    ):
        if candidate.is_dir():
            if any(candidate.glob("*.parquet")):
                return candidate
        elif candidate.exists():
            return candidate
    return None


def file_checksum(path: Path) -> str:
    """Return the sha256 of a file, or of a folder's parquet parts in name order.

    Hashing runs at disk speed (about 1 GB/s and more with SHA extensions), a
    small share of reading the same bytes as parquet.
    """
    digest = hashlib.sha256()
    files = table_files(path)
    buffer = bytearray(1 << 22)
    view = memoryview(buffer)
    for f in files:
        with f.open("rb", buffering=0) as fh:
            while n := fh.readinto(buffer):
                digest.update(view[:n])
    return digest.hexdigest()


def _read_raw(
    path: Path, table: str, categories: bool = False, skip: frozenset[str] = frozenset()
) -> tuple[pd.DataFrame, frozenset[str]]:
    try:
        if path.is_dir() or path.suffix == ".parquet":
            if categories:
                cats, ids = categorical_columns(table), arrow_text_columns(table)
                return read_parquet(path, cats, ids, skip)
            return read_parquet(path, skip=skip)
        raw = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8",
        )
        return raw, frozenset()
    except UNREADABLE as exc:
        raise DataReadError.unreadable(path, table, exc) from exc


# Each coercer returns the coerced series and a boolean mask of the cells that
# could not be coerced, or None when no cell failed (the common case, which then
# costs no extra pass). Series already in the canonical dtype are returned as is.


def _coerce_str(s: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=False) == "string":
        # Every cell is a str (no nulls): nothing to do.
        return s, None
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        # Parquet strings, CSV text: only normalise nulls to None.
        out = s.astype(object)
        null = out.isna()
        if null.any():
            out = out.where(~null, None)
        return out, None
    null = s.isna()
    out = s.astype(object).where(~null, None)
    # Numbers that arrived as floats (e.g. ids in a parquet export) become their text.
    values = out.to_numpy()
    not_text = ~null.to_numpy() & ~pd.Series(values).map(type).eq(str).to_numpy()
    if not_text.any():
        out[not_text] = [_as_text(v) for v in values[not_text]]
    return out, None


def _as_text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _coerce_float(s: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    if s.dtype == np.float64:
        return s, None
    out = pd.to_numeric(s, errors="coerce").astype("float64")
    return out, s.notna() & out.isna()


def _coerce_int(s: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    if s.dtype == np.int64:
        return s, None
    num = pd.to_numeric(s, errors="coerce")
    bad = s.notna() & (num.isna() | (num.notna() & (num % 1 != 0)))
    out = num.where(~bad).astype("Int64")
    return out, bad


def _coerce_bool(s: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    if s.dtype == bool:
        return s, None
    null = s.isna().to_numpy()
    if pd.api.types.is_bool_dtype(s) and not null.any():
        return s.astype(bool), None
    low = s[~null].astype(str).str.strip().str.lower()
    state = np.full(len(s), -1, dtype=np.int8)  # -1 null or unparsable, 0 false, 1 true
    state[~null] = np.where(low.isin(_TRUE), 1, np.where(low.isin(_FALSE), 0, -1))
    out = pd.Series(pd.arrays.BooleanArray(state == 1, state == -1), index=s.index, dtype="boolean")
    return out, pd.Series(~null & (state == -1), index=s.index)


_DAY_NS = 86_400 * 10**9
_NAT_NS = np.iinfo(np.int64).min


def _coerce_date(s: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s.dt.tz_convert("UTC").dt.tz_localize(None) if s.dt.tz is not None else s
        if out.dtype != "datetime64[ns]":
            out = out.astype("datetime64[ns]")
        ns = out.to_numpy().view("i8")
        if s.hasnans:
            ns = ns[ns != _NAT_NS]  # (promised dates are mostly null)
        if (ns % _DAY_NS).any():
            out = out.dt.normalize()
        return out, None
    out = pd.to_datetime(s, errors="coerce", format="ISO8601")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    out = out.astype("datetime64[ns]")
    bad = s.notna() & out.isna()
    # A date column holds dates: a time of day other than midnight is a different fact.
    bad |= out.notna() & (out != out.dt.normalize())
    return out.where(~bad), bad


_UTC_NS = pd.DatetimeTZDtype(unit="ns", tz="UTC")


def _coerce_timestamp(s: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    if s.dtype == _UTC_NS:
        return s, None
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")
        return out.astype("datetime64[ns, UTC]"), None
    # Naive timestamps are UTC by the contract; offsets are converted to UTC. The two
    # kinds are parsed apart: pandas would otherwise lend a naive string the offset of
    # its neighbours.
    text = s.astype("string").str.strip()
    has_offset = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True).fillna(False)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    for mask in (has_offset, ~has_offset):
        if mask.any():
            out[mask] = pd.to_datetime(
                text[mask].astype(object), errors="coerce", utc=True, format="ISO8601"
            ).astype("datetime64[ns, UTC]")
    return out, s.notna() & out.isna()


_NULLABLE: dict[str, tuple[str, ...]] = {"offers": ("n_installments",)}

#: Per contract type: a function of a column returning its parsed values and a mask of the
#: values that do not parse (None: none can fail).
COERCERS = {
    "str": _coerce_str,
    "float": _coerce_float,
    "int": _coerce_int,
    "bool": _coerce_bool,
    "date": _coerce_date,
    "timestamp": _coerce_timestamp,
}
_CHECK_NAMES = {
    "str": "parse as text",
    "float": "parse as a number",
    "int": "parse as an integer",
    "bool": "parse as a boolean (true/false, 1/0, yes/no, y/n, t/f)",
    "date": "parse as an ISO date (YYYY-MM-DD)",
    "timestamp": "parse as an ISO timestamp",
}


def coerce_table(
    table: str, raw: pd.DataFrame, source: str = "<memory>"
) -> tuple[pd.DataFrame, list[ParseFailure]]:
    """Coerce a raw table to the contract's dtypes and column order.

    Parameters
    ----------
    table : str
        The contract table name.
    raw : pandas.DataFrame
        The table as read (CSV text or parquet types). It is not modified, and
        the result shares no memory with it.
    source : str
        The file it came from, for error messages.

    Returns
    -------
    (pandas.DataFrame, list of ParseFailure)
        The coerced frame (required columns in contract order, then the optional
        ones present) and the cells that could not be coerced (set to null).

    Raises
    ------
    DataReadError
        When a required column is missing (columns beyond the contract's are
        ignored with a warning: see :func:`extra_columns`).

    Examples
    --------
    >>> raw = pd.DataFrame({"account_id": ["A1"], "installment_no": ["1"],
    ...                     "due_date": ["2024-01-31"], "amount_due": ["100.5"]})
    >>> df, failures = coerce_table("installments", raw)
    >>> df.dtypes.astype(str).tolist(), failures
    (['object', 'int64', 'datetime64[ns]', 'float64'], [])
    """
    return _coerce_table(table, raw, source, copy=True)


def _coerce_table(
    table: str,
    raw: pd.DataFrame,
    source: str,
    copy: bool,
    text_columns: frozenset[str] = frozenset(),
    left_out: frozenset[str] = frozenset(),
) -> tuple[pd.DataFrame, list[ParseFailure]]:
    """Coerce ``raw`` (see :func:`coerce_table`); without ``copy`` the result may share its memory.

    ``text_columns`` are known to hold only ``str`` or ``None`` (arrow strings)
    and are taken as they are; ``left_out`` are in the file but not read, and
    are left out of the result.
    """
    n = len(raw)
    index = pd.RangeIndex(n)
    columns: dict[str, pd.Series] = {}
    for i, name in enumerate(raw.columns):
        series = raw.iloc[:, i]
        if not series.index.equals(index):
            series = series.reset_index(drop=True)
        columns[str(name).strip()] = series
    text_columns = frozenset(str(c).strip() for c in text_columns)
    required = COLUMNS[table]
    optional = OPTIONAL_COLUMNS.get(table, ())
    defaults = DEFAULTS.get(table, {})
    for col, value in defaults.items():
        if col not in columns:
            columns[col] = pd.Series(value, index=index)
    missing = [c for c in required if c not in columns and c not in left_out]
    if missing:
        raise DataReadError(
            f"{source}: table {table!r} lacks required column(s) {', '.join(missing)}; "
            f"the contract lists {', '.join(required)}"
        )
    ignored = extra_columns(table, columns)
    if ignored:
        log.warning(
            "%s: table %r has column(s) the contract does not name, ignored: %s",
            source,
            table,
            ", ".join(ignored),
        )
    failures: list[ParseFailure] = []
    out: dict[str, pd.Series] = {}
    for col in [
        *[c for c in required if c not in left_out],
        *[c for c in optional if c in columns],
    ]:
        kind = TYPES[table][col]
        series = columns.pop(col)
        if col in defaults and col not in vocab.SUPPRESSING_STATUSES and series.hasnans:
            series = series.where(series.notna(), defaults[col])
        if kind == "str" and col in text_columns and _is_text_dtype(series.dtype):
            coerced, bad = series, None
        else:
            coerced, bad = COERCERS[kind](series)
        if bad is not None and bad.any():
            failures.append(
                ParseFailure(table, col, _CHECK_NAMES[kind], series.index[bad], series[bad])
            )
        if kind in ("bool", "int"):
            if col in _NULLABLE.get(table, ()):
                coerced = coerced.astype("Int64") if kind == "int" else coerced
            else:
                # Every boolean and integer of the contract is required except these:
                # report the null here and fill it, so the column keeps its numpy dtype.
                if coerced.hasnans and table == "accounts" and col in _EMPTY_MEANS_SET:
                    # An empty suppression flag is read as set: never contact on a blank.
                    null = coerced.isna() if bad is None else coerced.isna() & ~bad
                    coerced = coerced.mask(null, True)
                if coerced.hasnans:
                    null = coerced.isna() if bad is None else coerced.isna() & ~bad
                    if null.any():
                        failures.append(
                            ParseFailure(
                                table, col, "not_nullable", series.index[null], series[null]
                            )
                        )
                    coerced = coerced.fillna(False if kind == "bool" else 0)
                target = bool if kind == "bool" else np.int64
                if coerced.dtype != target:
                    coerced = coerced.astype(target)
        out[col] = coerced
        del series
    frame = pd.DataFrame(out, index=index, copy=copy)
    return frame, failures


def _is_text_dtype(dtype: object) -> bool:
    """True for the dtypes a text column is read into: object, categorical or arrow strings."""
    return pd.api.types.is_object_dtype(dtype) or isinstance(
        dtype, (pd.CategoricalDtype, pd.StringDtype)
    )


#: The suppression flags of accounts: an empty cell counts as set (the contract's safe side).
_EMPTY_MEANS_SET = frozenset(vocab.SUPPRESSING_STATUSES)


def extra_columns(table: str, columns) -> list[str]:
    """Return the columns of ``table`` that the contract does not name (ignored on read).

    Examples
    --------
    >>> extra_columns("payments", ["payment_id", "account_id", "colour", "amount"])
    ['colour']
    """
    known = {*COLUMNS[table], *OPTIONAL_COLUMNS.get(table, ())}
    return [str(c).strip() for c in columns if str(c).strip() not in known]


def read_tables(
    data_dir: Path | str,
    categories: bool = False,
    checksums: bool = True,
    skip: dict[str, frozenset[str]] | None = None,
) -> RawTables:
    """Read and coerce every contract table in ``data_dir``.

    Parameters
    ----------
    data_dir : path
        Folder holding ``<table>.parquet``, ``<table>.csv`` or ``<table>/`` parts.
    categories : bool
        Read the parquet text columns of
        :func:`~pipeline.parquet_read.categorical_columns` as pandas ``Categorical``
        and those of :func:`~pipeline.parquet_read.arrow_text_columns` as arrow
        strings (same values, far less memory and hashing); CSV text stays
        ``object``. :func:`pipeline.validation.validate_tables` accepts
        both and hands back ``object`` columns unless told to keep them.
    checksums : bool
        Record each file's sha256 (the manifest's input checksum). A shard
        task leaves it out: its manifest carries the export's checksums,
        computed once by the partition (:mod:`pipeline.shards`).
    skip : dict, optional
        Per table, columns not to decode when its file is parquet and stores
        them as text (:func:`~pipeline.parquet_read.is_text_type`): the caller
        knows their other rules hold (a shard task, see
        :func:`pipeline.shard_tasks.still_proven`). A required one must still be
        in the file. They are listed in ``RawTables.left_out``.

    Returns
    -------
    RawTables
        The coerced tables (``offers`` only if present), the cells that failed
        coercion, and per table its path, row count and (with ``checksums``)
        checksum.

    Raises
    ------
    DataReadError
        When the folder or a required table is missing, or a table is unreadable.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataReadError(f"{data_dir}: data folder does not exist")
    result = RawTables(tables={})
    for table in vocab.TABLES:
        path = find_table(data_dir, table)
        if path is None:
            if table in vocab.REQUIRED_TABLES:
                raise DataReadError(
                    f"{data_dir}: required table {table!r} is missing "
                    f"(expected {table}.parquet, {table}.csv or a folder {table}/ of parquet parts)"
                )
            continue
        raw, text_columns = _read_raw(path, table, categories, (skip or {}).get(table, frozenset()))
        left_out = {str(c).strip(): str(c) for c in text_columns if c not in raw.columns}
        ignored = extra_columns(table, raw.columns)
        frame, failures = _coerce_table(
            table, raw, str(path), False, text_columns, frozenset(left_out)
        )
        del raw
        result.tables[table] = frame
        result.parse_failures.extend(failures)
        result.files[table] = {"path": str(path), "rows": len(frame)}
        if checksums:
            result.files[table]["sha256"] = file_checksum(path)
        result.files[table]["ignored_columns"] = ignored
        if left_out:
            result.left_out[table] = left_out
    return result


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write a frame as parquet without the pandas index, deterministically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path)

"""Read the contract's input tables from a data folder, coercing what exports look like.

A data folder holds one entry per table: ``<table>.parquet``, ``<table>.csv``
or a folder ``<table>/`` of parquet parts. CSV is read as text and coerced
column by column (ISO dates, UTC timestamps, true/false/1/0 booleans, empty
cells as null). A cell that cannot be coerced does not stop the read: it
becomes null and is reported as a *parse failure* so that validation rejects
its row with the raw value, instead of losing it silently.

Problems that make a table unreadable (a required table missing, a file that
is not parquet/CSV, a missing required column, an unexpected column) raise
:class:`DataReadError`, whose message names the file and the problem.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features import vocab
from pipeline.contract import COLUMNS, DEFAULTS, OPTIONAL_COLUMNS, TYPES

_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


class DataReadError(Exception):
    """A table cannot be read at all; the message names the file and the problem."""


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
    """Return the sha256 of a file, or of a folder's parquet parts in name order."""
    digest = hashlib.sha256()
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    for f in files:
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _read_raw(path: Path, table: str) -> pd.DataFrame:
    try:
        if path.is_dir():
            parts = sorted(path.glob("*.parquet"))
            frames = [pq.read_table(p).to_pandas() for p in parts]
            return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if path.suffix == ".parquet":
            return pq.read_table(path).to_pandas()
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8",
        )
    except (OSError, ValueError, pa.ArrowException, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataReadError(f"{path}: cannot read table {table!r}: {first_line}") from exc


def _coerce_str(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        # Fast path (parquet strings, CSV text): only normalise nulls to None.
        out = s.astype(object)
        if out.isna().any():
            out = out.where(out.notna(), None)
        return out, pd.Series(False, index=s.index)
    out = s.astype(object).where(s.notna(), None)
    # Numbers that arrived as floats (e.g. ids in a parquet export) become their text.
    mask = out.map(lambda v: v is not None and not isinstance(v, str))
    if mask.any():
        out[mask] = out[mask].map(_as_text)
    return out, pd.Series(False, index=s.index)


def _as_text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _coerce_float(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    out = pd.to_numeric(s, errors="coerce").astype("float64")
    return out, s.notna() & out.isna()


def _coerce_int(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    num = pd.to_numeric(s, errors="coerce")
    bad = s.notna() & (num.isna() | (num.notna() & (num % 1 != 0)))
    out = num.where(~bad).astype("Int64")
    return out, bad


def _coerce_bool(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_bool_dtype(s) and not s.isna().any():
        return s.astype(bool), pd.Series(False, index=s.index)
    text = s.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    low = text.str.strip().str.lower()
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[low.isin(_TRUE)] = True
    out[low.isin(_FALSE)] = False
    bad = text.notna() & out.isna()
    return out, bad


def _coerce_date(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s.dt.tz_convert("UTC").dt.tz_localize(None) if s.dt.tz is not None else s
        return out.astype("datetime64[ns]").dt.normalize(), pd.Series(False, index=s.index)
    out = pd.to_datetime(s, errors="coerce", format="ISO8601")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    out = out.astype("datetime64[ns]")
    bad = s.notna() & out.isna()
    # A date column holds dates: a time of day other than midnight is a different fact.
    bad |= out.notna() & (out != out.dt.normalize())
    return out.where(~bad), bad


def _coerce_timestamp(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")
        return out.astype("datetime64[ns, UTC]"), pd.Series(False, index=s.index)
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

_COERCERS = {
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
    "bool": "parse as a boolean (true/false/1/0)",
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
        The table as read (CSV text or parquet types).
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
        When a required column is missing or an unexpected column is present.

    Examples
    --------
    >>> raw = pd.DataFrame({"account_id": ["A1"], "installment_no": ["1"],
    ...                     "due_date": ["2024-01-31"], "amount_due": ["100.5"]})
    >>> df, failures = coerce_table("installments", raw)
    >>> df.dtypes.astype(str).tolist(), failures
    (['object', 'int64', 'datetime64[ns]', 'float64'], [])
    """
    raw = raw.copy()
    raw.columns = [str(c).strip() for c in raw.columns]
    required = COLUMNS[table]
    optional = OPTIONAL_COLUMNS.get(table, ())
    defaults = DEFAULTS.get(table, {})
    for col, value in defaults.items():
        if col not in raw.columns:
            raw[col] = value
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise DataReadError(
            f"{source}: table {table!r} lacks required column(s) {', '.join(missing)}; "
            f"the contract lists {', '.join(required)}"
        )
    unexpected = [c for c in raw.columns if c not in required and c not in optional]
    if unexpected:
        raise DataReadError(
            f"{source}: table {table!r} has unexpected column(s) {', '.join(unexpected)}; "
            f"allowed: {', '.join(required + optional)}"
        )
    failures: list[ParseFailure] = []
    out: dict[str, pd.Series] = {}
    for col in [*required, *[c for c in optional if c in raw.columns]]:
        kind = TYPES[table][col]
        series = raw[col].reset_index(drop=True)
        if col in defaults:
            series = series.where(series.notna(), defaults[col])
        coerced, bad = _COERCERS[kind](series)
        if bad.any():
            failures.append(
                ParseFailure(table, col, _CHECK_NAMES[kind], series.index[bad], series[bad])
            )
        if kind in ("bool", "int") and col not in _NULLABLE.get(table, ()):
            # Every boolean and integer of the contract is required except these:
            # report the null here and fill it, so the column keeps its numpy dtype.
            null = coerced.isna() & ~bad
            if null.any():
                failures.append(
                    ParseFailure(table, col, "not_nullable", series.index[null], series[null])
                )
            coerced = coerced.fillna(False if kind == "bool" else 0)
        out[col] = coerced
    frame = pd.DataFrame(out)
    # Nullable extension dtypes -> the canonical numpy dtypes (nulls were filled above).
    for col in frame.columns:
        kind = TYPES[table][col]
        if col in _NULLABLE.get(table, ()):
            continue
        if kind == "bool":
            frame[col] = frame[col].astype(bool)
        elif kind == "int":
            frame[col] = frame[col].astype("int64")
    return frame, failures


def read_tables(data_dir: Path | str) -> RawTables:
    """Read and coerce every contract table in ``data_dir``.

    Parameters
    ----------
    data_dir : path
        Folder holding ``<table>.parquet``, ``<table>.csv`` or ``<table>/`` parts.

    Returns
    -------
    RawTables
        The coerced tables (``offers`` only if present), the cells that failed
        coercion, and per table its path, row count and checksum.

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
        raw = _read_raw(path, table)
        frame, failures = coerce_table(table, raw, source=str(path))
        result.tables[table] = frame
        result.parse_failures.extend(failures)
        result.files[table] = {
            "path": str(path),
            "rows": len(frame),
            "sha256": file_checksum(path),
        }
    return result


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write a frame as parquet without the pandas index, deterministically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path)

"""Read parquet tables into pandas column by column, compactly: the reader of :mod:`pipeline.io`.

Repeated text can come as pandas ``Categorical`` straight from parquet's
dictionary pages, ids as arrow strings, UTC timestamps as numpy instants; each
conversion gives the values and dtypes arrow's own ``to_pandas`` gives, in
fewer passes (tested against it).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features import vocab
from pipeline.contract_columns import TYPES


def table_files(path: Path) -> list[Path]:
    """Return a table's parquet files: a folder's parts in name order, or the file itself."""
    return sorted(path.glob("*.parquet")) if path.is_dir() else [path]


def read_rows(path: Path | str, name: str, rows: np.ndarray) -> np.ndarray:
    """Return one text column's cells at row positions ``rows`` of a parquet table, as objects.

    The cells are ``str`` (None for a null), as the read of
    :func:`pipeline.io.read_tables` gives them: for a column it left out (``skip``).
    """
    files = table_files(Path(path))
    column = pa.concat_tables([pq.read_table(f, columns=[name]) for f in files]).column(0)
    return np.asarray(column.take(pa.array(rows, pa.int64())).to_pylist(), dtype=object)


def _index_columns(schema: pa.Schema) -> set[str]:
    """Names of the columns that hold a pandas index in a parquet file written by pandas."""
    meta = schema.pandas_metadata or {}
    return {c for c in meta.get("index_columns", []) if isinstance(c, str)}


#: Rows looked at to tell a column of repeated strings from a column of ids.
_PROBE_ROWS = 4_096


def _strings_to_pandas(arr: pa.ChunkedArray) -> pd.Series:
    """Convert an arrow string column to an object Series of ``str`` (nulls as None).

    Repeated values (account_id in a child table, channels, outcomes) are
    deduplicated so that each distinct string is one Python object (24M
    installments hold 1M account_id objects, not 24M). A column whose first
    rows are mostly distinct (ids) is converted without deduplication: hashing
    ten million distinct strings would cost seconds and a gigabyte of memo table
    for nothing.
    """
    head = arr.slice(0, _PROBE_ROWS)
    distinct = pc.count_distinct(head).as_py() if len(head) else 0
    return arr.to_pandas(deduplicate_objects=2 * distinct <= len(head))


def _dictionary_to_pandas(arr: pa.ChunkedArray) -> pd.Series:
    """Convert a dictionary-encoded arrow column to a pandas ``Categorical`` Series.

    The same categories (the chunks' dictionaries unified in chunk order) and
    codes as arrow's own ``to_pandas``, in fewer passes: the dictionaries are
    unified once, the distinct strings become Python objects once, and the
    codes are the concatenated indices (a null as -1), narrowed in arrow to
    the integer type pandas gives that many categories.

    Examples
    --------
    >>> parts = [pa.array(["b", None, "b"]).dictionary_encode(), pa.array(["a"]).dictionary_encode()]
    >>> s = _dictionary_to_pandas(pa.chunked_array(parts))
    >>> s.tolist(), list(s.cat.categories), str(s.cat.codes.dtype)
    (['b', nan, 'b', 'a'], ['b', 'a'], 'int8')
    """
    arr = arr.unify_dictionaries()
    if arr.num_chunks == 0:
        return arr.to_pandas()
    dictionary = arr.chunk(0).dictionary
    n = len(dictionary)
    # pandas' narrowest code type for n categories, cast in arrow (the indices are < n).
    code_type = pa.int8() if n < 127 else pa.int16() if n < 32767 else pa.int32()
    indices = pa.chunked_array([c.indices for c in arr.chunks], type=arr.type.index_type)
    indices = indices.cast(code_type, safe=False)
    if indices.null_count:
        indices = indices.fill_null(-1)
    categories = pd.Index(dictionary.to_numpy(zero_copy_only=False), dtype=object)
    dtype = pd.CategoricalDtype(categories, ordered=False)
    values = pd.Categorical.from_codes(indices.to_numpy(), dtype=dtype, validate=False)
    return pd.Series(values, copy=False)


def _is_utc_ns(type_: pa.DataType) -> bool:
    """True for arrow's UTC timestamps in nanoseconds (how pandas writes ``datetime64[ns, UTC]``)."""
    return pa.types.is_timestamp(type_) and type_.unit == "ns" and type_.tz == "UTC"


def _utc_to_pandas(arr: pa.ChunkedArray) -> pd.Series:
    """Convert UTC nanosecond timestamps to a ``datetime64[ns, UTC]`` Series.

    The same values and dtype as ``arr.to_pandas()``, which spends some 10 ms
    more on a million timestamps: the instants are taken as numpy
    ``datetime64[ns]`` (nulls as NaT) and marked as UTC.

    Examples
    --------
    >>> arr = pa.chunked_array([pa.array([0, None], pa.timestamp("ns", tz="UTC"))])
    >>> _utc_to_pandas(arr).tolist() == arr.to_pandas().tolist()
    True
    """
    instants = pd.DatetimeIndex(arr.to_numpy(), copy=False).tz_localize("UTC")
    return pd.Series(instants, index=pd.RangeIndex(len(instants)), copy=False)


def categorical_columns(table: str) -> frozenset[str]:
    """Return the text columns of ``table`` read as categoricals (:func:`pipeline.io.read_tables`).

    Those are the columns of repeated values: a child table's ``account_id``
    and its vocabularies (channel, outcome, agent...), not its own key (ids
    are distinct) and nothing of ``accounts`` (one row per account).

    Examples
    --------
    >>> sorted(categorical_columns("payments"))
    ['account_id', 'channel']
    """
    if table == "accounts" or table not in TYPES:
        return frozenset()
    key = vocab.TABLE_KEYS[table]
    return frozenset(c for c, kind in TYPES[table].items() if kind == "str" and c != key)


def arrow_text_columns(table: str) -> frozenset[str]:
    """Return the text columns that :func:`pipeline.io.read_tables` keeps as arrow strings: ids.

    Ids are distinct, so a categorical would save nothing; as arrow strings
    (``pandas.StringDtype("pyarrow")``) they need no Python object per row.

    Examples
    --------
    >>> sorted(arrow_text_columns("contacts")), sorted(arrow_text_columns("installments"))
    (['contact_id'], [])
    """
    if table == "accounts" or table not in TYPES:
        return frozenset()
    key = vocab.TABLE_KEYS[table]
    return frozenset({key}) if TYPES[table].get(key) == "str" else frozenset()


def read_parquet(
    path: Path,
    categorical: frozenset[str] = frozenset(),
    arrow: frozenset[str] = frozenset(),
    skip: frozenset[str] = frozenset(),
) -> tuple[pd.DataFrame, frozenset[str]]:
    """Read a parquet file or folder of parts column by column.

    Returns the frame and the names of its columns that came from arrow string
    columns (so they hold only ``str`` and ``None`` and need no inference),
    which include the columns left out: those named in ``skip`` that are
    stored as text (:func:`is_text_type`) are not decoded at all.
    Text columns named in ``categorical`` are read through parquet's own
    dictionary pages as a pandas ``Categorical`` (one Python string per
    distinct value, integer codes per row: no string object per row); those
    named in ``arrow`` stay arrow strings (``pandas.StringDtype("pyarrow")``).
    One column at a time is converted, and its arrow buffers are freed before
    the next, which keeps the peak memory near the size of the pandas frame.
    Arrow allocates from the system allocator meanwhile, so that the memory of
    numeric columns (which pandas shares with arrow) returns to the operating
    system when a table is dropped, instead of staying in arrow's own pool.
    """
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        return _read_parquet_columns(path, categorical, arrow, skip)
    finally:
        pa.set_memory_pool(previous)


def _is_text(type_: pa.DataType) -> bool:
    """True for arrow's string types."""
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def is_text_type(type_: pa.DataType) -> bool:
    """True for the arrow types whose every cell reads as a ``str`` or null: the contract's text rule holds.

    Examples
    --------
    >>> is_text_type(pa.string()), is_text_type(pa.null()), is_text_type(pa.int64())
    (True, True, False)
    >>> is_text_type(pa.dictionary(pa.int32(), pa.string()))
    True
    """
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    return _is_text(type_) or pa.types.is_null(type_)


def _column_to_pandas(arr: pa.ChunkedArray, keep_arrow: bool) -> pd.Series:
    """Convert one decoded column: dictionaries to categoricals, text to ``str`` objects (or
    arrow strings when ``keep_arrow``), UTC instants to numpy, the rest as arrow does."""
    if pa.types.is_dictionary(arr.type):
        return _dictionary_to_pandas(arr) if _is_text(arr.type.value_type) else arr.to_pandas()
    if _is_text(arr.type):
        if keep_arrow:
            return pd.Series(pd.arrays.ArrowStringArray(arr), copy=False)
        return _strings_to_pandas(arr)
    if _is_utc_ns(arr.type):
        return _utc_to_pandas(arr)
    return arr.to_pandas()


def _read_parquet_columns(
    path: Path, categorical: frozenset[str], arrow: frozenset[str], skip: frozenset[str]
) -> tuple[pd.DataFrame, frozenset[str]]:
    files = table_files(path)
    with ExitStack() as stack:
        sources = [stack.enter_context(pq.ParquetFile(f)) for f in files]
        if not sources:
            return pd.DataFrame(), frozenset()
        schemas = [src.schema_arrow for src in sources]
        if any(not s.equals(schemas[0], check_metadata=False) for s in schemas[1:]):
            # Parts disagree on types: let pandas reconcile them, as before.
            frames = [src.read().to_pandas() for src in sources]
            return pd.concat(frames, ignore_index=True), frozenset()
        index = _index_columns(schemas[0])
        fields = [f for f in schemas[0] if f.name not in index]
        left_out = {f.name for f in fields if f.name.strip() in skip and is_text_type(f.type)}
        fields = [f for f in fields if f.name not in left_out]

        as_dictionary = [
            f.name for f in fields if _is_text(f.type) and f.name.strip() in categorical
        ]
        # The same files, read with these columns dictionary-encoded as stored (their
        # footers parsed once, above); _dictionary_to_pandas unifies the dictionaries.
        dictionary_sources = [
            stack.enter_context(
                pq.ParquetFile(f, read_dictionary=as_dictionary, metadata=src.metadata)
            )
            for f, src in zip(files, sources, strict=True)
            if as_dictionary
        ]

        def decode(field_: pa.Field) -> pa.ChunkedArray:
            if field_.name in as_dictionary:
                chunks = [
                    c
                    for src in dictionary_sources
                    for c in src.read(columns=[field_.name]).column(0).chunks
                ]
                empty = pa.dictionary(pa.int32(), field_.type)
                return pa.chunked_array(chunks) if chunks else pa.chunked_array([], empty)
            chunks = [
                c for src in sources for c in src.read(columns=[field_.name]).column(0).chunks
            ]
            return pa.chunked_array(chunks, type=field_.type)

        columns: dict[str, pd.Series] = {}
        text: set[str] = set()
        # Decoding (arrow, without the GIL) of the next column overlaps the conversion
        # of this one to Python objects: two columns at most are held as arrow arrays.
        with ThreadPoolExecutor(max_workers=1) as worker:
            pending = worker.submit(decode, fields[0]) if fields else None
            for i, field_ in enumerate(fields):
                arr = pending.result()
                pending = worker.submit(decode, fields[i + 1]) if i + 1 < len(fields) else None
                columns[field_.name] = _column_to_pandas(arr, field_.name.strip() in arrow)
                if pa.types.is_dictionary(arr.type) or _is_text(arr.type):
                    text.add(field_.name)
                del arr
        n_rows = sum(src.metadata.num_rows for src in sources)
        frame = pd.DataFrame(columns, index=pd.RangeIndex(n_rows), copy=False)
        return frame, frozenset(text | left_out)

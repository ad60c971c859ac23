"""Write an export's tables as the shard layout of :mod:`pipeline.shards` (``propensity partition``).

The split streams record batches: each batch's rows go to their account's
shard (:func:`pipeline.shards.row_shards`), buffered into large row groups,
so the split's memory is bounded (:data:`SPLIT_BUFFER_BYTES`), not the book.
The partition also records, once for all jobs, the export's files (rows,
checksums), its date extremes (:func:`scan_export_dates`), the ids
repeated across shards and the tables whose ids are clean
(:func:`pipeline.partition_ids.check_ids`).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features import vocab
from pipeline.asof import DATE_COLUMNS, combine_dates, day_text, export_dates
from pipeline.io import UNREADABLE, DataReadError, file_checksum, find_table, first_line
from pipeline.layout_file import LAYOUT_FILE, is_partitioned
from pipeline.parquet_read import table_files
from pipeline.partition_ids import as_reader_text, check_ids
from pipeline.shards import (
    MAX_SHARDS,
    SHARD_KEY,
    account_shards,
    read_layout,
    row_shards,
    shard_dir_name,
    shard_dirs,
    write_account_rows,
)

_BATCH_ROWS = 1 << 18


#: Rows per row group of a shard's files (see :class:`_ShardWriters`).
ROW_GROUP_ROWS = 1 << 19


#: Rows the split may buffer for all shards together, in bytes of arrow data.
SPLIT_BUFFER_BYTES = 512 * 2**20
#: Codec of the shards' files: LZ4 (parquet's LZ4_RAW) decodes faster than snappy at the same size.
SHARD_COMPRESSION = "lz4"


def _read_accounts_keys(path: Path) -> pa.Table:
    if path.suffix == ".csv":
        from pyarrow import csv

        names = {n.strip(): n for n in csv_header(path)}
        cols = [names[c] for c in ("account_id", SHARD_KEY) if c in names]
        table = csv.read_csv(
            path,
            convert_options=csv.ConvertOptions(
                include_columns=cols,
                column_types={c: pa.string() for c in cols},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
        return table.rename_columns([c.strip() for c in table.column_names])
    dataset = _dataset(path)
    cols = [c for c in ("account_id", SHARD_KEY) if c in dataset.schema.names]
    table = dataset.to_table(columns=cols)
    # Keys stored as numbers or bytes route as the reader's text of them (partition_ids).
    return pa.table({c: as_reader_text(table.column(c)) for c in cols})


def csv_header(path: Path) -> list[str]:
    """Return the column names of a CSV file as written in its header."""
    import csv as csv_module

    with path.open(encoding="utf-8", newline="") as fh:
        return next(csv_module.reader(fh), [])


def _dataset(path: Path):
    import pyarrow.dataset as ds

    files = table_files(path)
    return ds.dataset([str(f) for f in files], format="parquet")


def _batches(path: Path):
    """Yield (schema, record batches) of a table file, CSV cells kept as text."""
    if path.suffix == ".csv":
        from pyarrow import csv

        names = csv_header(path)
        reader = csv.open_csv(
            path,
            read_options=csv.ReadOptions(block_size=1 << 24),
            convert_options=csv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
        return reader.schema, reader
    files = table_files(path)
    schema = pq.ParquetFile(files[0]).schema_arrow
    for f in files[1:]:
        if not pq.ParquetFile(f).schema_arrow.equals(schema, check_metadata=False):
            raise DataReadError(f"{path}: parquet parts disagree on column types; cannot partition")

    def gen():
        for f in files:
            yield from pq.ParquetFile(f).iter_batches(batch_size=_BATCH_ROWS)

    return schema, gen()


class _ShardWriters:
    """One parquet writer per shard that buffers its rows into large row groups.

    The split cuts each input batch into ``n_shards`` slices; written as they
    come, a shard's file would hold one small row group per input batch (about
    16k rows at 16 shards), and every job reading it would pay per row group:
    unifying the dictionaries of its categoricals, decoding many small pages.
    Buffered, a shard's rows are written in row groups of ``row_group_rows``;
    all buffers are flushed when together they pass ``budget_bytes``, which
    bounds the split's memory whatever the number of shards.
    """

    def __init__(
        self, files: list[Path], schema: pa.Schema, row_group_rows: int, budget_bytes: int
    ):
        self.writers = [pq.ParquetWriter(f, schema, compression=SHARD_COMPRESSION) for f in files]
        self.buffers: list[list[pa.RecordBatch]] = [[] for _ in files]
        self.rows = [0] * len(files)
        self.bytes = 0
        self.row_group_rows = row_group_rows
        self.budget_bytes = budget_bytes

    def add(self, k: int, part: pa.RecordBatch) -> None:
        """Buffer a slice of shard ``k``; write its full row groups once it has some."""
        self.buffers[k].append(part)
        self.rows[k] += part.num_rows
        self.bytes += part.nbytes
        if self.rows[k] >= self.row_group_rows:
            self.flush(k, whole_groups=True)
        if self.bytes > self.budget_bytes:
            for j in range(len(self.buffers)):
                self.flush(j)

    def flush(self, k: int, whole_groups: bool = False) -> None:
        """Write shard ``k``'s buffered rows in row groups of ``row_group_rows``.

        With ``whole_groups``, only full row groups are written and the rest
        stays buffered (so a row group is not cut short at every flush).
        """
        if not self.buffers[k]:
            return
        table = pa.Table.from_batches(self.buffers[k])
        n = table.num_rows
        if whole_groups:
            n -= n % self.row_group_rows
        self.writers[k].write_table(table.slice(0, n), row_group_size=self.row_group_rows)
        rest = table.slice(n).to_batches()
        self.bytes += sum(b.nbytes for b in rest) - sum(b.nbytes for b in self.buffers[k])
        self.buffers[k], self.rows[k] = rest, table.num_rows - n

    def close(self, ok: bool = True) -> None:
        """Flush every buffer (when ``ok``) and close every file."""
        try:
            if ok:
                for k in range(len(self.buffers)):
                    self.flush(k)
        finally:
            for w in self.writers:
                w.close()


def _split_table(path: Path, table: str, out: Path, by_account: pd.Series, n_shards: int) -> int:
    """Stream one table into its shard files; return the rows written."""
    try:
        schema, batches = _batches(path)
        writers = _ShardWriters(
            [out / shard_dir_name(k) / f"{table}.parquet" for k in range(n_shards)],
            schema,
            ROW_GROUP_ROWS,
            SPLIT_BUFFER_BYTES,
        )
        rows = 0
        value_set = pa.array(by_account.index.to_numpy(dtype=object), type=pa.string())
        shards = by_account.to_numpy()
        ok = False
        try:
            for batch in batches:
                id_col = next((c for c in batch.schema.names if c.strip() == "account_id"), None)
                if id_col is None:
                    raise DataReadError(f"{path}: table {table!r} lacks column account_id")
                ids = as_reader_text(batch.column(id_col))
                shard = row_shards(ids, value_set, shards, n_shards)
                # A radix sort on 16-bit shard numbers keeps the input order within a shard.
                order = np.argsort(shard.astype(np.int16), kind="stable")
                bounds = np.searchsorted(shard[order], np.arange(n_shards + 1))
                taken = batch.take(pa.array(order))
                for k in range(n_shards):
                    if bounds[k + 1] > bounds[k]:
                        writers.add(k, taken.slice(bounds[k], bounds[k + 1] - bounds[k]))
                rows += batch.num_rows
            ok = True
        finally:
            writers.close(ok)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataReadError(f"{path}: cannot partition table {table!r}: {first_line(exc)}") from exc
    return rows


#: Days outside pandas' nanosecond range fail coercion on read: statistics there are not used.
_SAFE_DAYS = ("1678-01-01", "2262-04-11")


def _stats_span(files: list[Path], name: str) -> tuple[str, str] | None:
    """The first and last day of a date column from the parquet statistics (None: scan it)."""
    lo, hi = None, None
    for f in files:
        meta = pq.ParquetFile(f).metadata
        schema = meta.schema.to_arrow_schema()
        i = schema.get_field_index(name)
        kind = schema.field(i).type
        if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
            return None
        for g in range(meta.num_row_groups):
            col = meta.row_group(g).column(i)
            if col.num_values == (col.statistics.null_count if col.statistics else -1):
                continue  # an all-null row group
            stats = col.statistics
            if stats is None or not stats.has_min_max:
                return None
            a, b = day_text(stats.min), day_text(stats.max)
            lo, hi = (a, b) if lo is None else (min(lo, a), max(hi, b))
    if lo is None or lo < _SAFE_DAYS[0] or hi > _SAFE_DAYS[1]:
        return None
    return lo, hi


def _scan_batches(path: Path, name: str):
    """Yield one column of a table file a batch at a time, as the reader converts it."""
    if path.suffix == ".csv":
        from pyarrow import csv

        reader = csv.open_csv(
            path,
            read_options=csv.ReadOptions(block_size=1 << 24),
            convert_options=csv.ConvertOptions(
                include_columns=[name],
                column_types={name: pa.string()},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
        for batch in reader:
            yield batch.column(0).to_pandas()
        return
    files = table_files(path)
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=_BATCH_ROWS, columns=[name]):
            yield batch.column(0).to_pandas()


def _column_name(path: Path, column: str) -> str | None:
    """The column's name as written in the file (exports may pad it with blanks)."""
    if path.suffix == ".csv":
        names = csv_header(path)
    else:
        files = table_files(path)
        names = pq.read_schema(files[0]).names
    return next((n for n in names if n.strip() == column), None)


def scan_export_dates(data_dir: Path | str) -> dict[str, dict[str, str]]:
    """Return :func:`pipeline.asof.export_dates` of a data folder without reading its tables.

    Each date column's first and last day come from the parquet column
    statistics when every row group has them; otherwise (CSV, dates stored
    as text, no statistics) that one column is scanned a batch at a time and
    coerced as the reader coerces it, so the days are those an unsharded run
    sees. A partitioned folder gives its recorded dates, or combines its
    shards' when the layout predates the record.

    Raises
    ------
    DataReadError
        When a table cannot be read.
    """
    from pipeline.contract_columns import COLUMNS, TYPES
    from pipeline.io import COERCERS

    data_dir = Path(data_dir)
    if is_partitioned(data_dir):
        layout = read_layout(data_dir)
        if "export_dates" in layout:
            return layout["export_dates"]
        return combine_dates(scan_export_dates(d) for d in shard_dirs(data_dir, layout))
    if not data_dir.is_dir():
        raise DataReadError(f"{data_dir}: data folder does not exist")
    for t in vocab.REQUIRED_TABLES:
        if find_table(data_dir, t) is None:
            raise DataReadError(f"{data_dir}: required table {t!r} is missing")
    out: dict[str, dict[str, str]] = {}
    for full in DATE_COLUMNS:
        table, column = full.split(".")
        path = find_table(data_dir, table)
        if path is None:
            continue
        try:
            name = _column_name(path, column)
            if name is None:
                raise DataReadError(
                    f"{path}: table {table!r} lacks required column(s) {column}; "
                    f"the contract lists {', '.join(COLUMNS[table])}"
                )
            span = None
            if path.suffix != ".csv":
                files = table_files(path)
                span = _stats_span(files, name)
            if span is None:
                coerce = COERCERS[TYPES[table][column]]
                parts = [
                    export_dates({table: pd.DataFrame({column: coerce(values)[0]})})
                    for values in _scan_batches(path, name)
                ]
                got = combine_dates(parts).get(full)
                span = None if got is None else (got["min"], got["max"])
        except UNREADABLE as exc:
            raise DataReadError.unreadable(path, table, exc) from exc
        if span is not None:
            out[full] = {"min": span[0], "max": span[1]}
    return out


def partition_data(
    data_dir: Path | str, out_dir: Path | str, n_shards: int, dates: dict | None = None
) -> dict:
    """Write the tables of ``data_dir`` as ``n_shards`` shard folders under ``out_dir``.

    Parameters
    ----------
    data_dir : path
        A data folder of the contract (parquet files, folders of parts, or CSV).
    out_dir : path
        Where to write the layout; replaced whole when it exists (the new
        layout is written beside it and renamed into place).
    n_shards : int
        Number of shards (1 or more).
    dates : dict, optional
        The export's :func:`scan_export_dates`, when the caller has it already.

    Returns
    -------
    dict
        The layout record written to ``shards.json``.

    Raises
    ------
    DataReadError
        When the folder or a required table is missing or unreadable.
    """
    if not 1 <= n_shards <= MAX_SHARDS:
        raise ValueError(f"--shards must be between 1 and {MAX_SHARDS}, got {n_shards}")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if not data_dir.is_dir():
        raise DataReadError(f"{data_dir}: data folder does not exist")
    paths = {t: find_table(data_dir, t) for t in vocab.TABLES}
    for t in vocab.REQUIRED_TABLES:
        if paths[t] is None:
            raise DataReadError(f"{data_dir}: required table {t!r} is missing")
    try:
        keys = _read_accounts_keys(paths["accounts"])
    except UNREADABLE as exc:
        raise DataReadError.unreadable(paths["accounts"], "accounts", exc) from exc
    if "account_id" not in keys.column_names:
        raise DataReadError(f"{paths['accounts']}: table 'accounts' lacks column account_id")
    by_account = account_shards(keys, n_shards)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        for k in range(n_shards):
            (tmp / shard_dir_name(k)).mkdir(parents=True)
        tables = {}
        for table, path in paths.items():
            if path is None:
                continue
            rows = _split_table(path, table, tmp, by_account, n_shards)
            tables[table] = {"path": str(path), "rows": rows, "sha256": file_checksum(path)}
        write_account_rows(keys, by_account, n_shards, tmp)
        duplicates, ids_clean, id_files = check_ids(tmp, n_shards, list(tables))
        layout = {
            "n_shards": n_shards,
            "key": SHARD_KEY,
            "source": str(data_dir),
            "tables": tables,
            "cross_shard_duplicates": duplicates,
            # Per table: no null and no repeated id in the book, stored as text.
            "ids_clean": ids_clean,
            # The bytes of each shard's file of a clean table: the files the proof holds for.
            "id_files": id_files,
            # The export's date extremes, for one as-of check over the whole book.
            "export_dates": scan_export_dates(data_dir) if dates is None else dates,
        }
        (tmp / LAYOUT_FILE).write_text(json.dumps(layout, indent=2), encoding="utf-8")
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return layout

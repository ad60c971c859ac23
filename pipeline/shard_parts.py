"""The parts a sharded job's tasks write, and how the driver reads them back.

Each shard task writes its outputs as one part per kind (scores, rejects,
features...) under the job's work folder (:func:`part_path`); the driver
concatenates the parts it merges in memory (:func:`concat_parts`) and copies
those that only go to an output file straight into it as the shards finish
(:func:`write_stream_part`, :class:`PartsWriter`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def part_path(work: Path | str, kind: str, shard: int, suffix: str = ".parquet") -> Path:
    """Return the part of one shard's output of one kind (parquet, or ``suffix``).

    Examples
    --------
    >>> part_path("w", "scores", 3).as_posix()
    'w/scores/part-00003.parquet'
    """
    return Path(work) / kind / f"part-{shard:05d}{suffix}"


def write_stream_part(frame: pd.DataFrame, work: Path | str, kind: str, shard: int) -> None:
    """Write a shard's part that :class:`PartsWriter` appends to the output, as Arrow IPC.

    The driver only copies these parts into the one output file: Arrow IPC
    costs the worker no parquet encoding and the driver no decoding (it is
    memory-mapped), and the output is encoded once, as parquet.
    """
    path = part_path(work, kind, shard, ".arrow")
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def concat_parts(work: Path, kind: str, n_shards: int) -> pd.DataFrame | None:
    """Read the parts of one kind in shard order as one frame (None when no shard wrote one)."""
    files = [part_path(work, kind, k) for k in range(n_shards)]
    files = [f for f in files if f.exists()]
    if not files:
        return None
    tables = [pq.read_table(f) for f in files]
    table = pa.concat_tables(tables, promote_options="permissive")
    return table.to_pandas()


class PartsWriter:
    """Append the parts of one kind, shard after shard, to one parquet file.

    Used as ``run_tasks``'s ``on_record``, it writes each shard's part while
    later shards are still computing, instead of reading every part again at
    the end. Parts are appended in the order they are given (shard order).
    """

    def __init__(self, work: Path, kind: str, out: Path):
        self.work, self.kind, self.out = work, kind, out
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._empty: Path | None = None

    def __call__(self, record: dict) -> None:
        """Append the part of ``record``'s shard (:func:`write_stream_part`), when it wrote one."""
        f = part_path(self.work, self.kind, record["shard"], ".arrow")
        if not f.exists():
            return
        with pa.memory_map(str(f)) as source:
            table = pa.ipc.open_file(source).read_all()
            if table.num_rows == 0:
                # An empty part's text columns have no type (null): it sets no schema,
                # and is written only when every part is empty.
                self._empty = self._empty or f
                return
            if self._writer is None:
                self.out.parent.mkdir(parents=True, exist_ok=True)
                self._writer = pq.ParquetWriter(self.out, table.schema)
            elif not table.schema.equals(self._writer.schema):
                table = table.cast(self._writer.schema)
            self._writer.write_table(table)
            self.rows += table.num_rows

    def abort(self) -> None:
        """Close the file of a run that failed, raising nothing: the run's own error is reported."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()

    def close(self) -> int:
        """Close the file; return the rows written."""
        if self._writer is None and self._empty is not None:
            with pa.memory_map(str(self._empty)) as source:
                table = pa.ipc.open_file(source).read_all()
                self.out.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, self.out)
        if self._writer is not None:
            self._writer.close()
        return self.rows

"""What ``propensity partition`` proves about the ids of a layout it wrote (:func:`check_ids`).

Ids must be unique over the whole table, but a shard's validation sees only
its own rows. So the partition reads every id once, a shard at a time, and
records the ids repeated across shards (each shard then rejects its copies,
as the whole-book validation would) and the tables whose ids are clean (no
null, no id repeated anywhere: a shard task need not read them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.shards import shard_dir_name

#: Tables whose id must be unique over the whole table, not only within a shard.
_UNIQUE_IDS = {"payments": "payment_id", "contacts": "contact_id", "offers": "offer_id"}


def _id_hashes(values: np.ndarray) -> np.ndarray:
    """Return a 64-bit hash of each id (an object array of ``str``)."""
    return pd.util.hash_array(values, categorize=False)


def id_facts(shard_ids: Callable[[int], np.ndarray], n_shards: int) -> tuple[list[str], bool]:
    """Return one table's ids repeated in more than one shard, and whether its ids are clean.

    Clean means no null id and no id repeated anywhere (within a shard or
    across shards): the table's non-null and uniqueness rules hold for every
    shard. ``shard_ids(k)`` gives shard ``k``'s ids as an object array (None
    for a null); it is called once per shard, and again for the shards
    holding a repeated hash. Only the 64-bit hashes of the ids are kept (12
    bytes a row); the ids whose hash repeats are then compared as text, so a
    hash collision neither hides a real duplicate nor invents one.
    """
    hashes, nulls = [], False
    for k in range(n_shards):
        values = shard_ids(k)
        null = pd.isna(values)
        nulls = nulls or bool(null.any())
        hashes.append(_id_hashes(values[~null]))
    flat = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
    flat.sort()
    repeated = np.unique(flat[1:][flat[1:] == flat[:-1]])
    if not len(repeated):
        return [], not nulls
    rows = []
    for k in range(n_shards):
        hit = np.isin(hashes[k], repeated)
        if hit.any():
            values = shard_ids(k)
            rows.append(pd.DataFrame({"id": values[~pd.isna(values)][hit], "shard": k}))
    both = pd.concat(rows, ignore_index=True)
    spread = both.groupby("id")["shard"].nunique()
    cross = sorted(str(v) for v in spread.index[spread.to_numpy() > 1])
    within = bool(both.duplicated(["id", "shard"]).any())
    return cross, not (nulls or cross or within)


def id_texts(column: pa.ChunkedArray) -> np.ndarray:
    r"""Return a column of ids as the reader's text (:func:`pipeline.io.read_tables`), None for a null.

    Text, and integers without nulls, are cast by arrow: the same text. Other
    types take the reader's own conversion (arrow writes 123456789012.0 as
    ``1.23456789012e+11`` and bytes as the text they encode, the reader
    ``123456789012`` and ``b'...'``), so that the ids recorded as repeated
    are those a shard reads.

    Examples
    --------
    >>> id_texts(pa.chunked_array([pa.array(["K1", None])])).tolist()
    ['K1', None]
    >>> id_texts(pa.chunked_array([pa.array([123456789012.0, None])])).tolist()
    ['123456789012', None]
    >>> id_texts(pa.chunked_array([pa.array([b"O1", b"\xff"])])).tolist()
    ["b'O1'", "b'\\xff'"]
    """
    from pipeline.io import COERCERS
    from pipeline.parquet_read import is_text_type

    if is_text_type(column.type) or (pa.types.is_integer(column.type) and not column.null_count):
        return column.cast(pa.string()).to_numpy(zero_copy_only=False).astype(object)
    return COERCERS["str"](column.to_pandas())[0].to_numpy(dtype=object)


def as_reader_text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Return an id column as arrow text equal to the reader's (:func:`id_texts`); text as is.

    The partition routes rows by these texts, so that an account stored as a
    number (``1001.0`` in accounts, ``1001`` in payments) meets its rows in one
    shard, as it does unsharded, where both read as ``"1001"``.

    Examples
    --------
    >>> as_reader_text(pa.array([1001.0, None])).to_pylist()
    ['1001', None]
    """
    if pa.types.is_string(column.type):
        return column
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    return pa.array(id_texts(column), pa.string())


def check_ids(layout_dir: Path, n_shards: int, tables: list[str]) -> tuple[dict, dict, dict]:
    """Return, per table, the ids repeated in more than one shard (as text), whether its ids are clean,
    and the sizes of the files a clean table's proof holds for.

    A repeated id within one shard is found by that shard's validation; one
    repeated across shards is not, so the layout records it and each shard
    rejects its copies as the whole-book validation would. A table whose
    ids are clean (:func:`id_facts`) and stored as text passes its id rules
    in every shard, so a shard task need not read them
    (:func:`pipeline.shard_tasks.still_proven`). Only the id column is read,
    a shard at a time. The proof holds for the files read: their sizes in
    bytes, per shard, let a task tell a file changed since.
    """
    from pipeline.parquet_read import is_text_type

    found: dict[str, list[str]] = {}
    clean: dict[str, bool] = {}
    sizes: dict[str, list[int]] = {}
    for table, key in _UNIQUE_IDS.items():
        if table not in tables:
            continue
        paths = [layout_dir / shard_dir_name(k) / f"{table}.parquet" for k in range(n_shards)]
        schema = pq.read_schema(paths[0])
        name = next((n for n in schema.names if n.strip() == key), None)
        if name is None:  # the reader reports the missing column with its file
            clean[table] = False
            continue

        def ids(k: int, column: str = name, paths: list[Path] = paths) -> np.ndarray:
            return id_texts(pq.read_table(paths[k], columns=[column]).column(0))

        cross, ok = id_facts(ids, n_shards)
        if cross:
            found[table] = cross
        clean[table] = ok and is_text_type(schema.field(name).type)
        if clean[table]:
            sizes[table] = [p.stat().st_size for p in paths]
    return found, clean, sizes

"""Lay the contract's tables out by shard, so a job reads one shard's rows at a time.

A shard is a stable hash of the account's ``customer_id`` (all accounts of a
customer in one shard, so per-customer rules see them together; an account
whose customer is null hashes its ``account_id``). Every row of a child table
follows its account; a row whose account is not in ``accounts`` (an orphan)
hashes its own ``account_id`` and is found an orphan in that shard, as it
would be in the whole book.

The layout written by :func:`pipeline.partition.partition_data`
(``propensity partition``)::

    <out>/shards.json                  n_shards, key, source files (rows, sha256),
                                       the export's date extremes (export_dates)
    <out>/shard=00000/accounts.parquet
    <out>/shard=00000/account_rows.parquet  export row of each accounts row
    <out>/shard=00000/installments.parquet  ...

Each ``shard=K`` folder is itself a data folder of the contract, read by
:func:`pipeline.io.read_tables`. Within a shard, rows keep their input order.
This module is the layout and the hash; :mod:`pipeline.partition` writes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.build import partition_of
from pipeline.io import DataReadError
from pipeline.layout_file import LAYOUT_FILE

#: Per shard, the export row of each of its accounts rows (the book's order).
ACCOUNT_ROWS = "account_rows.parquet"
SHARD_KEY = "customer_id"
MAX_SHARDS = 32_767  # shard numbers are sorted as 16-bit integers


def shard_dir_name(k: int) -> str:
    """Return the folder name of shard ``k``.

    Examples
    --------
    >>> shard_dir_name(7)
    'shard=00007'
    """
    return f"shard={k:05d}"


def read_layout(data_dir: Path | str) -> dict:
    """Return the layout record (``shards.json``) of a partitioned folder.

    Raises
    ------
    DataReadError
        When the record is missing or unreadable, or a shard folder is missing.
    """
    path = Path(data_dir) / LAYOUT_FILE
    try:
        layout = json.loads(path.read_text(encoding="utf-8"))
        n = int(layout["n_shards"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataReadError(f"{path}: not a shard layout ({exc})") from exc
    missing = [k for k in range(n) if not (Path(data_dir) / shard_dir_name(k)).is_dir()]
    if missing:
        raise DataReadError(
            f"{data_dir}: shard folder(s) {', '.join(shard_dir_name(k) for k in missing[:3])} "
            f"missing of {n}; partition the export again"
        )
    return layout


def shard_dirs(data_dir: Path | str, layout: dict | None = None) -> list[Path]:
    """Return the shard folders of a partitioned folder in shard order (``layout``: if read)."""
    layout = read_layout(data_dir) if layout is None else layout
    return [Path(data_dir) / shard_dir_name(k) for k in range(int(layout["n_shards"]))]


def account_shards(accounts: pa.Table, n_shards: int) -> pd.Series:
    """Return the shard of each account id (first row of a repeated id), indexed by account_id.

    Examples
    --------
    >>> acc = pa.table({"account_id": ["A1", "A2", "A3"], "customer_id": ["C1", "C1", None]})
    >>> s = account_shards(acc, 4)
    >>> bool(s["A1"] == s["A2"]), bool(s.max() < 4)
    (True, True)
    """
    ids = accounts.column("account_id").to_numpy(zero_copy_only=False).astype(object)
    if SHARD_KEY in accounts.column_names:
        key = accounts.column(SHARD_KEY).to_numpy(zero_copy_only=False).astype(object)
        key = np.where(pd.isna(key), ids, key)
    else:
        key = ids
    shard = partition_of(np.where(pd.isna(key), "", key).astype(object), n_shards)
    by_id = pd.Series(shard, index=pd.Index(ids, name="account_id"))
    by_id = by_id[by_id.index.notna()]
    return by_id[~by_id.index.duplicated(keep="first")]


def row_shards(
    account_ids: pa.Array, value_set: pa.Array, shards: np.ndarray, n_shards: int
) -> np.ndarray:
    """Shard of each row: its account's, else a hash of its own ``account_id``.

    The lookup runs in arrow (``index_in`` against the account ids); only the
    rows whose account is unknown (orphans, normally none) are hashed here.
    """
    ids = account_ids.combine_chunks() if isinstance(account_ids, pa.ChunkedArray) else account_ids
    if not pa.types.is_string(ids.type):
        ids = ids.cast(pa.string())
    pos = pc.index_in(ids, value_set=value_set)
    known = pos.is_valid().to_numpy(zero_copy_only=False)
    shard = np.empty(len(ids), dtype=np.int64)
    shard[known] = shards[pos.drop_null().to_numpy()]
    if not known.all():
        own = ids.filter(pa.array(~known)).to_numpy(zero_copy_only=False).astype(object)
        shard[~known] = partition_of(np.where(pd.isna(own), "", own).astype(object), n_shards)
    return shard


def write_account_rows(keys: pa.Table, by_account: pd.Series, n_shards: int, out: Path) -> None:
    """Write each shard's :data:`ACCOUNT_ROWS`: the export row of each of its accounts rows.

    The book's order of accounts (that of the accounts table) is what an
    unsharded run plans in; a sharded value mode restores it from these.
    """
    value_set = pa.array(by_account.index.to_numpy(dtype=object), type=pa.string())
    shard = row_shards(keys.column("account_id"), value_set, by_account.to_numpy(), n_shards)
    order = np.argsort(shard, kind="stable")
    bounds = np.searchsorted(shard[order], np.arange(n_shards + 1))
    for k in range(n_shards):
        rows = order[bounds[k] : bounds[k + 1]].astype(np.int64)
        pq.write_table(pa.table({"row": rows}), out / shard_dir_name(k) / ACCOUNT_ROWS)


def account_rows(shard_dir: Path | str) -> np.ndarray:
    """Return the export row of each row of a shard's accounts table (see :func:`write_account_rows`).

    Raises
    ------
    DataReadError
        When the layout predates the record (partition the export again).
    """
    path = Path(shard_dir) / ACCOUNT_ROWS
    if not path.is_file():
        raise DataReadError(
            f"{shard_dir}: the shard layout records no account order ({ACCOUNT_ROWS}); "
            "partition the export again with this version"
        )
    return pq.read_table(path).column("row").to_numpy()

"""Run a job shard by shard, in this process, in worker processes, or on Spark.

Every job that reads the tables (validate, features, training-set, score) has
a *shard task* (:mod:`pipeline.shard_tasks`): it reads one shard folder (see
:mod:`pipeline.shards`), runs the same pandas code as the unsharded job on it,
writes its outputs as parts into a work folder and returns a small record of
counts. The driver (here) then merges the parts and the counts over all shards: rejects, the
reject limit and the manifest's counts are those of the whole book, and the
publish stays atomic (nothing reaches the output before every shard is done).

Peak memory is that of one shard per worker plus the merged outputs (the
scored accounts, not the book). Engines:

- ``local`` with ``workers=1``: the shards one after the other in this process;
- ``local`` with ``workers=N``: this process and N - 1 spawned worker
  processes, one shard each at a time (:mod:`pipeline.shard_pool`);
- ``spark``: one Spark task per shard through ``mapInPandas``
  (:mod:`pipeline.spark_engine`); the shard folders and the work folder must
  be on a path every executor reads and writes (a shared file system).

The driver of the sharded score is :mod:`pipeline.shard_score`; that of
value mode's book-wide decision, :mod:`pipeline.shard_value`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import shards as sh
from pipeline.layout_file import is_partitioned
from pipeline.partition import partition_data
from pipeline.shard_parts import PartsWriter, concat_parts
from pipeline.shard_pool import run_calls
from pipeline.shard_tasks import forget_loaded, run_one
from pipeline.validation import REJECT_COLUMNS, ValidationResult

log = logging.getLogger(__name__)

ENGINES = ("local", "spark")


def _log_record(record: dict, task: str) -> None:
    log.info(
        "shard %s task=%s accounts=%s seconds=%.2f",
        record["shard"],
        task,
        f"{record['input_accounts']:,}",
        record["seconds"],
    )


def run_tasks(
    task: str,
    dirs: list[Path],
    work: Path,
    params: dict,
    engine: str = "local",
    workers: int = 1,
    on_record: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run ``task`` on every shard folder and return the records in shard order.

    ``on_record`` is called with each record in shard order as soon as that
    shard and those before it are done (on Spark, once all are), so the
    driver can merge outputs while the workers compute. This process's
    allocators and environment are left as they are (a sharded command tunes
    its own first: :func:`pipeline.cli_common.workers_ahead`); the workers
    tune theirs (:func:`pipeline.shard_pool.keep_freed_memory`).
    """
    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    args = [(task, str(d), k, str(work), params) for k, d in enumerate(dirs)]

    def handed(record: dict) -> None:
        _log_record(record, task)
        if on_record is not None:
            on_record(record)

    if engine == "spark":
        from pipeline.spark_engine import run_on_spark

        records = sorted(run_on_spark(args), key=lambda r: r["shard"])
        for record in records:
            handed(record)
        return records
    try:
        # This process runs shards beside workers - 1 spawned workers (pipeline.shard_pool).
        return run_calls(run_one, args, workers, handed)
    finally:
        forget_loaded()  # this run's model and policy, loaded from its work folder


@contextmanager
def shard_layout(
    data_dir: Path | str,
    n_shards: int | None,
    work_root: Path | None = None,
    dates: dict | None = None,
):
    """Yield the shard folders of ``data_dir`` and its layout, partitioning it first if needed.

    A folder already laid out by ``propensity partition`` is used as it is; a
    plain data folder is partitioned into ``n_shards`` in a temporary folder
    (under ``work_root``) removed afterwards (``dates``: its export dates, when
    already scanned).
    """
    data_dir = Path(data_dir)
    if is_partitioned(data_dir):
        layout = sh.read_layout(data_dir)  # read once: shard_dirs would read it again
        yield sh.shard_dirs(data_dir, layout), layout
        return
    tmp = Path(tempfile.mkdtemp(prefix=".shards-", dir=work_root))
    try:
        t0 = time.perf_counter()
        layout = partition_data(data_dir, tmp / "layout", n_shards or 1, dates)
        log.info(
            "stage partition shards=%s seconds=%.2f", layout["n_shards"], time.perf_counter() - t0
        )
        yield sh.shard_dirs(tmp / "layout", layout), layout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def layout_facts(layout: dict) -> dict:
    """What every shard task needs of the layout: the ids repeated across shards and those proven clean.

    Examples
    --------
    >>> layout_facts({"n_shards": 2, "cross_shard_duplicates": {"offers": ["O1"]}})
    {'duplicates': {'offers': ['O1']}, 'ids_clean': {}, 'id_files': {}}
    """
    return {
        "duplicates": layout.get("cross_shard_duplicates", {}),
        # Absent from a layout older than the proof (or than its file sizes): not proven.
        "ids_clean": layout.get("ids_clean", {}),
        "id_files": layout.get("id_files", {}),
    }


def merged_validation(records: list[dict], work: Path, layout: dict) -> ValidationResult:
    """The validation of the whole book from the shards' records and rejects parts."""
    rejects = concat_parts(work, "rejects", len(records))
    if rejects is None or rejects.empty:
        rejects = pd.DataFrame({c: pd.Series(dtype=object) for c in REJECT_COLUMNS})
    rows_read: dict[str, int] = {}
    for r in records:
        for table, n in r["rows_read"].items():
            rows_read[table] = rows_read.get(table, 0) + int(n)
    rejected = [a for r in records for a in r["rejected_accounts"]]
    files = {
        t: {"path": f["path"], "rows": f["rows"], "sha256": f["sha256"], "ignored_columns": []}
        for t, f in layout.get("tables", {}).items()
    }
    for r in records:  # every shard holds the export's columns: the first names them
        for t, ignored in r.get("ignored_columns", {}).items():
            if t in files and not files[t]["ignored_columns"]:
                files[t]["ignored_columns"] = list(ignored)
    return ValidationResult(
        tables={},
        rejects=rejects[list(REJECT_COLUMNS)],
        rows_read=rows_read,
        input_accounts=int(sum(r["input_accounts"] for r in records)),
        rejected_accounts=pd.Index(np.asarray(rejected, dtype=object)),
        files=files,
    )


def shard_seconds(records: list[dict]) -> dict[str, float]:
    """Seconds per stage added over the shards; ``read_validate_write`` is the rest of each task.

    Examples
    --------
    >>> shard_seconds([{"seconds": 5.0, "stage_seconds": {"features": 2.0}},
    ...                {"seconds": 4.0, "stage_seconds": {"features": 1.5}}])
    {'features': 3.5, 'read_validate_write': 5.5, 'total': 9.0}
    """
    out: dict[str, float] = {}
    for r in records:
        for stage, sec in r.get("stage_seconds", {}).items():
            out[stage] = round(out.get(stage, 0.0) + sec, 3)
    total = sum(r["seconds"] for r in records)
    out["read_validate_write"] = round(total - sum(out.values()), 3)
    out["total"] = round(total, 3)
    return out


def sum_counts(records: list[dict]) -> dict[str, int]:
    """Add the shards' manifest counts key by key."""
    total: dict[str, int] = {}
    for r in records:
        for key, n in r["counts"].items():
            total[key] = total.get(key, 0) + int(n)
    return total


def run_sharded_to_file(
    task: str,
    data_dir: Path | str,
    out: Path | None,
    params: dict,
    n_shards: int | None = None,
    workers: int = 1,
    engine: str = "local",
) -> tuple[ValidationResult, int]:
    """Run a validate / features / training-set task over the shards and write one parquet file.

    The parts are streamed into ``out`` in shard order through a temporary
    file renamed into place, so ``out`` is whole or absent. Returns the
    validation of the whole book and the rows written.
    """
    work_root = Path(out).parent if out is not None else None
    if work_root is not None:
        work_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".shards-work-", dir=work_root))
    try:
        with shard_layout(data_dir, n_shards, work) as (dirs, layout):
            params = {**params, **layout_facts(layout)}
            tmp = work / "out.parquet"
            writer = PartsWriter(work, task, tmp) if out is not None else None
            try:
                records = run_tasks(task, dirs, work, params, engine, workers, writer)
            except BaseException:
                if writer is not None:
                    writer.abort()  # the shard's error is the run's, not a failed close's
                raise
            rows = writer.close() if writer is not None else 0
        validation = merged_validation(records, work, layout)
        if out is not None:
            os.replace(tmp, out)
        return validation, rows
    finally:
        shutil.rmtree(work, ignore_errors=True)

"""The sharded ``propensity score``: the driver that runs the shard tasks and publishes once.

:func:`run_scoring_sharded` is :func:`pipeline.score.run_scoring` over the
shard tasks of :mod:`pipeline.engine`: one as-of check on the whole export's
dates before any shard runs, the shards' parts and counts merged, the reject
limit over the whole book, the newest closed month's calibration summed from
the shards' labelled rows, value mode decided once for the book
(:mod:`pipeline.shard_value`), then the same atomic publish.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.engine import (
    layout_facts,
    merged_validation,
    run_tasks,
    shard_layout,
    shard_seconds,
    sum_counts,
)
from pipeline.io import write_parquet
from pipeline.partition import scan_export_dates
from pipeline.shard_parts import concat_parts, part_path
from pipeline.shard_pool import workers_kept
from pipeline.shard_value import CHOICES, OPTIONS, frame_inputs


def decide_book(records: list[dict], work: Path, policy) -> dict | None:
    """Step 2: decide the whole book's options at once; write each shard's choices; the record.

    The shards' scalars (fixed use) add up. The decision's per-account
    arrays (choice, explored arm and its probability) are written back per
    shard. Returns the allocation record of
    :func:`pipeline.value_mode.decide_by_value` (None when no shard has an
    account to plan).
    """
    from pipeline.value_mode import decide_by_value

    frame = concat_parts(work, OPTIONS, len(records))
    if frame is None:
        return None
    shard = np.repeat(
        [r["shard"] for r in records],
        [pq.read_metadata(p).num_rows if (p := part_path(work, OPTIONS, r["shard"])).exists()
         else 0 for r in records],
    )  # fmt: skip
    order = np.argsort(frame.pop("_row").to_numpy(), kind="stable")  # the book's order
    keys = {key for r in records for key in r["value_scalars"]}
    scalars = {key: sum(int(r["value_scalars"].get(key, 0)) for r in records) for key in keys}
    picked, record = decide_by_value(frame_inputs(frame.iloc[order], scalars), policy)
    # Per eligible account: the decision's arrays, back in shard order.
    out = pd.DataFrame({name: np.asarray(v)[np.argsort(order)] for name, v in picked.items()})
    for r in records:
        mine = shard == r["shard"]
        if mine.any():
            write_parquet(out[mine].reset_index(drop=True), part_path(work, CHOICES, r["shard"]))
    return record


def run_scoring_sharded(
    data_dir: Path | str,
    as_of: pd.Timestamp,
    out_dir: Path | str,
    model_uri: str | None = None,
    policy_path: Path | None = None,
    wait_seconds: float = 0.0,
    log_to_mlflow: bool = True,
    allow_stale: bool = False,
    n_shards: int | None = None,
    workers: int = 1,
    engine: str = "local",
):
    """Score shard by shard and publish ``<out>/as_of=D/`` as :func:`pipeline.score.run_scoring`.

    ``data_dir`` is a folder laid out by ``propensity partition`` or a plain
    data folder (partitioned into ``n_shards`` first, in a temporary folder).
    The scores are those of the unsharded run, in shard order; rejects, the
    reject limit and the manifest's counts are over all shards. The model is
    loaded before the shards are read, so a missing model fails first (exit 3).

    Returns
    -------
    pipeline.score.ScoringOutcome

    Raises
    ------
    The exceptions of :func:`pipeline.score.run_scoring`.
    """
    from models import tracking
    from pipeline import publish as pub
    from pipeline.asof import check_export_dates
    from pipeline.policy import policy_from_bytes, read_policy_bytes
    from pipeline.score import DEFAULT_MODEL_URI
    from pipeline.score_outputs import Stages, check_reject_limit, publish_run

    label = as_of.strftime("%Y-%m-%d")
    stages = Stages()
    # One read: the workers get the very bytes whose hash is the logged version.
    policy_bytes, source = read_policy_bytes(policy_path)
    policy, pversion = policy_from_bytes(policy_bytes, source)
    stages.done("load_policy")
    out_dir = Path(out_dir)
    uri = model_uri or DEFAULT_MODEL_URI
    run = _Run(label, policy, pversion, uri, allow_stale, engine, workers)
    with pub.run_lock(out_dir, label, timeout=wait_seconds):
        pub.recover(out_dir, label)
        # One as-of check over the whole export's dates, before any shard runs.
        dates = scan_export_dates(data_dir)
        if not allow_stale:
            check_export_dates(dates, as_of, policy.max_days_after_export)
        stages.done("as_of_check")
        model = tracking.load_model(run.uri)
        stages.done("model")
        work = Path(tempfile.mkdtemp(prefix=f".{pub.run_dir_name(label)}.shards-", dir=out_dir))
        try:
            params = _shard_params(work, label, model, policy_bytes, log_to_mlflow, workers, engine)
            records, layout, allocation = _score_shards(
                data_dir, n_shards, work, dates, params, policy, engine, workers, stages
            )
            validation, manifest = _book_manifest(records, work, layout, dates, run, stages)
            # The reject limit over the whole book.
            check_reject_limit(validation, manifest, policy.reject_limit, out_dir, label, stages)
            outputs = _book_outputs(
                work, records, validation, manifest, model, allocation, as_of, log_to_mlflow
            )
            stages.done("merge", rows_out=len(outputs.scores))
            return publish_run(outputs, out_dir, label, stages, log_to_mlflow, policy_path)
        finally:
            shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class _Run:
    """What the driver knows of the run before any shard: date, policy, model URI, engine."""

    label: str
    policy: Any
    pversion: str
    uri: str
    allow_stale: bool
    engine: str
    workers: int


def _shard_params(work, label, model, policy_bytes, log_to_mlflow, workers, engine) -> dict:
    """Write the policy and model the workers read into ``work``; the shard tasks' parameters.

    The workers read the very policy bytes the driver validated and hashed,
    and the very model it loaded (text and JSON files: no registry call per
    worker).
    """
    (work / "policy.yaml").write_bytes(policy_bytes)
    model.save(work / "model")
    return {
        "as_of": label,
        "model_dir": str(work / "model"),
        "model_version": model.version,
        "policy": str(work / "policy.yaml"),
        "citl": log_to_mlflow,
        "num_threads": max(1, (os.cpu_count() or 1) // max(workers, 1))
        if engine == "local"
        else None,
    }


def _book_manifest(records, work, layout, dates, run: _Run, stages):
    """The shards' validation merged over the book, and the run's manifest started from it.

    The manifest is the unsharded run's (:func:`pipeline.score_outputs.run_manifest`)
    plus ``engine``: its name, the shards, the workers and each shard's seconds.
    """
    from pipeline.score_outputs import run_manifest

    validation = merged_validation(records, work, layout)
    stages.done(
        "shards",
        rows_in=sum(validation.rows_read.values()),
        rows_out=sum(r["counts"]["scored"] for r in records),
    )
    manifest = run_manifest(
        validation, run.label, run.policy, run.pversion, dates, run.uri, run.allow_stale
    )
    manifest["engine"] = {
        "name": run.engine,
        "shards": len(records),
        "workers": run.workers,
        "shard_seconds": shard_seconds(records),
    }
    return validation, manifest


def _book_outputs(work, records, validation, manifest, model, allocation, as_of, log_to_mlflow):
    """Merge the shards' parts into the run's outputs: scores, features, counts, calibration."""
    from pipeline.score import citl_table
    from pipeline.score_outputs import RunOutputs

    scores = concat_parts(work, "scores", len(records))
    feats = concat_parts(work, "features", len(records))
    if allocation is not None:
        scores.attrs["allocation"] = allocation
    rows = concat_parts(work, "citl", len(records)) if log_to_mlflow else None
    citl = None if rows is None else citl_table(rows, as_of, model)
    return RunOutputs(
        scores=scores, rejects=validation.rejects, features=feats, counts=sum_counts(records),
        manifest=manifest, model=model, citl=citl,
    )  # fmt: skip


def _score_shards(data_dir, n_shards, work, dates, params, policy, engine, workers, stages):
    """Run the score task on every shard; (records, layout, value mode's allocation or None).

    In value mode the shards first write their options and the driver
    decides once for the book (:mod:`pipeline.shard_value`).
    """
    with shard_layout(data_dir, n_shards, work, dates) as (dirs, layout):
        stages.done("partition")
        params.update(layout_facts(layout))
        allocation = None
        if policy.value_allocation is not None:  # one capacity for the whole book
            with workers_kept():  # the same workers score the shards next
                first = run_tasks("value_options", dirs, work, params, engine, workers)
            allocation = decide_book(first, work, policy)
            params["value_choices"] = True
            stages.done("value_decision")
        records = run_tasks("score", dirs, work, params, engine, workers)
    return records, layout, allocation

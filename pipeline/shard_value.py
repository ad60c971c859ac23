"""Value mode over shards: options in each shard, one decision for the book, plans in each shard.

The value mode shares one capacity over the whole book, so a sharded run
plans it in three steps, with the unsharded run's own functions:

1. every shard runs the scoring task up to the value decision and writes
   its eligible accounts' options (:func:`pipeline.value_mode.value_inputs`:
   per account a few option values, calls, texts and feasibility flags) and
   their rows in the export, so the driver can put them back in the book's
   order (that of the accounts table, which an unsharded run plans in);
2. the driver concatenates them in that order and decides once
   (:func:`pipeline.value_mode.decide_by_value`, hence
   :func:`pipeline.allocate.allocate`) under the book's capacity, less what
   every shard's control group and suppressed accounts use; it writes each
   shard's choices back as a part;
3. every shard runs the scoring task again with its choices given
   (:func:`pipeline.value_mode.choose_by_value` with ``decide`` replaced) and
   writes its scores.

Step 3 reads, validates and predicts each shard again: the price of keeping
one shard in memory at a time. The results are those of the unsharded run.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline import shards as sh
from pipeline.io import write_parquet

#: Part kinds in the run's work folder.
OPTIONS = "value_options"
CHOICES = "value_choices"
_SEP = "__"


def inputs_frame(inputs: dict) -> tuple[pd.DataFrame, dict[str, int]]:
    """Split :func:`pipeline.value_mode.value_inputs` into a frame of per-row columns and scalars.

    A two-dimensional array ``x`` becomes columns ``x__0``, ``x__1``, ...

    Examples
    --------
    >>> frame, scalars = inputs_frame({"value": np.array([[0.0, 2.5]]), "fixed_calls": 3})
    >>> list(frame.columns), scalars
    (['value__0', 'value__1'], {'fixed_calls': 3})
    """
    columns: dict[str, np.ndarray] = {}
    scalars: dict[str, int] = {}
    for key, v in inputs.items():
        if np.ndim(v) == 0:
            scalars[key] = int(v)
        elif np.ndim(v) == 2:
            columns.update({f"{key}{_SEP}{j}": np.asarray(v)[:, j] for j in range(np.shape(v)[1])})
        else:
            columns[key] = np.asarray(v)
    return pd.DataFrame(columns), scalars


def frame_inputs(frame: pd.DataFrame, scalars: dict[str, int]) -> dict:
    """Invert :func:`inputs_frame`: per-row arrays (matrices rebuilt) and the scalars.

    Examples
    --------
    >>> frame, scalars = inputs_frame({"calls": np.array([[0, 3], [0, 1]]), "fixed_sms": 0})
    >>> out = frame_inputs(frame, scalars)
    >>> out["calls"].tolist(), out["fixed_sms"]
    ([[0, 3], [0, 1]], 0)
    """
    out: dict = {}
    matrices: dict[str, list[str]] = {}
    for name in frame.columns:
        key, sep, j = name.rpartition(_SEP)
        if sep and j.isdigit():
            matrices.setdefault(key, []).append(name)
        else:
            out[name] = frame[name].to_numpy()
    for key, names in matrices.items():
        names.sort(key=lambda n: int(n.rpartition(_SEP)[2]))
        out[key] = np.column_stack([frame[n].to_numpy() for n in names])
    return {**out, **scalars}


def options_task(shard_dir: str, k: int, work: str, params: dict) -> dict:
    """Step 1 for one shard: write its eligible accounts' options and their export rows."""
    from pipeline.engine import _loaded, _shard_record, _validate_shard, part_path
    from pipeline.score import _Stages, score_tables

    t0 = time.perf_counter()
    model, policy, pversion = _loaded(params)
    validation, accounts_all = _validate_shard(Path(shard_dir), k, Path(work), params)
    captured: dict = {}

    def keep(inputs: dict, _policy) -> tuple[dict, dict]:
        captured.update(inputs)
        return {"choice": np.zeros(len(inputs["value"]), dtype=np.int64)}, {}

    if len(validation.tables["accounts"]):
        score_tables(
            validation.tables, pd.Timestamp(params["as_of"]), model, policy, pversion, _Stages(),
            decide=keep,
        )  # fmt: skip
    scalars: dict[str, int] = {}
    if captured:
        frame, scalars = inputs_frame(captured)
        ids = accounts_all.to_numpy(dtype=object)
        first = ~pd.Index(ids).duplicated()
        row_of = pd.Series(sh.account_rows(shard_dir)[first], index=ids[first])
        frame["_row"] = row_of.reindex(frame["account_id"].to_numpy()).to_numpy(np.int64)
        write_parquet(frame, part_path(work, OPTIONS, k))
    return _shard_record(k, validation, time.perf_counter() - t0, value_scalars=scalars)


def decide_book(records: list[dict], work: Path, policy) -> dict | None:
    """Step 2: decide the whole book's options at once; write each shard's choices; the record.

    The shards' scalars (fixed use) add up. The decision's per-account
    arrays (choice, explored arm and its probability) are written back per
    shard. Returns the allocation record of
    :func:`pipeline.value_mode.decide_by_value` (None when no shard has an
    account to plan).
    """
    from pipeline.engine import concat_parts, part_path
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


def given_choices(work: str, k: int):
    """Step 3: a ``decide`` for :func:`pipeline.value_mode.choose_by_value` returning shard k's choices."""
    from pipeline.engine import part_path

    path = part_path(work, CHOICES, k)

    def decide(inputs: dict, _policy):
        n = len(inputs["value"])
        given = pq.read_table(path).to_pandas() if path.exists() else pd.DataFrame({"choice": []})
        if len(given) != n:  # the shard's options must be those of step 1
            raise RuntimeError(
                f"shard {k}: {n} accounts to plan by value, but {len(given)} decided for it"
            )
        return {c: given[c].to_numpy() for c in given.columns}, {}

    return decide

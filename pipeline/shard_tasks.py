"""The shard tasks: what one shard of a job does, wherever it runs (this process, a worker, Spark).

Every job that reads the tables (validate, features, training-set, score) has
a *shard task* here: it reads one shard folder (see :mod:`pipeline.shards`),
runs the same pandas code as the unsharded job on it, writes its outputs as
parts into the job's work folder (:mod:`pipeline.shard_parts`) and returns a
small record of counts, which :mod:`pipeline.engine` merges over the shards.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from features import vocab
from pipeline import shards as sh
from pipeline.io import ParseFailure, read_tables, write_parquet
from pipeline.shard_parts import part_path, write_stream_part
from pipeline.shard_value import CHOICES, OPTIONS, inputs_frame
from pipeline.validation import ValidationResult, validate_tables

#: Loaded models and policies of this process, by URI / path (workers load each once).
_CACHE: dict[tuple[str, str], object] = {}


#: Columns that no stage after a shard's validation reads: only their rules need them.
_RULES_ONLY = {
    "payments": ("payment_id",),
    "contacts": ("contact_id", "agent_id"),
    "offers": ("offer_id",),
}


def _unread_columns(params: dict) -> dict[str, frozenset[str]]:
    """The columns a shard task need not decode, per table: those whose rules hold unread.

    The ids of a table the partition proved clean (``ids_clean`` in
    ``shards.json``, none of them repeated across shards), and text columns
    with no rule but their type (:func:`pipeline.contract.rules_hold_unread`).
    The reader leaves one out only when its file stores it as text.
    """
    from pipeline.contract import rules_hold_unread

    clean = params.get("ids_clean", {})
    repeated = params.get("duplicates", {})
    out = {}
    for table, columns in _RULES_ONLY.items():
        proven = bool(clean.get(table)) and not repeated.get(table)
        out[table] = frozenset(c for c in columns if rules_hold_unread(table, c, proven))
    return out


def still_proven(params: dict, shard_dir: Path, k: int) -> dict:
    """Return ``params`` with ``ids_clean`` kept only for the tables whose file the proof read.

    The partition proved a table's ids clean for the files it wrote, and
    recorded their sizes (``id_files``); a shard file of another size (or
    a layout without the sizes) has its ids read and checked in full.

    Examples
    --------
    >>> still_proven({"ids_clean": {"offers": True}}, Path("no-such-shard"), 0)["ids_clean"]
    {}
    """
    sizes = params.get("id_files", {})

    def same_file(table: str) -> bool:
        path = Path(shard_dir) / f"{table}.parquet"
        expected = sizes.get(table, [])
        return k < len(expected) and path.is_file() and path.stat().st_size == expected[k]

    clean = {t: True for t, ok in params.get("ids_clean", {}).items() if ok and same_file(t)}
    return {**params, "ids_clean": clean}


def _validate_shard(
    shard_dir: Path, k: int, work: Path, params: dict, keep_categories: bool = False
) -> tuple[ValidationResult, pd.Series]:
    """Read and validate one shard; write its rejects part; return it and its input account ids.

    Ids repeated across shards (recorded by the partition) fail the same
    uniqueness rule here as in the whole-book validation. Repeated text is
    read as categoricals (see :func:`pipeline.io.read_tables`); the clean
    tables keep them only with ``keep_categories`` (the feature-only tasks).
    The shard's files are not checksummed: the merged manifest carries the
    export's checksums, recorded by the partition. Columns whose rules hold
    unread are not decoded (:func:`_unread_columns`, for the files the
    partition's proof read: :func:`still_proven`).
    """
    skip = _unread_columns(still_proven(params, shard_dir, k))
    raw = read_tables(shard_dir, categories=True, checksums=False, skip=skip)
    for table, values in params.get("duplicates", {}).items():
        key = vocab.TABLE_KEYS[table]
        if table in raw.tables and values:
            ids = raw.tables[table][key]
            hit = ids.isin(values).to_numpy()
            if hit.any():
                raw.parse_failures.append(
                    ParseFailure(table, key, "field_uniqueness", ids.index[hit], ids[hit])
                )
    accounts_all = raw.tables["accounts"]["account_id"].copy()
    validation = validate_tables(raw, keep_categories)
    write_parquet(validation.rejects, part_path(work, "rejects", k))
    return validation, accounts_all


def _shard_record(k: int, validation: ValidationResult, seconds: float, **extra) -> dict:
    return {
        "shard": k,
        "rows_read": validation.rows_read,
        "input_accounts": int(validation.input_accounts),
        "rejected_accounts": [str(a) for a in validation.rejected_accounts],
        "ignored_columns": {t: f.get("ignored_columns", []) for t, f in validation.files.items()},
        "seconds": round(seconds, 3),
        **extra,
    }


def validate_task(shard_dir: str, k: int, work: str, params: dict) -> dict:
    """Shard task of ``propensity validate``: the rejects part and the counts."""
    t0 = time.perf_counter()
    validation, _ = _validate_shard(Path(shard_dir), k, Path(work), params)
    return _shard_record(k, validation, time.perf_counter() - t0)


def features_task(shard_dir: str, k: int, work: str, params: dict) -> dict:
    """Shard task of ``propensity features``: the features part of the shard's overdue accounts."""
    from features.build import build_features

    t0 = time.perf_counter()
    validation, _ = _validate_shard(Path(shard_dir), k, Path(work), params, True)
    feats = build_features(validation.tables, pd.Timestamp(params["as_of"]))
    write_stream_part(feats, work, "features", k)
    return _shard_record(k, validation, time.perf_counter() - t0, rows_out=len(feats))


def training_set_task(shard_dir: str, k: int, work: str, params: dict) -> dict:
    """Shard task of ``propensity training-set``: the snapshots of the shard's accounts."""
    from features.training_set import build_training_set

    t0 = time.perf_counter()
    validation, _ = _validate_shard(Path(shard_dir), k, Path(work), params, True)
    frame = build_training_set(
        validation.tables,
        pd.Timestamp(params["from"]),
        pd.Timestamp(params["to"]),
        horizon_days=int(params["horizon_days"]),
        data_end=params.get("data_end"),
    )
    write_stream_part(frame, work, "training_set", k)
    return _shard_record(k, validation, time.perf_counter() - t0, rows_out=len(frame))


def _cached(kind: str, key: str, load: Callable[[], object]) -> object:
    if (kind, key) not in _CACHE:
        _CACHE[(kind, key)] = load()
    return _CACHE[(kind, key)]


def _load_saved_model(params: dict):
    """The model the driver loaded, from the text and JSON files it saved for the workers."""
    from models.propensity_model import PropensityModel

    model = PropensityModel.load(params["model_dir"])
    model.version = params["model_version"]
    if params.get("num_threads"):
        model.num_threads = int(params["num_threads"])
    return model


def _loaded(params: dict):
    """The run's model, policy and policy version, loaded once per process."""
    from pipeline.policy import load_policy_and_version

    model = _cached("model", params["model_dir"], lambda: _load_saved_model(params))
    policy, pversion = _cached(
        "policy", params["policy"], lambda: load_policy_and_version(Path(params["policy"]))
    )
    return model, policy, pversion


def score_task(shard_dir: str, k: int, work: str, params: dict) -> dict:
    """Shard task of ``propensity score``: scores, features and rejects parts, and the counts.

    In value mode the book's decision is given (:mod:`pipeline.shard_value`).
    """
    from pipeline.score import latest_month_citl_rows, score_tables
    from pipeline.score_outputs import Stages, count_accounts

    t0 = time.perf_counter()
    model, policy, pversion = _loaded(params)
    decide = None
    if policy.value_allocation is not None:
        if not params.get("value_choices"):
            raise RuntimeError("value mode over shards needs the book's decision first")
        decide = given_choices(work, k)
    as_of = pd.Timestamp(params["as_of"])
    validation, accounts_all = _validate_shard(Path(shard_dir), k, Path(work), params)
    stages = Stages()
    if params.get("citl") and len(validation.tables["accounts"]):
        # The newest closed month's labelled rows: the driver sums the book's calibration.
        rows = latest_month_citl_rows(validation.tables, as_of, model, policy.materiality)
        if rows is not None:
            write_parquet(rows, part_path(work, "citl", k))
        stages.done("citl")
    if len(validation.tables["accounts"]):
        scores, feats = score_tables(
            validation.tables, as_of, model, policy, pversion, stages, decide=decide
        )
    else:  # every account of this shard rejected: nothing to score here
        scores, feats = None, None
    scored_ids = pd.Index([] if scores is None else scores["account_id"])
    counts = count_accounts(validation, accounts_all.to_frame(), scored_ids, as_of)
    if scores is not None:
        write_parquet(scores, part_path(work, "scores", k))
        write_parquet(feats, part_path(work, "features", k))
    return _shard_record(
        k, validation, time.perf_counter() - t0, counts=counts, stage_seconds=stages.seconds
    )


def options_task(shard_dir: str, k: int, work: str, params: dict) -> dict:
    """Shard task of a sharded value-mode score, step 1 (:mod:`pipeline.shard_value`): write its eligible accounts' options and their export rows."""
    from pipeline.score import score_tables
    from pipeline.score_outputs import Stages

    t0 = time.perf_counter()
    model, policy, pversion = _loaded(params)
    validation, accounts_all = _validate_shard(Path(shard_dir), k, Path(work), params)
    captured: dict = {}

    def keep(inputs: dict, _policy) -> tuple[dict, dict]:
        captured.update(inputs)
        return {"choice": np.zeros(len(inputs["value"]), dtype=np.int64)}, {}

    if len(validation.tables["accounts"]):
        score_tables(
            validation.tables, pd.Timestamp(params["as_of"]), model, policy, pversion, Stages(),
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


def given_choices(work: str, k: int):
    """Step 3 of a sharded value-mode score: a ``decide`` for :func:`pipeline.value_mode.choose_by_value` returning shard k's choices."""
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


TASKS: dict[str, Callable[[str, int, str, dict], dict]] = {
    "validate": validate_task,
    "features": features_task,
    "training_set": training_set_task,
    "score": score_task,
    "value_options": options_task,
}


#: The modules a task imports on its first shard (pandera's schemas, the feature build...).
_FIRST_SHARD_IMPORTS = {
    "validate": ("pipeline.contract",),
    "features": ("pipeline.contract", "features.build", "features.schema"),
    "training_set": ("pipeline.contract", "features.training_set", "features.schema"),
    "score": (
        "pipeline.contract",
        "pipeline.score",
        "pipeline.policy",
        "pipeline.plan",
        "pipeline.contact_log",
        "features.schema",
        "features.training_set",
        "models.propensity_model",
        "models.monitoring",
        "pipeline.jobs",
    ),
}


def warm_up(task: str) -> None:
    """Do now what ``task``'s first shard would: import its modules, build the contract's schemas.

    A worker started ahead of its job (:func:`pipeline.shard_pool.workers_started`)
    does this while the job's process prepares, instead of at its first shard.
    """
    import importlib

    for module in _FIRST_SHARD_IMPORTS.get(task, _FIRST_SHARD_IMPORTS["score"]):
        importlib.import_module(module)
    from features.schema import feature_schema
    from pipeline.contract import SCHEMAS, table_schema

    # A first validation registers pandera's backends: an empty frame fails it, quickly.
    for schema in [table_schema(table) for table in SCHEMAS] + [feature_schema()]:
        with contextlib.suppress(Exception):
            schema.validate(pd.DataFrame(), lazy=True)


#: Loggers of the code a shard task runs: quiet below WARNING while a task runs.
_TASK_LOGGERS = ("pipeline", "features", "models")


@contextmanager
def _quiet_shard():
    """Leave out a shard's own stage lines wherever it runs (this process or a worker).

    The driver runs shards itself beside its workers, whose lines are not
    shown; so that the log does not show some shards' stages and not others',
    every shard's progress is the one line :func:`pipeline.engine.run_tasks`
    logs per shard.
    """
    loggers = [logging.getLogger(name) for name in _TASK_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def run_one(task: str, shard_dir: str, k: int, work: str, params: dict) -> dict:
    """Run the shard task ``task`` on one shard folder and return its record (any engine)."""
    with _quiet_shard():
        return TASKS[task](shard_dir, k, work, params)


def forget_loaded() -> None:
    """Forget the models and policies this process loaded for a run (they live in its work folder)."""
    _CACHE.clear()

"""Build the feature table as of D: one row per account (overdue at D by default).

The table has ``account_id``, ``as_of_date`` and then
:data:`features.catalogue.FEATURE_COLUMNS` in their fixed order (``arrears``
and ``dpd``, which the scorer also publishes, are the first two features).
Categorical columns carry the fixed category lists of
:data:`features.catalogue.CATEGORICAL_FEATURES`, so training and scoring agree
on the codes LightGBM sees.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from features import vocab
from features.arrears import effective_threshold, overdue_at
from features.catalogue import CATEGORICAL_FEATURES, FEATURE_COLUMNS, FEATURES
from features.context import AsOfContext
from features.population import Population
from features.prepare import Prepared, as_of_timestamp, prepare_tables

log = logging.getLogger(__name__)


def partition_of(account_ids: np.ndarray, n_partitions: int) -> np.ndarray:
    """Return each account's partition, a stable hash of ``account_id`` modulo ``n_partitions``.

    The same account always lands in the same partition, in any process and
    on any machine (pandas' hash uses a fixed key), which is what a
    distributed engine needs to split the work the same way.

    Examples
    --------
    >>> p = partition_of(np.array(["A1", "A2", "A3", "A1"], dtype=object), 4)
    >>> bool(p[0] == p[3]), bool(p.max() < 4)
    (True, True)
    """
    if n_partitions < 1:
        raise ValueError(f"n_partitions must be >= 1, got {n_partitions}")
    hashed = pd.util.hash_array(np.asarray(account_ids, dtype=object))
    return (hashed % np.uint64(n_partitions)).astype(np.int64)


def in_population(
    prep: Prepared, as_of: object, materiality: float, overdue_only: bool
) -> np.ndarray:
    """Per account, whether it is in the feature table at D: opened by D (and overdue at D).

    Decided from the balances alone (see :func:`features.arrears.overdue_at`).
    """
    d = as_of_timestamp(as_of).value
    eligible = prep.opened_ns <= d
    if overdue_only:
        eligible &= overdue_at(prep, d, effective_threshold(materiality))
    return eligible


def _columns(
    prep: Prepared, as_of: pd.Timestamp, materiality: float, overdue_only: bool
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Feature columns (numpy arrays) of one (partition of the) portfolio, and their account codes.

    The population is decided first; the features are then computed for those
    accounts only. Every feature of an account depends on that account's rows
    alone, so this gives exactly the values computed over the whole portfolio.
    """
    eligible = in_population(prep, as_of, materiality, overdue_only)
    rows = np.flatnonzero(eligible)
    ctx = AsOfContext(prep if rows.size == prep.n else prep.take(eligible), as_of, materiality)
    data: dict[str, np.ndarray] = {"account_id": ctx.prep.account_ids.copy()}
    for name in FEATURE_COLUMNS:
        spec = FEATURES[name]
        # A copy: a column never shares memory with the prepared arrays or another column.
        values = np.array(spec.compute(ctx), copy=True)
        data[name] = values if spec.dtype == "category" else values.astype(spec.dtype, copy=False)
    return data, rows


def concat_columns(parts: list[dict[str, np.ndarray]], order: np.ndarray | None = None):
    """Concatenate dicts of equal-named columns, one column at a time (bounded extra memory)."""
    merged: dict[str, np.ndarray] = {}
    for name in list(parts[0]):
        column = np.concatenate([p.pop(name) for p in parts])
        merged[name] = column if order is None else column[order]
    return merged


def feature_columns(
    prep: Prepared,
    as_of: pd.Timestamp,
    materiality: float = vocab.DEFAULT_MATERIALITY,
    overdue_only: bool = True,
    n_partitions: int = 1,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Feature columns as numpy arrays and each row's account code, in the accounts' order.

    With ``n_partitions > 1`` the accounts are split by :func:`partition_of`
    and processed one partition at a time, so the working memory of the
    feature computation is that of one partition.
    """
    if n_partitions == 1:
        return _columns(prep, as_of, materiality, overdue_only)
    part = partition_of(prep.account_ids, n_partitions)
    parts, positions = [], []
    for k in range(n_partitions):
        members = np.flatnonzero(part == k)
        data, rows = _columns(prep.take(part == k), as_of, materiality, overdue_only)
        parts.append(data)
        positions.append(members[rows])
    codes = np.concatenate(positions)
    order = np.argsort(codes, kind="stable")
    return concat_columns(parts, order), codes[order]


def assemble(
    data: dict[str, np.ndarray], as_of_date: np.ndarray, extra: dict[str, object] | None = None
) -> pd.DataFrame:
    """Build the feature table from its columns: keys, features in order, then ``extra`` columns."""
    columns: dict[str, object] = {
        "account_id": data["account_id"],
        "as_of_date": np.asarray(as_of_date, dtype="datetime64[ns]"),
    }
    for name in FEATURE_COLUMNS:
        if name in CATEGORICAL_FEATURES:
            columns[name] = pd.Categorical.from_codes(
                data[name], categories=CATEGORICAL_FEATURES[name]
            )
        else:
            columns[name] = data[name]
    columns.update(extra or {})
    # copy=False keeps one block per column instead of consolidating (a copy of the table).
    return pd.DataFrame(columns, copy=False)


def features_from_prepared(
    prep: Prepared,
    as_of: object,
    materiality: float = vocab.DEFAULT_MATERIALITY,
    overdue_only: bool = True,
    n_partitions: int = 1,
) -> pd.DataFrame:
    """Compute the feature table from prepared arrays (see :func:`build_features`).

    Rows come in the order of the accounts table, whatever ``n_partitions``.
    """
    as_of = as_of_timestamp(as_of)
    data, _ = feature_columns(prep, as_of, materiality, overdue_only, n_partitions)
    dates = np.full(len(data["account_id"]), as_of.to_datetime64(), dtype="datetime64[ns]")
    return assemble(data, dates)


def build_features(
    tables: dict[str, pd.DataFrame],
    as_of: object,
    materiality: float = vocab.DEFAULT_MATERIALITY,
    overdue_only: bool = True,
    n_partitions: int = 1,
    validate: bool = True,
) -> pd.DataFrame:
    """Return the features of every account as of D (only the overdue ones by default).

    Parameters
    ----------
    tables : dict of str to DataFrame
        The contract's tables in canonical dtypes: ``accounts``,
        ``installments``, ``payments``, ``contacts`` and optionally ``offers``
        (offer features are null without it). Optional accounts columns
        (``monthly_income``, ``age``) may be absent: their features are null.
    as_of : date-like
        The as-of date D (tz-naive midnight). Features read only events
        strictly before D.
    materiality : float
        Arrears at or below this amount count as current.
    overdue_only : bool
        Keep only accounts whose arrears exceed ``materiality`` (the scored
        and the training population). Accounts opened after D are always left out.
    n_partitions : int
        Process accounts in this many hash partitions (bounded working memory).
    validate : bool
        Validate the result against :func:`features.schema.feature_schema`.

    Returns
    -------
    DataFrame
        ``account_id``, ``as_of_date``, then :data:`FEATURE_COLUMNS`, one row
        per account in the order of the accounts table.

    """
    t0 = time.perf_counter()
    as_of = as_of_timestamp(as_of)
    threshold = effective_threshold(materiality) if overdue_only else None
    # Only the accounts that may be in the table are sorted and coded; the
    # population is then decided exactly on them (see _columns).
    prep = prepare_tables(tables, Population(as_of.value, threshold))
    t1 = time.perf_counter()
    out = features_from_prepared(prep, as_of, materiality, overdue_only, n_partitions)
    t2 = time.perf_counter()
    if validate:
        from features.schema import validate_features  # pandera, loaded when used

        validate_features(out)
    log.info(
        "features as_of=%s accounts_in=%s rows_out=%s prepare_s=%.2f compute_s=%.2f validate_s=%.2f",
        as_of.date(),
        f"{len(tables['accounts']):,}",
        f"{len(out):,}",
        t1 - t0,
        t2 - t1,
        time.perf_counter() - t2,
    )
    return out

"""The training set: month-end snapshots of the overdue accounts, features plus labels.

For each month end D in ``[start, end]`` (the literal last calendar day of the
month at midnight, the same kind of date a nightly ``propensity score
--as-of`` receives), every account overdue at D gives one row: its features
as of D (events strictly before D) and its labels over ``[D, D + H days)``
(see :mod:`features.labels`). A snapshot whose horizon is not fully observed
(``D + H days > data_end``) is left out, never labelled as a non-payer.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from features import vocab
from features.build import assemble, concat_columns, feature_columns
from features.clearing import all_paid
from features.labels import horizon_payments, label_frame
from features.prepare import DAY_NS, as_of_timestamp, prepare_tables
from features.schema import LABEL_COLUMNS, validate_training_set

log = logging.getLogger(__name__)


def month_ends(start: object, end: object) -> list[pd.Timestamp]:
    """Return the month ends (tz-naive midnights) between two dates, both included.

    Examples
    --------
    >>> [d.date().isoformat() for d in month_ends("2024-01-15", "2024-03-31")]
    ['2024-01-31', '2024-02-29', '2024-03-31']
    """
    lo = pd.Timestamp(start).normalize()
    hi = pd.Timestamp(end).normalize()
    return [d.as_unit("ns") for d in pd.date_range(lo, hi, freq="ME")]


def _data_end_ns(prep, data_end: object) -> int:
    """The first moment not covered by the data, in ns (UTC)."""
    if data_end is not None:
        ts = pd.Timestamp(data_end)
        return int(ts.tz_convert("UTC").tz_localize(None).value if ts.tzinfo else ts.value)
    observed = [a.max() for a in (prep.pay_ns, prep.con_ns) if a.size]
    if not observed:
        raise ValueError("cannot infer data_end: no payments or contacts; pass data_end explicitly")
    # The last observed event is certainly covered; anything later may not be.
    return int(max(observed))


def build_training_set(
    tables: dict[str, pd.DataFrame],
    start: object,
    end: object,
    horizon_days: int = 30,
    materiality: float = vocab.DEFAULT_MATERIALITY,
    data_end: object = None,
    n_partitions: int = 1,
    validate: bool = True,
) -> pd.DataFrame:
    """Return one row per (account overdue at D, month end D in [start, end]): features and labels.

    Parameters
    ----------
    tables : dict of str to DataFrame
        The contract's tables (see :func:`features.build.build_features`).
    start, end : date-like
        The range of snapshot dates; every month end inside it, both included.
    horizon_days : int
        Label horizon H in days.
    materiality : float
        Arrears at or below this amount count as current (not in the set).
    data_end : date-like, optional
        The first moment the data does not cover (exclusive): a snapshot is
        kept only when ``D + H days <= data_end``. Tz-naive values are UTC.
        Default: the latest ``paid_at`` or ``contact_at`` in the data.
    n_partitions : int
        Hash partitions per snapshot (bounded working memory).
    validate : bool
        Validate against :func:`features.schema.training_set_schema`.

    Returns
    -------
    DataFrame
        ``account_id``, ``as_of_date``, the feature columns in order, then
        ``paid_any``, ``coverage``, ``paid_amount``, ``horizon_end``; sorted by
        ``as_of_date`` then the accounts table's order.
    """
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be >= 1, got {horizon_days}")
    t0 = time.perf_counter()
    prep = prepare_tables(tables)
    limit = _data_end_ns(prep, data_end)
    log.info(
        "training_set stage=prepare accounts_in=%s seconds=%.2f",
        f"{prep.n:,}",
        time.perf_counter() - t0,
    )
    parts, codes, dates = [], [], []
    for d in month_ends(start, end):
        if d.value + horizon_days * DAY_NS > limit:
            log.info(
                "training_set as_of=%s skipped: horizon ends %s, after the data end %s",
                d.date(),
                (d + pd.Timedelta(days=horizon_days)).date(),
                pd.Timestamp(limit),
            )
            continue
        t1 = time.perf_counter()
        data, rows = feature_columns(prep, d, materiality, True, n_partitions)
        parts.append(data)
        codes.append(rows)
        dates.append(np.full(rows.size, d.value, dtype=np.int64))
        log.info(
            "training_set as_of=%s rows_out=%s seconds=%.2f",
            d.date(),
            f"{rows.size:,}",
            time.perf_counter() - t1,
        )
    if not parts:
        none = prep.take(np.zeros(prep.n, dtype=bool))
        data, rows = feature_columns(none, as_of_timestamp(pd.Timestamp(end).normalize()))
        parts, codes, dates = [data], [rows], [np.zeros(0, dtype=np.int64)]
    t1 = time.perf_counter()
    feats = concat_columns(parts)
    code = np.concatenate(codes)
    d_ns = np.concatenate(dates)
    paid = all_paid(prep)
    labels = label_frame(
        feats["account_id"],
        d_ns.view("datetime64[ns]"),
        feats["arrears"],
        horizon_payments(paid, code, d_ns, horizon_days),
        horizon_days,
    )
    extra = {name: labels[name].to_numpy() for name in LABEL_COLUMNS}
    out = assemble(feats, d_ns.view("datetime64[ns]"), extra)
    if validate:
        validate_training_set(out)
    log.info(
        "training_set stage=labels rows_out=%s paid_any_rate=%.3f seconds=%.2f",
        f"{len(out):,}",
        float(out["paid_any"].mean()) if len(out) else float("nan"),
        time.perf_counter() - t1,
    )
    return out

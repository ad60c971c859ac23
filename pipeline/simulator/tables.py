"""The simulated portfolio's tables: assembly from the simulation state, ids, and writing.

The output is byte-for-byte deterministic per seed: every sort is stable,
timestamps are whole seconds, and parquet is written with fixed settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.vocab import (
    CONTACT_CHANNELS,
    DIRECTIONS,
    OFFER_TYPES,
    OUTCOMES,
    PAYMENT_CHANNELS,
    PRODUCTS,
    TABLES,
)
from pipeline.contract import COLUMNS, OPTIONAL_COLUMNS
from pipeline.simulator.parameters import (
    DEBTOR_TYPES,
    N_AGENTS,
    OUTCOME,
    TIMEZONES,
    TZ_CURRENCY,
    TZ_JURISDICTION,
)


@dataclass(frozen=True)
class Portfolio:
    """A simulated portfolio: the contract's input tables and the latent truth.

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        ``accounts``, ``installments``, ``payments``, ``contacts``, ``offers`` in
        the canonical dtypes and the contract's column order (accounts also
        carries ``monthly_income``, ``age``, ``region``).
    truth : pandas.DataFrame
        One row per account and month the account is open: ``account_id``,
        ``month`` (month-start date), ``debtor_type``, ``ability`` (0..1, share
        of the amount due the debtor can pay) and ``willingness`` (0..1).
    """

    tables: dict[str, pd.DataFrame]
    truth: pd.DataFrame


def build_portfolio(sim) -> Portfolio:
    """Assemble the contract tables and the truth table from a finished simulation."""
    n = sim.n
    acct_ids = format_ids("A", np.arange(1, n + 1))
    accounts = pd.DataFrame(
        {
            "account_id": acct_ids,
            "customer_id": format_ids("C", sim.cust + 1),
            "product": np.array(PRODUCTS, dtype=object)[sim.product_codes],
            "opened_date": epoch_dates(sim.msd(sim.o) + sim.due_day - 1),
            "principal": sim.principal.astype(np.float64),
            "currency": np.array(TZ_CURRENCY, dtype=object)[sim.tz],
            "timezone": np.array(TIMEZONES, dtype=object)[sim.tz],
        }
    )
    for name in COLUMNS["accounts"][7:]:
        accounts[name] = sim.status[name][0]
    accounts["monthly_income"] = sim.cincome[sim.cust].astype(np.float64)
    accounts["age"] = sim.cage[sim.cust].astype(np.float64)
    accounts["region"] = np.array(sim.region_names, dtype=object)[sim.cregion[sim.cust]]
    accounts["jurisdiction"] = np.array(TZ_JURISDICTION, dtype=object)[sim.tz]
    accounts = accounts[[*COLUMNS["accounts"], *OPTIONAL_COLUMNS["accounts"]]]

    # Installments: every emitted month fe .. ld of each account.
    count = np.maximum(sim.ld - sim.fe + 1, 0)
    ia = np.repeat(np.arange(n), count)
    offsets = np.arange(len(ia)) - np.repeat(np.cumsum(count) - count, count)
    im = sim.fe[ia] + offsets
    installments = pd.DataFrame(
        {
            "account_id": acct_ids[ia],
            "installment_no": (im - sim.o[ia]).astype(np.int64),
            "due_date": epoch_dates(sim.due_day_abs(ia, im)),
            "amount_due": sim.amt[ia] / 100.0,
        }
    )

    pay = sim.take("payments", ("acct", "t", "cents", "ch"), ("acct", "t"))
    payments = pd.DataFrame(
        {
            "payment_id": format_ids("P", np.arange(1, len(pay["t"]) + 1)),
            "account_id": acct_ids[pay["acct"]],
            "paid_at": epoch_timestamps(pay["t"]),
            "amount": pay["cents"] / 100.0,
            "channel": np.array(PAYMENT_CHANNELS, dtype=object)[pay["ch"]],
        }
    )
    del pay

    con = sim.take(
        "contacts", ("acct", "t", "ch", "dir", "out", "pamt", "pday", "agent"), ("acct", "t")
    )
    is_p = con["out"] == OUTCOME["promise_to_pay"]
    agents = np.array([None, *format_ids("G", np.arange(1, N_AGENTS + 1), width=3)])
    contacts = pd.DataFrame(
        {
            "contact_id": format_ids("K", np.arange(1, len(con["t"]) + 1)),
            "account_id": acct_ids[con["acct"]],
            "contact_at": epoch_timestamps(con["t"]),
            "channel": np.array(CONTACT_CHANNELS, dtype=object)[con["ch"]],
            "direction": np.array(DIRECTIONS, dtype=object)[con["dir"]],
            "outcome": np.array(OUTCOMES, dtype=object)[con["out"]],
            "promised_amount": np.where(is_p, con["pamt"] / 100.0, np.nan),
            "promised_date": epoch_dates(np.where(is_p, con["pday"], -1), null=~is_p),
            "agent_id": agents[con["agent"]],
        }
    )
    del con, is_p

    off = sim.take("offers", ("acct", "t", "type", "accepted", "discount", "n_inst"), ("acct", "t"))
    offers = pd.DataFrame(
        {
            "offer_id": format_ids("O", np.arange(1, len(off["t"]) + 1)),
            "account_id": acct_ids[off["acct"]],
            "offered_at": epoch_timestamps(off["t"]),
            "offer_type": np.array(OFFER_TYPES, dtype=object)[off["type"]],
            "accepted": off["accepted"].astype(bool),
            "discount_pct": off["discount"].astype(np.float64),
            "n_installments": pd.arrays.IntegerArray(
                off["n_inst"].astype(np.int64), off["n_inst"] <= 0
            ),
        }
    )

    tr = sim.take("truth", ("acct", "month", "ability", "willingness"), ("month", "acct"))
    types = np.array(DEBTOR_TYPES, dtype=object)
    truth = pd.DataFrame(
        {
            "account_id": acct_ids[tr["acct"]],
            "month": epoch_dates(sim.msd(tr["month"])),
            "debtor_type": types[sim.typ[tr["acct"]]],
            "ability": tr["ability"] / 10_000,
            "willingness": tr["willingness"] / 10_000,
        }
    )
    tables = {
        "accounts": accounts,
        "installments": installments,
        "payments": payments,
        "contacts": contacts,
        "offers": offers,
    }
    return Portfolio(tables={t: tables[t] for t in TABLES}, truth=truth)


def format_ids(prefix: str, numbers: np.ndarray, width: int | None = None) -> np.ndarray:
    """Format integers as fixed-width ids (``A0000001``) in an object array of str."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if width is None:
        width = max(7, len(str(int(numbers.max())))) if len(numbers) else 7
    digits = np.empty((len(numbers), width), dtype=np.uint8)
    x = numbers.copy()
    for k in range(width - 1, -1, -1):
        digits[:, k] = x % 10 + 48
        x //= 10
    pre = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    buf = np.concatenate([np.broadcast_to(pre, (len(numbers), len(pre))), digits], axis=1)
    size = len(pre) + width
    return np.ascontiguousarray(buf).view(f"S{size}").ravel().astype(f"U{size}").astype(object)


def epoch_dates(days: np.ndarray, null: np.ndarray | None = None) -> pd.Series:
    """Days since the epoch as tz-naive midnight ``datetime64[ns]`` (NaT where ``null``)."""
    values = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    if null is not None:
        values[null] = np.datetime64("NaT")
    return pd.Series(values, dtype="datetime64[ns]")


def epoch_timestamps(seconds: np.ndarray) -> pd.Series:
    """Epoch seconds as ``datetime64[ns, UTC]``."""
    values = np.asarray(seconds, dtype=np.int64).astype("datetime64[s]").astype("datetime64[ns]")
    return pd.Series(values).dt.tz_localize("UTC")


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def write_portfolio(
    portfolio: Portfolio, out_dir: Path | str, fmt: Literal["parquet", "csv"] = "parquet"
) -> dict[str, Path]:
    """Write the portfolio's tables as ``<table>.parquet`` (or ``.csv``) and ``truth.parquet``.

    Parameters
    ----------
    portfolio : Portfolio
        The output of :func:`simulate_portfolio`.
    out_dir : path
        Folder to write into (created if missing); existing files are replaced.
    fmt : {"parquet", "csv"}
        Parquet (pyarrow, no index, zstd) or CSV (UTF-8, header row, ISO dates,
        ISO UTC timestamps ending in ``Z``, ``true``/``false``, empty cells for
        null). ``truth`` is always parquet.

    Returns
    -------
    dict of str to Path
        The file written for each table and for ``truth``.

    Raises
    ------
    ValueError
        When ``fmt`` is neither parquet nor csv.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, df in portfolio.tables.items():
        path = out_dir / f"{name}.{fmt}"
        if fmt == "parquet":
            _write_parquet(df, path)
        else:
            _csv_frame(df).to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
        paths[name] = path
    paths["truth"] = out_dir / "truth.parquet"
    _write_parquet(portfolio.truth, paths["truth"])
    return paths


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write a frame with pyarrow, no index, fixed settings, so the bytes depend on data only."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path, compression="zstd", row_group_size=1_000_000, write_statistics=True)


def _csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Text form of a table for CSV: ISO dates and timestamps, true/false, empty nulls."""
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            out[col] = s.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif pd.api.types.is_datetime64_dtype(s):
            out[col] = s.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(s):
            out[col] = np.where(s.to_numpy(dtype=bool), "true", "false")
        else:
            out[col] = s
    return out

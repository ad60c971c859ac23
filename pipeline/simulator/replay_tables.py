"""The replay's tables: extended schedules, each day's new rows, and the violation checks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.vocab import CONVERSATION_OUTCOMES, OUTCOMES, SUPPRESSING_STATUSES
from pipeline.simulator.parameters import N_AGENTS
from pipeline.simulator.tables import epoch_dates, epoch_timestamps, format_ids


def extend_schedule(installments: pd.DataFrame, start: pd.Timestamp, nights: int) -> pd.DataFrame:
    """Add monthly installments to loans still running at ``start`` until the replay ends.

    A loan counts as running when its last installment falls due within the
    month before ``start`` or later; it keeps its amount and due day. (The
    tables do not say a loan's term, so the replay assumes none ends inside it.)

    Examples
    --------
    >>> inst = pd.DataFrame({"account_id": ["A", "B"], "installment_no": [5, 2],
    ...     "due_date": pd.to_datetime(["2024-03-10", "2023-01-10"]), "amount_due": [50.0, 9.0]})
    >>> out = extend_schedule(inst, pd.Timestamp("2024-03-20"), 30)
    >>> out[out.account_id == "A"].due_date.dt.strftime("%m-%d").tolist()
    ['03-10', '04-10', '05-10']
    """
    last = installments.sort_values(["account_id", "due_date"]).groupby("account_id").tail(1)
    end = start + pd.Timedelta(days=nights + 31)
    running = last[last["due_date"] >= start - pd.Timedelta(days=31)]
    k_max = int(np.ceil((nights + 62) / 28))
    rows = running.loc[running.index.repeat(k_max)].copy()
    k = np.tile(np.arange(1, k_max + 1), len(running))
    due = rows["due_date"].to_numpy().astype("datetime64[D]")
    month = due.astype("datetime64[M]")
    day_of_month = due - month.astype("datetime64[D]")
    rows["due_date"] = ((month + k).astype("datetime64[D]") + day_of_month).astype("datetime64[ns]")
    rows["installment_no"] = rows["installment_no"].to_numpy() + k
    rows = rows[rows["due_date"] < end]
    return pd.concat([installments, rows], ignore_index=True)


def day_frames(
    rows: dict[str, dict[str, np.ndarray]], ids: pd.Index, counters: dict[str, int]
) -> dict[str, pd.DataFrame]:
    """Turn a day's new rows into the contract's payments, contacts and offers frames."""
    acct_ids = ids.to_numpy(dtype=object)
    pay = rows["payments"]
    payments = pd.DataFrame(
        {
            "payment_id": _ids("P", counters["payments"], len(pay["acct"])),
            "account_id": acct_ids[pay["acct"]],
            "paid_at": epoch_timestamps(pay["t"]),
            "amount": pay["cents"] / 100.0,
            "channel": "bank_transfer",
        }
    )
    con = rows["contacts"]
    order = np.lexsort((con["t"], con["acct"]))
    con = {k: v[order] for k, v in con.items()}
    is_p = con["outcome"] == OUTCOMES.index("promise_to_pay")
    is_call = con["channel"] == 0
    agents = format_ids("G", con["acct"] % N_AGENTS + 1, width=3)
    contacts = pd.DataFrame(
        {
            "contact_id": _ids("K", counters["contacts"], len(con["acct"])),
            "account_id": acct_ids[con["acct"]],
            "contact_at": epoch_timestamps(con["t"]),
            "channel": np.where(is_call, "call", "sms").astype(object),
            "direction": "outbound",
            "outcome": np.array(OUTCOMES, dtype=object)[con["outcome"]],
            "promised_amount": np.where(is_p, con["pamt"] / 100.0, np.nan),
            "promised_date": epoch_dates(np.where(is_p, con["pday"], 0), null=~is_p),
            "agent_id": np.where(is_call, agents, None),
        }
    )
    off = rows["offers"]
    settle = off["offer"] == "settlement"
    offers = pd.DataFrame(
        {
            "offer_id": _ids("O", counters["offers"], len(off["acct"])),
            "account_id": acct_ids[off["acct"]],
            "offered_at": epoch_timestamps(off["t"]),
            "offer_type": off["offer"].astype(object),
            "accepted": off["accepted"].astype(bool),
            "discount_pct": np.where(settle, 40.0, np.nan),
            "n_installments": pd.arrays.IntegerArray(
                off["n_inst"].astype(np.int64), off["n_inst"] <= 0
            ),
        }
    )
    return {"payments": payments, "contacts": contacts, "offers": offers}


def _ids(prefix: str, start: int, count: int) -> np.ndarray:
    """Ids continuing a table's numbering (``R`` marks a replayed row)."""
    return format_ids(prefix + "R", np.arange(start + 1, start + count + 1))


def violations(
    all_contacts: pd.DataFrame, replayed: pd.DataFrame | None, accounts: pd.DataFrame, default: str
) -> dict[str, int]:
    """Count the replayed contacts that break the law (each must be 0).

    Each account is judged under its own profile (``accounts.jurisdiction``,
    else ``default``), in the debtor's local days. ``calls_7d``: outbound calls
    beyond the profile's cap in the 7 days ending on a call's day (history
    included); ``conversation_block``: calls on the day of an earlier
    conversation or the days after it that the profile blocks;
    ``suppressed``: any contact of a suppressed account; ``outside_window``:
    contacts outside the profile's lawful local hours. (cn_2025's per-day
    person limits are planned by :mod:`pipeline.limits` and not re-checked.)
    """
    from pipeline.compliance import (
        PROFILES,
        account_jurisdictions,
        is_contact_allowed,
        profile_arrays,
        to_local,
    )

    out = {"calls_7d": 0, "conversation_block": 0, "suppressed": 0, "outside_window": 0}
    if replayed is None or replayed.empty:
        return out
    acc = accounts.set_index("account_id")
    limits = profile_arrays(account_jurisdictions(accounts, default)).set_index(acc.index)
    first = replayed["contact_at"].min()
    calls = all_contacts[
        (all_contacts["channel"] == "call")
        & (all_contacts["contact_at"] >= first - pd.Timedelta(days=8))
    ].sort_values(["account_id", "contact_at"], kind="stable")
    ids = calls["account_id"].to_numpy()
    tz = acc["timezone"].reindex(ids).reset_index(drop=True)
    day = to_local(calls["contact_at"].reset_index(drop=True), tz).dt.normalize().to_numpy()
    outbound = (calls["direction"] == "outbound").to_numpy()
    new = (calls["contact_at"] >= first).to_numpy()
    per_day = pd.DataFrame({"a": ids, "d": day})[outbound].groupby(["a", "d"]).size()
    rolled = per_day.rename("n").reset_index().set_index("d").groupby("a")["n"].rolling("7D").sum()
    rolled = rolled.reset_index()
    cap = limits["max_calls_7d"].reindex(rolled["a"]).to_numpy()
    late = rolled["d"].to_numpy() >= np.datetime64(first.tz_convert(None).normalize())
    out["calls_7d"] = int(((rolled["n"].to_numpy() > cap) & late).sum())
    conv = calls["outcome"].isin(CONVERSATION_OUTCOMES).to_numpy()
    # The latest conversation strictly before each call, within the same account.
    prev = pd.Series(np.where(conv, day, np.datetime64("NaT"))).groupby(ids).shift(1)
    prev = prev.groupby(ids).ffill()
    gap = (day - prev.to_numpy()).astype("timedelta64[D]").astype(float)
    block = limits["conversation_block_days"].reindex(ids).to_numpy()
    out["conversation_block"] = int(((gap >= 0) & (gap < block) & outbound & new).sum())
    flags = acc[list(SUPPRESSING_STATUSES)].fillna(True).any(axis=1)
    out["suppressed"] = int(flags.reindex(replayed["account_id"]).fillna(False).sum())
    r_tz = acc["timezone"].reindex(replayed["account_id"]).reset_index(drop=True)
    local = to_local(replayed["contact_at"].reset_index(drop=True), r_tz)
    names = account_jurisdictions(accounts, default).set_axis(acc.index)
    r_names = names.reindex(replayed["account_id"]).to_numpy()
    for name in pd.unique(r_names):
        sel = r_names == name
        allowed = is_contact_allowed(local[sel], PROFILES[name])
        out["outside_window"] += int((~allowed).sum())
    return out

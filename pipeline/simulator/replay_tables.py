"""The replay's tables: extended schedules, each day's new rows, and the violation checks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.vocab import CONVERSATION_OUTCOMES, OUTCOMES, SUPPRESSING_STATUSES
from pipeline.simulator.parameters import _N_AGENTS
from pipeline.simulator.tables import _dates, _format_ids, _timestamps


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
            "paid_at": _timestamps(pay["t"]),
            "amount": pay["cents"] / 100.0,
            "channel": "bank_transfer",
        }
    )
    con = rows["contacts"]
    order = np.lexsort((con["t"], con["acct"]))
    con = {k: v[order] for k, v in con.items()}
    is_p = con["outcome"] == OUTCOMES.index("promise_to_pay")
    is_call = con["channel"] == 0
    agents = _format_ids("G", con["acct"] % _N_AGENTS + 1, width=3)
    contacts = pd.DataFrame(
        {
            "contact_id": _ids("K", counters["contacts"], len(con["acct"])),
            "account_id": acct_ids[con["acct"]],
            "contact_at": _timestamps(con["t"]),
            "channel": np.where(is_call, "call", "sms").astype(object),
            "direction": "outbound",
            "outcome": np.array(OUTCOMES, dtype=object)[con["outcome"]],
            "promised_amount": np.where(is_p, con["pamt"] / 100.0, np.nan),
            "promised_date": _dates(np.where(is_p, con["pday"], 0), null=~is_p),
            "agent_id": np.where(is_call, agents, None),
        }
    )
    off = rows["offers"]
    settle = off["offer"] == "settlement"
    offers = pd.DataFrame(
        {
            "offer_id": _ids("O", counters["offers"], len(off["acct"])),
            "account_id": acct_ids[off["acct"]],
            "offered_at": _timestamps(off["t"]),
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
    return _format_ids(prefix + "R", np.arange(start + 1, start + count + 1))


def violations(
    all_contacts: pd.DataFrame, replayed: pd.DataFrame | None, accounts: pd.DataFrame, profile
) -> dict[str, int]:
    """Count the replayed contacts that break the law (each must be 0).

    ``calls_7d``: outbound calls beyond the profile's cap in the 7 days ending
    on a call's day (history included); ``conversation_block``: calls on the
    day of an earlier conversation or the 6 days after it; ``suppressed``:
    any contact of a suppressed account; ``outside_window``: contacts
    outside the lawful local hours.
    """
    from pipeline.compliance import is_contact_allowed, to_local

    out = {"calls_7d": 0, "conversation_block": 0, "suppressed": 0, "outside_window": 0}
    if replayed is None or replayed.empty:
        return out
    first = replayed["contact_at"].min()
    calls = all_contacts[
        (all_contacts["channel"] == "call")
        & (all_contacts["contact_at"] >= first - pd.Timedelta(days=8))
    ].sort_values(["account_id", "contact_at"], kind="stable")
    day = calls["contact_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    outbound = (calls["direction"] == "outbound").to_numpy()
    new = (calls["contact_at"] >= first).to_numpy()
    if profile.max_calls_7d is not None:
        per_day = (
            pd.DataFrame({"a": calls["account_id"], "d": day})[outbound]
            .groupby(["a", "d"])
            .size()
            .rename("n")
            .reset_index()
        )
        rolled = per_day.set_index("d").groupby("a")["n"].rolling("7D").sum().reset_index()
        late = rolled["d"] >= first.tz_convert("UTC").tz_localize(None).normalize()
        out["calls_7d"] = int(((rolled["n"] > profile.max_calls_7d) & late).sum())
    if profile.conversation_block_days:
        conv = calls["outcome"].isin(CONVERSATION_OUTCOMES).to_numpy()
        last_conv = pd.Series(np.where(conv, day.to_numpy(), np.datetime64("NaT")))
        # The latest conversation strictly before each call, within the same account.
        prev = last_conv.groupby(calls["account_id"].to_numpy()).shift(1)
        prev = prev.groupby(calls["account_id"].to_numpy()).ffill()
        gap = (day.to_numpy() - prev.to_numpy()).astype("timedelta64[D]").astype(float)
        blocked = (gap >= 0) & (gap < profile.conversation_block_days)
        out["conversation_block"] = int((blocked & outbound & new).sum())
    flags = accounts.set_index("account_id")[list(SUPPRESSING_STATUSES)].fillna(True).any(axis=1)
    out["suppressed"] = int(flags.reindex(replayed["account_id"]).fillna(False).sum())
    tz = accounts.set_index("account_id")["timezone"].reindex(replayed["account_id"])
    local = to_local(replayed["contact_at"].reset_index(drop=True), tz.reset_index(drop=True))
    out["outside_window"] = int((~is_contact_allowed(local, profile)).sum())
    return out

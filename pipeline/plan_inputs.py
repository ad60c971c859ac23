"""The inputs of the policy engine, checked: scored rows, the accounts they belong to, the log.

Also the working plan's integer codes and the policy's caps per code, which
the steps of :mod:`pipeline.plan` read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.vocab import CONTACT_INTENSITIES, OUTPUT_OFFERS, SUPPRESSING_STATUSES
from pipeline.compliance import account_jurisdictions
from pipeline.policy import Policy

#: Columns the scored frame must have (``expected_share`` is optional).
SCORED_COLUMNS: tuple[str, ...] = (
    "account_id",
    "dpd",
    "arrears",
    "p_willingness",
    "p_ability",
    "capacity",
    "installment_amount",
)

#: The working plan's integer codes of the intensities and offers (features.vocab's order).
INTENSITY_CODE: dict[str, int] = {name: i for i, name in enumerate(CONTACT_INTENSITIES)}
OFFER_CODE: dict[str, int] = {name: i for i, name in enumerate(OUTPUT_OFFERS)}


def caps_table(policy: Policy, key: str) -> np.ndarray:
    """Return the policy's cap ``key`` (``max_calls_7d``, ``max_sms_7d``) per intensity code."""
    return np.array([getattr(policy.intensity_caps[i], key) for i in CONTACT_INTENSITIES])


def check_scored(scored: pd.DataFrame) -> None:
    """Refuse scored rows with a missing column, a probability outside [0, 1] or no dpd."""
    missing = [c for c in SCORED_COLUMNS if c not in scored.columns]
    if missing:
        raise ValueError(f"scored is missing the columns {missing}")
    for col in ("p_willingness", "p_ability"):
        p = scored[col].to_numpy(dtype=np.float64)
        bad = ~((p >= 0.0) & (p <= 1.0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"scored.{col} must be a probability in [0, 1]: {int(bad.sum())} rows, "
                f"e.g. account_id {scored['account_id'].iloc[i]} ({p[i]})"
            )
    dpd = scored["dpd"].to_numpy(dtype=np.float64)
    if np.isnan(dpd).any():
        i = int(np.flatnonzero(np.isnan(dpd))[0])
        raise ValueError(
            f"scored.dpd must not be missing: {int(np.isnan(dpd).sum())} rows, "
            f"e.g. account_id {scored['account_id'].iloc[i]}"
        )


def accounts_rows(accounts: pd.DataFrame, ids: pd.Series, default: str) -> pd.DataFrame:
    """Take the accounts rows of the scored ids, in their order, with each one's jurisdiction."""
    needed = ["customer_id", "timezone", "hardship", *SUPPRESSING_STATUSES]
    missing = [c for c in ["account_id", *needed] if c not in accounts.columns]
    if missing:
        raise ValueError(f"accounts is missing the columns {missing}")
    index = pd.Index(accounts["account_id"])
    if not index.is_unique:
        dupes = index[index.duplicated()]
        raise ValueError(f"accounts.account_id must be unique, e.g. {dupes[0]} repeats")
    pos = index.get_indexer(ids)
    if (pos < 0).any():
        absent = ids[pos < 0]
        raise ValueError(
            f"scored accounts not in accounts: {len(absent)}, e.g. account_id {absent.iloc[0]}"
        )
    rows = accounts.iloc[pos].reset_index(drop=True)
    return rows[needed].assign(jurisdiction=account_jurisdictions(rows, default).to_numpy())


def contacts_or_empty(contacts: pd.DataFrame | None) -> pd.DataFrame:
    """Return the log, or an empty one with the contract's columns."""
    if contacts is not None:
        return contacts
    return pd.DataFrame(
        {
            "account_id": pd.Series(dtype=object),
            "contact_at": pd.Series(dtype="datetime64[ns, UTC]"),
            "channel": pd.Series(dtype=object),
            "direction": pd.Series(dtype=object),
            "outcome": pd.Series(dtype=object),
        }
    )

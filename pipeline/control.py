"""The randomised control group: one draw per account and delinquency episode.

Design (``docs/policy.md``, "Control group"):

* **What is randomised**: whether an overdue account gets its tier's plan
  (treated) or the stage's baseline treatment (control).
* **The unit**: the account's delinquency episode, from its first day past
  due until the payment that cures it (:mod:`features.episodes`,
  with the materiality rule). The draw hashes
  ``"{control_seed}|{account_id}|{episode start}"``, so it is the same on
  every night of an episode, fresh for the account's next episode, and needs
  no stored state: any night's run recomputes it from the seed, the account
  and the ledger.
* **How many**: ``control_share`` of every tier, or the tier's own
  ``control_share`` when the policy sets one; the probability is published
  per row (``control_probability``), so estimates can weight tiers.
* **What is logged**: the plan a control account would have had
  (``treated_*``: intensity, caps and offer of its tier and DPD stage,
  before the compliance cuts that apply to both groups alike).

An account whose tier changes during the episode keeps its draw but is
compared against its new tier's share: with equal shares (the default) the
assignment never changes within an episode.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.vocab import CONTACT_INTENSITIES, OUTPUT_OFFERS

#: Columns describing the plan a control account would have had (published per row).
TREATED_COLUMNS: tuple[str, ...] = (
    "treated_contact_intensity",
    "treated_max_calls_7d",
    "treated_max_sms_7d",
    "treated_offer",
)
#: Columns naming the randomised arm of each row, published after everything else:
#: ``arm`` is ``control`` (the baseline treatment), an explored intensity
#: (``none``, ``low``, ``medium``, ``high``, value mode's ``explore_share``) or
#: ``plan`` (chosen by the plan, not randomised); ``arm_probability`` is the
#: chance of that arm under the randomisation (NaN for ``plan``); ``lawful_arms`` is
#: how many intensities were lawful for the row when value mode planned it (an
#: explored arm is drawn among them; null where value mode did not plan the row).
ARM_COLUMNS: tuple[str, ...] = ("arm", "arm_probability", "lawful_arms")


def episode_start(scored: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Return the first day past due of each scored account's current delinquency episode.

    From ``episode_days_current`` (the feature: days since the episode began,
    D included) when the scored frame carries it, else from the DPD
    (``D - dpd + 1``, the same day unless a partial payment moved the oldest
    unpaid installment during the episode).

    Examples
    --------
    >>> scored = pd.DataFrame({"dpd": [10, 3], "episode_days_current": [40, 3]})
    >>> episode_start(scored, pd.Timestamp("2024-03-31")).dt.strftime("%m-%d").tolist()
    ['02-21', '03-29']
    """
    d = pd.Timestamp(as_of).normalize()
    if "episode_days_current" in scored.columns:
        days = scored["episode_days_current"].to_numpy(dtype=np.float64)
    else:
        days = np.full(len(scored), np.nan)
    days = np.where(np.isfinite(days) & (days > 0), days, scored["dpd"].to_numpy(np.float64))
    days = np.maximum(days, 1)
    return pd.Series(d - pd.to_timedelta(days - 1, unit="D"), index=scored.index)


def episode_uniform(account_ids: pd.Series, starts: pd.Series, seed: int) -> np.ndarray:
    """One reproducible uniform in [0, 1) per account and episode start.

    The number is a hash of ``"{seed}|{account_id}|{YYYY-MM-DD}"`` (pandas'
    SipHash of the string, vectorised): independent of row order, of the
    other accounts and of the night it is computed on.

    Examples
    --------
    >>> ids = pd.Series(["A1", "A1", "A2"])
    >>> starts = pd.Series(pd.to_datetime(["2024-03-01", "2024-03-01", "2024-03-01"]))
    >>> u = episode_uniform(ids, starts, 7)
    >>> bool(u[0] == u[1]), bool(u[0] != u[2]), bool(((u >= 0) & (u < 1)).all())
    (True, True, True)
    """
    ids = pd.Series(account_ids, dtype=object).astype(str).reset_index(drop=True)
    days = pd.Series(pd.to_datetime(starts)).dt.strftime("%Y-%m-%d").reset_index(drop=True)
    keys = f"{seed}|" + ids + "|" + days
    hashed = pd.util.hash_pandas_object(keys, index=False).to_numpy(dtype=np.uint64)
    # Top 53 bits -> an exactly representable double in [0, 1).
    return (hashed >> np.uint64(11)).astype(np.float64) * 2.0**-53


def tier_shares(policy, tier: np.ndarray) -> np.ndarray:
    """Each row's control share: its tier's ``control_share`` if set, else the policy's."""
    shares = [
        t.control_share if getattr(t, "control_share", None) is not None else policy.control_share
        for t in policy.tiers
    ]
    return np.asarray(shares, dtype=np.float64)[np.asarray(tier, dtype=np.int64)]


def draw_control(
    steps: pd.DataFrame, scored: pd.DataFrame | None, as_of: pd.Timestamp, policy
) -> pd.DataFrame:
    """Return per row ``control_group``, ``control_probability``, the treated plan and the draw.

    ``uniform`` is the episode's draw (:func:`episode_uniform`), kept so that
    the value mode's exploration (:func:`explore_draw`) reuses it.

    ``steps`` is the policy engine's working plan after the DPD stage (codes
    ``tier``, ``intensity``, ``calls``, ``sms``, ``offer``), aligned with
    ``scored`` by position (None: every episode starts on D).
    """
    if scored is None:
        starts = pd.Series(pd.Timestamp(as_of).normalize(), index=steps.index)
    else:
        starts = episode_start(scored.reset_index(drop=True), as_of)
    u = episode_uniform(steps["account_id"], starts, policy.control_seed)
    share = tier_shares(policy, steps["tier"].to_numpy())
    return pd.DataFrame(
        {
            "control_group": u < share,
            "control_probability": share,
            "episode_start": starts.to_numpy(),
            "treated_contact_intensity": np.array(CONTACT_INTENSITIES, dtype=object)[
                steps["intensity"].to_numpy()
            ],
            "treated_max_calls_7d": steps["calls"].to_numpy(np.int64),
            "treated_max_sms_7d": steps["sms"].to_numpy(np.int64),
            "treated_offer": np.array(OUTPUT_OFFERS, dtype=object)[steps["offer"].to_numpy()],
            "uniform": u,
        },
        index=steps.index,
    )


def plan_id(account_ids: pd.Series, as_of: pd.Timestamp) -> np.ndarray:
    """Return the stable id of each account's plan for D: ``"{YYYYMMDD}-{account_id}"``.

    The same account and date always give the same id (a rerun of D replaces
    the plan and keeps its id), so a dialer can log it in ``contacts.plan_id``.

    Examples
    --------
    >>> plan_id(pd.Series(["A1"]), pd.Timestamp("2025-06-30")).tolist()
    ['20250630-A1']
    """
    day = pd.Timestamp(as_of).strftime("%Y%m%d")
    return (day + "-" + pd.Series(account_ids, dtype=object).astype(str)).to_numpy(dtype=object)


def explore_draw(
    uniform: np.ndarray, control_share: np.ndarray, explore_share: float, lawful: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return per row the explored intensity (-1: not explored) and its probability.

    The episode's draw ``u`` (the control group's, :func:`episode_uniform`)
    puts a row in the control group when ``u < share``; the next
    ``explore_share x (1 - share)`` of the unit interval explores, i.e.
    ``explore_share`` of the accounts outside the control group, the same
    every night of the episode. Where ``u`` falls inside that slice picks,
    uniformly, one of the row's lawful intensities (``lawful``: (n, K) bool,
    column 0 = none, always lawful); a row with no lawful intensity is not
    explored. The probability is ``explore_share x (1 - share) / lawful count``.

    Examples
    --------
    >>> lawful = np.array([[True, True, False, False]] * 3)
    >>> k, p = explore_draw(np.array([0.01, 0.06, 0.5]), np.full(3, 0.05), 0.1, lawful)
    >>> k.tolist(), [round(float(x), 5) for x in p[:2]]
    ([-1, 0, -1], [nan, 0.0475])
    """
    u = np.asarray(uniform, dtype=np.float64)
    share = np.asarray(control_share, dtype=np.float64)
    lawful = np.asarray(lawful, dtype=bool)
    width = explore_share * (1.0 - share)
    count = lawful.sum(axis=1)
    inside = (u >= share) & (u < share + width) & (count > 0) & (width > 0)
    pick = np.floor((u - share) / np.where(width > 0, width, 1.0) * count).astype(np.int64)
    pick = np.clip(pick, 0, np.maximum(count - 1, 0))
    nth = np.cumsum(lawful, axis=1) - 1  # rank of each lawful column
    k = np.argmax(lawful & (nth == pick[:, None]), axis=1)
    chosen = np.where(inside, k, -1)
    prob = np.where(inside, width / np.maximum(count, 1), np.nan)
    return chosen, prob

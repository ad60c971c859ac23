"""Randomised units for ``propensity train --plans DIR``: logged plans and what they recovered.

A folder of published runs (``as_of=D/scores.parquet``) holds, per night,
each account's plan and its randomised assignment. Rules:

* **Arm**: the row's ``arm`` when the run publishes one (``control``, an
  explored intensity ``none``/``low``/``medium``/``high``, or ``plan``: the
  plan's own choice, randomised against the control group at the control
  share); otherwise ``control`` for the control group and ``plan`` for the
  rest. The baseline arm is ``control``. Rows of any other arm are left out.
* **Explored among all four**: an explored unit counts only when all four
  intensities were lawful for it (the published ``lawful_arms``): one whose
  law, hardship or open promise left fewer was drawn among the low arms
  only and would confound their effects. Those left out are counted; runs
  published before ``lawful_arms`` keep their explored units (logged).
* **Unit**: an account-episode's first published night (consecutive nights
  of an account are one delinquency episode, whose arm is drawn once), if
  its horizon has closed by the training date (``D + horizon_days <= as_of``).
* **Outcome**: payments in ``[D, D + horizon_days)`` (UTC) over the arrears at
  D, clipped to [0, 1]; accounts without arrears at D are no unit.
* **Features**: the columns every published row carries and the value mode
  has at planning time (:data:`UNIT_FEATURES`).

The units come from the value mode's learning-data builder,
:func:`features.uplift_data.uplift_units`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from features.uplift_data import lawful_draws, uplift_units
from features.vocab import CONTACT_INTENSITIES
from pipeline.effect import EffectInputError, read_published

log = logging.getLogger(__name__)

#: Features of a unit: published with every scored row (the data contract's scores columns).
UNIT_FEATURES: tuple[str, ...] = ("dpd", "arrears", "p_willingness", "p_ability")
#: Columns of a published run the units are built from (``arm`` and its probability when logged).
PUBLISHED_COLUMNS: tuple[str, ...] = (
    "account_id", "as_of_date", "control_group", "arm", "arm_probability", "lawful_arms",
    *UNIT_FEATURES,
)  # fmt: skip
#: The arms in report order: the baseline treatment first, ``plan`` last.
ARM_ORDER: tuple[str, ...] = ("control", *CONTACT_INTENSITIES, "plan")


def plan_units(
    scores: pd.DataFrame, payments: pd.DataFrame, as_of: pd.Timestamp, horizon_days: int
) -> pd.DataFrame:
    """Return one randomised unit per account-episode: features, arm and share of arrears recovered.

    The units are :func:`features.uplift_data.uplift_units`' (the value
    mode's learning data, one builder for both), on published rows read as
    tz-naive dates, keeping the arms of :data:`ARM_ORDER`.

    Parameters
    ----------
    scores : DataFrame
        Published rows (``account_id``, ``as_of_date``, ``control_group``,
        :data:`UNIT_FEATURES`, optionally ``arm``).
    payments : DataFrame
        The contract's payments (``account_id``, ``paid_at``, ``amount``).
    as_of : Timestamp
        Training date: only rows whose horizon closed by then are units.
    horizon_days : int

    Returns
    -------
    DataFrame
        ``account_id``, ``as_of_date`` (D), ``arm``, ``outcome``, :data:`UNIT_FEATURES`;
        ``attrs["explored"]`` counts the explored units kept, those left out
        (``fewer_lawful``: drawn among fewer than four intensities) and those
        kept without a logged count (``lawful_unknown``).

    Raises
    ------
    EffectInputError
        When the published rows lack a needed column.
    """
    missing = [c for c in ("account_id", "as_of_date", "control_group", *UNIT_FEATURES)
               if c not in scores.columns]  # fmt: skip
    if missing:
        raise EffectInputError(f"published scores lack the columns {missing}")
    day = pd.to_datetime(scores["as_of_date"])
    if day.dt.tz is not None:
        day = day.dt.tz_localize(None)
    rows = scores.assign(as_of_date=day.dt.normalize())
    units = uplift_units(rows, payments, horizon_days, as_of, UNIT_FEATURES)
    units = units[units["arm"].isin(ARM_ORDER) & (units["arrears"] > 0)]
    full, fewer = lawful_draws(units)
    unknown = units["arm"].isin(CONTACT_INTENSITIES).to_numpy() & ~full & ~fewer
    explored = {
        "kept": int(full.sum() + unknown.sum()),
        "fewer_lawful": int(fewer.sum()),
        "lawful_unknown": int(unknown.sum()),
    }
    units = units[~fewer].sort_values(
        ["account_id", "as_of_date"], kind="stable"
    )  # whatever the read order
    cols = ["account_id", "as_of_date", "arm", "outcome", *UNIT_FEATURES]
    out = units.loc[:, list(dict.fromkeys(cols))].reset_index(drop=True)
    out.attrs["explored"] = explored
    return out


def effects_from_plans(
    plans_dir: Path,
    payments: pd.DataFrame,
    as_of: pd.Timestamp,
    horizon_days: int,
    seed: int = 0,
    since: pd.Timestamp | None = None,
):
    """Fit and evaluate the treatment-effect model on the logged plans of ``plans_dir``.

    Runs dated from ``since`` (default: every run) until ``as_of - horizon_days`` are read.

    Returns a :class:`models.effects.TreatmentEffects`, without a model (and
    saying why) when the folder holds no run with a closed horizon or too few
    randomised units.

    Raises
    ------
    EffectInputError
        When ``plans_dir`` is not a folder or its runs lack the needed columns.
    """
    from models.effects import assess_effects, no_effects

    plans_dir = Path(plans_dir)
    if not plans_dir.is_dir():
        raise EffectInputError(f"--plans {plans_dir}: no such folder of published runs")
    last = as_of - pd.Timedelta(days=horizon_days)
    source = f"logged plans in {plans_dir.name}/ up to {last.date()}"
    try:
        scores = read_published(
            plans_dir, since or pd.Timestamp("1900-01-01"), last, PUBLISHED_COLUMNS
        )
    except EffectInputError:
        return no_effects(source, f"no published run in {plans_dir} whose horizon closed by "
                          f"{as_of.date()}")  # fmt: skip
    units = plan_units(scores, payments, as_of, horizon_days)
    runs = scores["as_of_date"].nunique()
    note = _explored_note(units.attrs["explored"])
    source = (
        f"{runs} published run(s) in {plans_dir.name}/ "
        f"{pd.Timestamp(units['as_of_date'].min()).date() if len(units) else ''}.."
        f"{pd.Timestamp(units['as_of_date'].max()).date() if len(units) else ''}, "
        f"outcome = share of arrears paid within {horizon_days} days; {note}"
    )
    arms = tuple(a for a in ARM_ORDER if a in set(units["arm"]))
    if len(arms) < 2 or arms[0] != "control":
        return no_effects(
            source, f"the logged plans hold no randomised comparison (arms {arms}); {note}"
        )
    effects = assess_effects(
        units[list(UNIT_FEATURES)], units["arm"].to_numpy(), units["outcome"].to_numpy(),
        arms, source, seed=seed,
    )  # fmt: skip
    if effects.model is None:  # the uplift_model tag logs the reason, not the source
        effects = replace(effects, reason=f"{effects.reason}; {note}")
    return effects


def _explored_note(counts: dict[str, int]) -> str:
    """Say (and log) how many explored units were kept, left out, or kept without a lawful count."""
    note = (
        f"explored units: {counts['kept']} kept, {counts['fewer_lawful']} left out "
        f"(drawn among fewer than {len(CONTACT_INTENSITIES)} lawful intensities)"
    )
    if counts["lawful_unknown"]:
        note += (
            f", {counts['lawful_unknown']} kept without lawful_arms (runs published before "
            "it): restricted draws among them cannot be told apart"
        )
    (log.warning if counts["lawful_unknown"] else log.info)("train --plans: %s", note)
    return note

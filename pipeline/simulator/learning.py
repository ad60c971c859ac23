"""Learn then exploit: the value strategy's effect model, fitted on its own explored nights.

:class:`EffectLearner` keeps, night by night, the plans a value strategy
logged (``arm``, ``arm_probability``, the arrears and the features of
:data:`UPLIFT_FEATURES` as of the night). After ``learn_nights`` nights it
turns them into units (:func:`features.uplift_data.uplift_units`: one per
account-episode, outcome = share of arrears paid within ``horizon_days``,
only horizons complete before that night), keeps the explored arms
(``none``, ``low``, ``medium``, ``high``) **drawn among all four** (the
plans' ``lawful_arms``, :func:`features.uplift_data.lawful_draws`; an
account whose law, hardship or open promise leaves fewer lawful intensities
is drawn among fewer: a promise holder can only be ``none``, so such units
would make ``none`` look better than it is), holds out a random share of them
(by the episodes' own draw, :func:`pipeline.control.episode_uniform`), fits
the T-learner (:func:`models.uplift.fit_t_learner`) on the rest and measures
it on the held-out units (:func:`models.uplift.evaluate_uplift`, Qini per
arm). From then on the strategy plans with the learned effects
(:meth:`EffectLearner.effects`): each arm's effect is centred on its
randomised difference in means (training units), and the model's spread
around it is kept only for an arm whose held-out Qini is positive. A
few hundred units per arm estimate an arm's average well but each
account's effect poorly: uncentred, a third of the accounts get an estimate
at or below 0 by noise alone and are left uncontacted.

One learner serves every seed of a replay: a night not after the last one
seen starts a new run, and each run's result is kept in :attr:`EffectLearner.runs`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.vocab import CONTACT_INTENSITIES

log = logging.getLogger(__name__)

#: The treatment arms of the effect model (the value mode's intensities, no contact first).
ARMS: tuple[str, ...] = CONTACT_INTENSITIES
#: Features of the effect model, as of the night (scored columns, then features).
UPLIFT_FEATURES: tuple[str, ...] = (
    "p_willingness",
    "p_ability",
    "expected_share",
    "dpd",
    "arrears",
    "short_shock",
    "paid_ratio_180d",
    "rpc_rate_90d",
    "promise_kept_rate_180d",
    "installment_to_income",
)
#: Share of the explored units held out to measure the model (Qini).
HOLDOUT_SHARE = 0.3
#: Seed of the held-out draw (any fixed number; the episodes' hash is the control group's).
HOLDOUT_SEED = 7


@dataclass
class LearnResult:
    """One run's learning: the units, the fitted model (None if it could not be fitted), Qini."""

    counts: dict
    model: object | None = None
    evaluation: pd.DataFrame | None = None
    reason: str = ""
    centre: pd.DataFrame | None = None


@dataclass
class EffectLearner:
    """Collect a value strategy's logged plans, fit the effect model once, hand out effects."""

    learn_nights: int
    horizon_days: int
    seed: int = 0
    logs: list[pd.DataFrame] = field(default_factory=list, repr=False)
    runs: list[LearnResult] = field(default_factory=list)
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    model: object | None = None

    def night(self, as_of: pd.Timestamp) -> int:
        """Return the night's index in its run (0 first); a night not after the last starts a run."""
        if self.last is None or as_of <= self.last:
            self.first, self.logs, self.model = as_of, [], None
        self.last = as_of
        return int((as_of - self.first).days)

    def record(self, as_of: pd.Timestamp, plans: pd.DataFrame, X: pd.DataFrame) -> None:
        """Keep a night's logged arms (with ``lawful_arms``) and the features the plan was made from."""
        rows = pd.DataFrame(
            {
                "account_id": plans["account_id"].to_numpy(),
                "as_of_date": as_of,
                "arm": plans["arm"].to_numpy(),
                "arm_probability": plans["arm_probability"].to_numpy(np.float64),
                "lawful_arms": pd.array(plans["lawful_arms"], dtype="Int64"),
            }
        )
        self.logs.append(pd.concat([rows, X.reset_index(drop=True)], axis=1))

    def fit(self, payments: pd.DataFrame, as_of: pd.Timestamp) -> LearnResult:
        """Fit the T-learner on the explored units whose horizon closed before ``as_of``."""
        from features.uplift_data import lawful_draws, uplift_units
        from models.uplift import evaluate_uplift, fit_t_learner
        from pipeline.control import episode_uniform

        logged = pd.concat(self.logs, ignore_index=True)
        units = uplift_units(logged, payments, self.horizon_days, as_of, UPLIFT_FEATURES)
        full, _ = lawful_draws(units)
        explored = units[full].reset_index(drop=True)
        held = episode_uniform(explored["account_id"], explored["as_of_date"], HOLDOUT_SEED)
        held = held < HOLDOUT_SHARE
        counts = {
            **units.attrs["counts"],
            "explored_units": int(units["arm"].isin(ARMS).sum()),
            "all_four_lawful": int(len(explored)),
            "held_out": int(held.sum()),
            **{f"units_{a}": int((explored["arm"] == a).sum()) for a in ARMS},
        }
        X = explored[list(UPLIFT_FEATURES)].astype(np.float64)
        train, t, y = ~held, explored["arm"].to_numpy(), explored["outcome"].to_numpy()
        try:
            model = fit_t_learner(X[train], t[train], y[train], ARMS, seed=self.seed, rounds=100)
        except ValueError as exc:  # too few explored units of an arm: the priors stay
            result = LearnResult(counts, reason=str(exc))
            log.warning("effect model not fitted (%s); the priors stay", exc)
        else:
            table, _ = evaluate_uplift(model, X[held], t[held], y[held])
            centre = _centre(model, X[train], t[train], y[train], table)
            result = LearnResult(counts, model, table, centre=centre)
            log.info("effect model fitted on %s\n%s\n%s", counts, table, centre)
        self.model = result.model
        self.runs.append(result)
        return result

    def effects(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return ``effect_low/medium/high`` of the last fit: arm average + the kept spread."""
        from pipeline.value_plan import effects_from_model

        c = self.runs[-1].centre
        raw = effects_from_model(self.model, X)
        spread = raw - c["predicted_mean"].to_numpy()[None, :]
        return spread * c["keep_spread"].to_numpy()[None, :] + c["ate"].to_numpy()[None, :]


def _centre(model, X, t, y, table) -> pd.DataFrame:
    """Per arm: the randomised difference in means, the model's mean effect, keep its spread."""
    pred = model.effects(X)
    base = y[t == ARMS[0]].mean()
    qini = table.set_index("arm")["qini_coefficient"]
    return pd.DataFrame(
        {
            "ate": [float(y[t == a].mean() - base) for a in ARMS[1:]],
            "predicted_mean": [float(pred[a].mean()) for a in ARMS[1:]],
            "keep_spread": [float(qini[a] > 0) for a in ARMS[1:]],
        },
        index=[f"effect_{a}" for a in ARMS[1:]],
    )


def qini_text(runs: list[LearnResult]) -> str:
    """One line per run: units and the held-out Qini coefficient and effects per arm."""
    lines = []
    for i, r in enumerate(runs):
        c = r.counts
        per_arm = ", ".join(f"{a} {c.get('units_' + a, 0)}" for a in ARMS)
        head = (
            f"effect model, run {i + 1}: {c.get('explored_units', 0)} explored units, "
            f"{c.get('all_four_lawful', 0)} drawn among all four intensities ({per_arm}), "
            f"{c.get('held_out', 0)} held out"
        )
        if r.evaluation is None:
            lines.append(f"{head}; not fitted: {r.reason}")
            continue
        arms = "; ".join(
            f"{row.arm}: Qini {row.qini_coefficient:+.4f}, effect observed "
            f"{row.observed_effect:+.3f} predicted {row.predicted_effect:+.3f}"
            for row in r.evaluation.itertuples()
        )
        lines.append(f"{head}; held out: {arms}")
    return "\n".join(lines)


__all__ = ["ARMS", "UPLIFT_FEATURES", "EffectLearner", "LearnResult", "qini_text"]

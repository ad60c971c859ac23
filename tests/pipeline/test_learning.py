"""The replay's effect learner: logged explored nights -> units -> T-learner -> held-out Qini."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.uplift import planted_randomised_data
from pipeline.simulator.learning import ARMS, UPLIFT_FEATURES, EffectLearner, qini_text

D0 = pd.Timestamp("2025-03-01")


def _night(learner, day, n, seed):
    """Log one night of ``n`` new episodes with planted arms; return their payments."""
    X, t, y, _ = planted_randomised_data(n, seed, ARMS)
    ids = [f"S{seed}-{i}" for i in range(n)]
    feats = pd.DataFrame({c: np.random.default_rng(seed).normal(size=n) for c in UPLIFT_FEATURES})
    feats["p_willingness"] = X["p_willingness"].to_numpy()
    feats["arrears"] = 1000.0
    as_of = D0 + pd.Timedelta(days=day)
    assert learner.night(as_of) == day
    # Every fourth account has only two lawful arms: drawn with probability 1/2, left out.
    lawful = np.where(np.arange(n) % 4 == 0, 2, 4)
    plans = pd.DataFrame(
        {"account_id": ids, "arm": t, "arm_probability": 1.0 / lawful, "lawful_arms": lawful}
    )
    learner.record(as_of, plans, feats)
    return pd.DataFrame(
        {
            "account_id": ids,
            "paid_at": (as_of + pd.Timedelta(hours=30)).tz_localize("UTC"),
            "amount": np.round(y * 1000.0, 2),
        }
    ).query("amount > 0")


def test_learner_fits_on_complete_horizons_and_measures_on_held_out_units():
    learner = EffectLearner(learn_nights=10, horizon_days=7)
    pays = [
        _night(learner, day, 900, seed=day + 1) for day in range(5)
    ]  # day 4's horizon is not over
    learner.night(D0 + pd.Timedelta(days=10))
    result = learner.fit(pd.concat(pays, ignore_index=True), D0 + pd.Timedelta(days=10))
    assert result.counts["units"] == 4500 and result.counts["incomplete_horizon"] == 900
    assert result.counts["all_four_lawful"] == 2700
    assert 0.2 < result.counts["held_out"] / 2700 < 0.4
    assert result.model is not None and learner.model is result.model
    table = result.evaluation.set_index("arm")
    # The planted effect grows with intensity and is found on held-out units.
    assert table.loc["high", "predicted_effect"] > table.loc["low", "predicted_effect"] > 0
    assert table.loc["high", "qini_coefficient"] > 0
    assert "held out: low: Qini" in qini_text(learner.runs)
    # Planning effects: each arm centred on its randomised difference in means.
    X = pd.DataFrame({c: np.zeros(4) for c in UPLIFT_FEATURES}).assign(p_willingness=0.5)
    eff = learner.effects(X)
    centre = result.centre
    assert eff.columns.tolist() == ["effect_low", "effect_medium", "effect_high"]
    assert 0 < centre.loc["effect_low", "ate"] < centre.loc["effect_high", "ate"] < 0.3
    from pipeline.value_plan import effects_from_model  # noqa: PLC0415

    raw = effects_from_model(result.model, X)
    kept = raw - centre["predicted_mean"].to_numpy() + centre["ate"].to_numpy()
    flat = centre["keep_spread"] == 0
    np.testing.assert_allclose(eff.loc[:, ~flat].to_numpy(), kept.loc[:, ~flat].to_numpy())
    np.testing.assert_allclose(eff.loc[:, flat].to_numpy(), np.broadcast_to(
        centre.loc[flat, "ate"].to_numpy(), (4, int(flat.sum()))))  # fmt: skip
    # A night not after the last one starts a new run with an empty log.
    assert learner.night(D0) == 0 and learner.logs == [] and learner.model is None

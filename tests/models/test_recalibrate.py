"""Tests of the recalibration step: levels move to the latest month, trees and ranking stay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.config import config_from_dict
from models.evaluation import auc
from models.gate import evaluate_gate
from models.monitoring import calibration_in_the_large
from models.propensity_model import PropensityModel
from models.recalibrate import RecalibrationRefused, recalibrate
from models.synthetic import make_training_set
from models.training import train

CONFIG = config_from_dict({"lightgbm": {"num_threads": 1}})


@pytest.fixture(scope="module")
def trained():
    data = make_training_set(n_accounts=3000, n_months=8, seed=11)
    return train(data.frame, CONFIG, data.spec)


def _drifted_month(result, drop: float, seed: int = 0):
    """The last test month with a share ``drop`` of its payers turned into non-payers."""
    test = result.split.test
    month = test.loc[test["as_of_date"] == test["as_of_date"].max()].copy()
    rng = np.random.default_rng(seed)
    flip = (month["paid_any"].to_numpy() == 1) & (rng.random(len(month)) < drop)
    month.loc[flip, "paid_any"] = 0
    month.loc[flip, "coverage"] = 0.0
    return month


def test_recalibration_matches_the_month_and_keeps_the_trees(trained):
    month = _drifted_month(trained, drop=0.4)
    rec = recalibrate(trained.model, month, min_rows=50, max_shift=1.0, z=0.0)
    before = rec.before.set_index("head")
    after = rec.after.set_index("head")
    # The book pays less than the model expects; afterwards the level matches it.
    assert before.at["willingness", "over_prediction"] > 0.04
    for head in ("willingness", "ability"):
        assert abs(after.at[head, "over_prediction"]) < 1e-6
    assert rec.shifts["willingness"] < 0
    # By default the level only moves as far as the month shows beyond noise.
    cautious = recalibrate(trained.model, month, min_rows=50, max_shift=1.0)
    assert rec.shifts["willingness"] < cautious.shifts["willingness"] < 0
    # Same boosters, so the same ranking: AUC identical on any rows.
    for head in ("willingness", "ability"):
        assert (
            rec.model.boosters[head].model_to_string()
            == trained.model.boosters[head].model_to_string()
        )
    y = month["paid_any"].to_numpy()
    old = trained.model.predict_proba(month)["p_willingness"]
    new = rec.model.predict_proba(month)["p_willingness"]
    assert auc(y, new) == auc(y, old)
    assert rec.model.metadata["recalibrations"][-1]["month"] == rec.month
    assert "Recalibration on the snapshots of" in rec.summary()


def test_shifts_add_up_and_survive_save_and_load(trained, tmp_path):
    month = _drifted_month(trained, drop=0.1)
    first = recalibrate(trained.model, month, min_rows=50, z=0.0)
    second = recalibrate(first.model, month, min_rows=50, z=0.0)
    # Already at the month's level: a second pass moves nothing.
    assert all(abs(v) < 1e-6 for v in second.shifts.values())
    loaded = PropensityModel.load(first.model.save(tmp_path / "m"))
    for name in ("willingness", "ability", "share"):
        assert loaded.calibrators[name].shift == pytest.approx(
            trained.model.calibrators[name].shift + first.shifts[name]
        )
    np.testing.assert_allclose(
        loaded.predict_proba(month).to_numpy(), first.model.predict_proba(month).to_numpy()
    )


def test_refused_on_too_few_rows_too_large_a_shift_or_several_months(trained):
    month = _drifted_month(trained, drop=0.1)
    with pytest.raises(RecalibrationRefused, match="fewer than"):
        recalibrate(trained.model, month.head(30), min_rows=50)
    with pytest.raises(RecalibrationRefused, match="retrain and review"):
        recalibrate(trained.model, _drifted_month(trained, drop=0.8), min_rows=50)
    with pytest.raises(RecalibrationRefused, match="exactly one month"):
        recalibrate(trained.model, trained.split.test, min_rows=50)


def test_the_month_is_predicted_once_per_model_and_the_gate_reuses_it(trained, monkeypatch):
    month = _drifted_month(trained, drop=0.2)
    calls = []
    predict = PropensityModel.predict_proba

    def counted(self, frame):
        calls.append(self)
        return predict(self, frame)

    monkeypatch.setattr(PropensityModel, "predict_proba", counted)
    rec = recalibrate(trained.model, month, min_rows=50, z=0.0)
    assert [id(m) for m in calls] == [id(trained.model), id(rec.model)]  # once each
    # Its calibration tables are those of predicting again.
    pd.testing.assert_frame_equal(rec.before, calibration_in_the_large(trained.model, month))
    pd.testing.assert_frame_equal(rec.after, calibration_in_the_large(rec.model, month))
    calls.clear()
    gate = evaluate_gate(
        rec.model,
        trained.model,
        month,
        max_ece=0.05,
        challenger_probs=rec.probs_after,
        champion_probs=rec.probs_before,
    )
    assert calls == []
    assert gate.figures == evaluate_gate(rec.model, trained.model, month, max_ece=0.05).figures

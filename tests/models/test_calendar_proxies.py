"""No model feature tells the calendar: adversarial validation on a book whose payment rate drifts.

On the simulator's drift scenario (willingness falling month after month) run
as a closed cohort (every account opened in the three months before the
window, none during it: the book of the issue's independent portfolio), each
feature is asked alone to tell the snapshots of a late month from those of an
early month. A feature that counts time since the book opened does so almost
perfectly, whatever the debtors do: a model would learn the date from it and
its PSI would fire every night. The catalogue's calendar proxies must, and
the model's columns must not.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from features.catalogue import CALENDAR_PROXIES, FEATURE_COLUMNS, MODEL_COLUMNS
from features.training_set import build_training_set
from models.stability import time_separability
from pipeline.simulator import drift_parameters, simulate_portfolio

EARLY, LATE = pd.Timestamp("2024-03-31"), pd.Timestamp("2024-12-31")
#: Above this, a feature alone tells the late month from the early one like a clock.
CLOCK_LIKE = 0.9


@pytest.fixture(scope="module")
def separability():
    cohort = replace(drift_parameters(), opened_during_share=0.0, opened_before_months=3)
    portfolio = simulate_portfolio(2500, 14, seed=17, start="2024-01-01", params=cohort)
    frames = [build_training_set(portfolio.tables, d, d, horizon_days=30) for d in (EARLY, LATE)]
    snapshots = pd.concat(frames, ignore_index=True)
    assert snapshots["as_of_date"].nunique() == 2
    return time_separability(snapshots, FEATURE_COLUMNS, [EARLY], [LATE]).set_index("feature")


def test_the_calendar_proxies_tell_the_months_apart(separability):
    # The check can fail: the features left out of the model are caught by it.
    for name in CALENDAR_PROXIES:
        assert separability.at[name, "separability"] > CLOCK_LIKE, name


def test_no_model_feature_tells_the_months_apart(separability):
    model = separability.loc[separability.index.isin(MODEL_COLUMNS)]
    clock_like = model.loc[model["separability"] > CLOCK_LIKE]
    assert clock_like.empty, f"model features that count time: {clock_like.to_dict('index')}"

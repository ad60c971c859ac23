"""Tests of the stability measures (PSI, its flags and tables) on tiny examples worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models import stability as st


def test_psi_of_identical_distributions_is_zero():
    x = np.arange(100, dtype=float)
    assert st.psi(x, x) == 0.0
    assert st.psi(["a", "b", None], ["a", "b", None]) == 0.0


def test_psi_by_hand_with_training_quantile_bins():
    # Training median 2.5 cuts two bins: expected shares (0.5, 0.5), actual (0.75, 0.25).
    expected = 0.25 * math.log(0.75 / 0.5) + (-0.25) * math.log(0.25 / 0.5)
    assert st.psi([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 4.0], n_bins=2) == pytest.approx(expected)


def test_psi_counts_missing_values_in_their_own_bin():
    # Actual shares (0.25, 0.25, missing 0.5); expected (0.5, 0.5, missing 0 -> 1e-4).
    expected = 2 * (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    got = st.psi([1.0, 2.0, 3.0, 4.0], [1.0, 4.0, np.nan, np.nan], n_bins=2)
    assert got == pytest.approx(expected)


def test_psi_of_categories():
    expected = 0.25 * math.log(1.5) - 0.25 * math.log(0.5)
    cat = pd.Categorical(["a", "a", "b", "b"], categories=["a", "b", "c"])
    assert st.psi(cat, ["a", "a", "a", "b"]) == pytest.approx(expected)


def test_psi_flags_and_table():
    assert [st.psi_flag(v) for v in (0.0999, 0.10, 0.2499, 0.25)] == [
        "stable",
        "moderate",
        "moderate",
        "major",
    ]
    assert st.psi_flag(float("nan")) == "n/a"
    train = pd.DataFrame({"same": [1.0, 2, 3, 4], "moved": [1.0, 2, 3, 4]})
    test = pd.DataFrame({"same": [1.0, 2, 3, 4], "moved": [9.0, 9, 9, 9]})
    table = st.psi_table(train, test, ["same", "moved"], n_bins=2)
    assert table["variable"].tolist() == ["moved", "same"]
    assert table["flag"].tolist() == ["major", "stable"]


def test_the_measures_still_import_from_models_evaluation():
    """Code written before the split (``from models.evaluation import psi``) keeps working."""
    from models import evaluation, stability
    from models.evaluation import drift_table, psi

    assert psi is stability.psi and drift_table is stability.drift_table
    assert evaluation.psi([0.1, 0.2, 0.3] * 50, [0.1, 0.2, 0.3] * 50) == pytest.approx(0.0)
    with pytest.raises(AttributeError, match="no attribute 'not_a_measure'"):
        evaluation.not_a_measure  # noqa: B018

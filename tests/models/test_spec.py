"""Tests of the feature spec: validation, subsets, JSON round trip, the catalogue."""

from __future__ import annotations

import json

import pytest

from models.spec import FeatureSpec, fallback_reason_text, feature_code_version

SPEC = FeatureSpec(
    columns=("dpd", "product", "income"),
    categorical={"product": ("bnpl", "mortgage")},
    monotone_willingness={"dpd": -1},
    monotone_ability={"income": 1},
    descriptions={"dpd": "days past due"},
    code_version="v1",
)


def test_round_trip_through_json():
    assert FeatureSpec.from_dict(json.loads(json.dumps(SPEC.to_dict()))) == SPEC


def test_monotone_vectors_follow_column_order():
    assert SPEC.monotone_vector("willingness") == [-1, 0, 0]
    assert SPEC.monotone_vector("ability") == [0, 0, 1]
    assert SPEC.numeric == ("dpd", "income")
    with pytest.raises(ValueError, match="unknown head"):
        SPEC.monotone_vector("recovery")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": ("a", "a")}, "duplicates"),
        ({"columns": ("a",), "categorical": {"b": ("x",)}}, "not in FeatureSpec.columns"),
        ({"columns": ("a",), "monotone_willingness": {"b": 1}}, "not in columns"),
        ({"columns": ("a",), "monotone_ability": {"a": 2}}, "-1, 0 or \\+1"),
        (
            {"columns": ("a",), "categorical": {"a": ("x",)}, "monotone_willingness": {"a": 1}},
            "cannot constrain categorical",
        ),
    ],
)
def test_inconsistent_specs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureSpec(**kwargs)


def test_subset_keeps_order_and_drops_the_rest():
    sub = SPEC.subset(["income", "dpd"])
    assert sub.columns == ("dpd", "income")
    assert sub.categorical == {} and sub.monotone_ability == {"income": 1}
    assert sub.code_version == "v1"
    with pytest.raises(ValueError, match="not in the spec: \\['age'\\]"):
        SPEC.subset(["age"])


def test_fallback_reason_text_uses_the_description():
    render = fallback_reason_text(SPEC)
    assert render("dpd", 45.0) == "days past due: 45"
    assert render("income", float("nan")) == "income: missing"


def test_default_spec_comes_from_the_feature_catalogue():
    catalogue = pytest.importorskip("features.catalogue")
    spec = FeatureSpec.default()
    assert spec.columns == tuple(catalogue.MODEL_COLUMNS)
    # The calendar proxies are computed but never reach the model.
    left_out = [c for c in catalogue.FEATURE_COLUMNS if c not in spec.columns]
    assert (
        sorted(left_out)
        == sorted(catalogue.CALENDAR_PROXIES)
        == ["installments_due_count", "tenure_days"]
    )
    assert spec.drift_exempt == catalogue.DRIFT_EXEMPT
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert spec.code_version == feature_code_version()
    assert spec.code_version.startswith("features-")

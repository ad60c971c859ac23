"""Tests of the scoring model: predictions, reason codes, save and load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.config import config_from_dict
from models.propensity_model import OUTPUT_COLUMNS, PropensityModel, reason_codes
from models.synthetic import make_training_set
from models.training import train


@pytest.fixture(scope="module")
def trained():
    data = make_training_set(n_accounts=1500, n_months=8, seed=11)
    result = train(data.frame, config_from_dict({"lightgbm": {"num_threads": 1}}), data.spec)
    return result.model, result.split.test


def test_reason_codes_pick_the_largest_absolute_contributions():
    X = pd.DataFrame(
        {
            "dpd": [95.0, 10.0, 10.0],
            "product": pd.Categorical(["bnpl", None, "bnpl"], categories=["bnpl", "mortgage"]),
            "kept": [np.nan, 0.5, 0.5],
            "calls": [3.0, 3.0, 3.0],
        }
    )
    contrib = np.array(
        [
            [-1.2, 0.3, -0.4, 0.1],  # dpd, kept, product
            [0.0, 0.2, 0.0, 0.0],  # only one non-zero contribution
            [0.5, -0.5, 0.0, 0.1],  # a tie keeps column order
        ]
    )
    calls = []

    def render(feature, value):
        calls.append((feature, value))
        return f"{feature}={value}"

    codes = reason_codes(contrib, X, render, n_reasons=3).tolist()
    assert codes == [
        "dpd=95.0 (lowers); kept=nan (lowers); product=bnpl (raises)",
        "product=None (raises)",
        "dpd=10.0 (raises); product=bnpl (lowers); calls=3.0 (raises)",
    ]
    # One call per distinct (feature, value), not one per row.
    assert calls.count(("product", "bnpl")) == 1
    assert len(calls) == len({repr(c) for c in calls})


def test_predict_returns_probabilities_and_reasons_on_the_input_index(trained):
    model, test = trained
    frame = test.head(50)
    frame.index = np.arange(1000, 1050)[::-1]
    out = model.predict(frame)
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert out.index.equals(frame.index)
    assert out["p_willingness"].between(0, 1).all() and out["p_ability"].between(0, 1).all()
    n_codes = out["reason_codes_willingness"].str.count("; ") + 1
    assert n_codes.between(1, 3).all()
    assert out["reason_codes"].str.startswith("willingness: ").all()
    assert out["reason_codes"].str.contains(" | ability: ", regex=False).all()
    probs = model.predict_proba(frame)
    pd.testing.assert_frame_equal(out[["p_willingness", "p_ability", "expected_share"]], probs)


def test_first_reason_is_the_feature_with_the_largest_shap(trained):
    model, test = trained
    rows = test.head(5)
    contrib = model.contributions("willingness", rows)[:, :-1]
    out = model.predict(rows)
    texts = []
    for i in range(len(rows)):
        j = int(np.argmax(np.abs(contrib[i])))
        texts.append(model.spec.columns[j])
    model_plain = PropensityModel(
        model.boosters, model.calibrators, model.spec, reason_text=lambda f, v: f"<{f}>"
    )
    plain = model_plain.predict(rows)["reason_codes_willingness"]
    assert [s.split(" ")[0] for s in plain] == [f"<{t}>" for t in texts]
    assert out["p_willingness"].tolist() == plain.index.map(out["p_willingness"]).tolist()


def test_a_failing_reason_text_falls_back_to_the_description(trained):
    model, test = trained

    def broken(feature, value):
        raise RuntimeError("boom")

    odd = PropensityModel(model.boosters, model.calibrators, model.spec, reason_text=broken)
    out = odd.predict(test.head(3))
    first = out["reason_codes_willingness"].iloc[0].split("; ")[0]
    feature_descriptions = set(model.spec.descriptions.values())
    assert first.split(":")[0] in feature_descriptions


def test_save_then_load_predicts_exactly_the_same(trained, tmp_path):
    model, test = trained
    folder = model.save(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == [
        "ability.txt",
        "baselines.json",
        "calibrators.json",
        "metadata.json",
        "reference.json",
        "spec.json",
        "willingness.txt",
    ]
    assert (folder / "willingness.txt").read_text().startswith("tree")
    loaded = PropensityModel.load(folder)
    pd.testing.assert_frame_equal(loaded.predict(test), model.predict(test), check_exact=True)
    assert loaded.spec == model.spec
    assert loaded.reference == model.reference and loaded.reference
    for head in model.baselines:
        for name, baseline in model.baselines[head].items():
            assert np.array_equal(
                loaded.baselines[head][name].predict(test), baseline.predict(test)
            )


def test_string_categories_score_like_categoricals(trained):
    model, test = trained
    portable = model.signature_frame(test.head(30))
    assert portable["product"].dtype == object
    pd.testing.assert_frame_equal(model.predict(portable), model.predict(test.head(30)))


def test_missing_feature_column_is_named(trained):
    model, test = trained
    with pytest.raises(KeyError, match="dpd"):
        model.predict(test.drop(columns=["dpd"]))


def test_empty_frame_gives_empty_scores(trained):
    model, test = trained
    out = model.predict(test.head(0))
    assert len(out) == 0 and list(out.columns) == list(OUTPUT_COLUMNS)


def test_chunked_scoring_equals_one_pass(trained, monkeypatch):
    import models.propensity_model as pm

    model, test = trained
    whole = model.predict(test.head(40))
    monkeypatch.setattr(pm, "CHUNK_ROWS", 7)
    pd.testing.assert_frame_equal(model.predict(test.head(40), progress=True), whole)

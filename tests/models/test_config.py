"""Tests of the training configuration: defaults, overrides, refusals."""

from __future__ import annotations

import pydantic
import pytest

from models.config import TrainingConfig, config_from_dict, load_config


def test_packaged_yaml_matches_the_python_defaults():
    assert load_config() == TrainingConfig()


def test_documented_defaults_of_the_brief():
    cfg = load_config()
    assert cfg.lightgbm.deterministic is True
    assert cfg.lightgbm.num_threads == 2
    assert cfg.lightgbm.force_col_wise is True
    assert cfg.calibration.method == "isotonic"
    assert (cfg.splits.validation_months, cfg.splits.test_months) == (2, 2)
    assert cfg.gate.tolerance == 0.005
    assert cfg.gate.max_ece == 0.03


def test_a_partial_file_keeps_the_other_defaults(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("lightgbm:\n  num_leaves: 7\ncalibration:\n  method: platt\n")
    cfg = load_config(path)
    assert cfg.lightgbm.num_leaves == 7
    assert cfg.lightgbm.learning_rate == TrainingConfig().lightgbm.learning_rate
    assert cfg.calibration.method == "platt"


def test_an_unknown_key_is_refused_with_its_name(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("splits:\n  test_month: 1\n")
    with pytest.raises(ValueError, match=r"unknown key 'splits\.test_month'") as err:
        load_config(path)
    assert "test_months" in str(err.value)  # the known keys are listed
    assert str(path) in str(err.value)


def test_an_unknown_section_is_refused():
    with pytest.raises(ValueError, match="unknown key 'lightgbmm'"):
        config_from_dict({"lightgbmm": {}})


def test_a_bad_value_is_refused_with_its_key():
    with pytest.raises(ValueError, match=r"'calibration\.method'"):
        config_from_dict({"calibration": {"method": "sigmoid"}})
    with pytest.raises(ValueError, match=r"'lightgbm\.learning_rate'"):
        config_from_dict({"lightgbm": {"learning_rate": 0}})


def test_config_is_frozen():
    cfg = TrainingConfig()
    with pytest.raises(pydantic.ValidationError):
        cfg.lightgbm.num_leaves = 3


def test_booster_params_hold_the_reproducibility_settings():
    params = TrainingConfig().lightgbm.booster_params()
    assert params["objective"] == "binary"
    assert params["deterministic"] is True and params["seed"] == 42
    assert "n_estimators" not in params and "early_stopping_rounds" not in params


def test_flat_and_yaml_round_trip():
    cfg = config_from_dict({"baselines": {"scorecard_features": ["dpd", "arrears"]}})
    assert cfg.flat()["baselines.scorecard_features"] == ["dpd", "arrears"]
    import yaml

    assert config_from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


def test_overrides_replace_keys_nested_or_dotted():
    cfg = load_config(overrides={"lightgbm": {"num_leaves": 9}, "gate.max_ece": 0.05})
    assert cfg.lightgbm.num_leaves == 9 and cfg.gate.max_ece == 0.05
    assert cfg.lightgbm.learning_rate == TrainingConfig().lightgbm.learning_rate
    with pytest.raises(ValueError, match=r"unknown key 'gate\.max_eca'"):
        load_config(overrides={"gate.max_eca": 0.05})

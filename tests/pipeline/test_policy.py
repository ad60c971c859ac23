"""Tests of the policy file: loading, validation messages that name the key, versioning."""

from __future__ import annotations

import copy
from pathlib import Path

import pydantic
import pytest
import yaml

from features.vocab import SUPPRESSING_STATUSES
from pipeline import policy as policy_module
from pipeline.policy import Overrides, PolicyError, load_policy, parse_policy, policy_version

# Read beside the module: the tests/pipeline folder may shadow the package name.
DEFAULT_FILE = Path(policy_module.__file__).with_name("default_policy.yaml")


def _default_dict() -> dict:
    text = DEFAULT_FILE.read_text("utf-8")
    return yaml.safe_load(text)


def _refused(data: dict) -> str:
    with pytest.raises(PolicyError) as info:
        parse_policy(data, "test.yaml")
    return str(info.value)


def test_default_policy_loads_and_covers_the_square():
    policy = load_policy()
    assert policy.jurisdiction == "us_reg_f"
    assert [t.name for t in policy.tiers] == [
        "self_cure",
        "willing_unable",
        "able_unwilling",
        "unable_unwilling",
    ]
    assert policy.control_share == 0.05
    assert policy.reject_limit == 0.01
    assert policy.dpd_stages.late.offers["able_unwilling"] == "legal_review"
    assert policy.profile.max_calls_7d == 7


def test_policy_is_frozen():
    policy = load_policy()
    with pytest.raises(pydantic.ValidationError):
        policy.control_share = 0.5


def test_overrides_cover_every_suppressing_status():
    assert tuple(Overrides.model_fields) == (*SUPPRESSING_STATUSES, "hardship")


def test_unknown_top_level_key_is_refused_by_name():
    data = _default_dict()
    data["contact_hourz"] = {"start": "09:00", "end": "20:00"}
    message = _refused(data)
    assert "contact_hourz" in message and "unknown key" in message


def test_unknown_key_inside_a_tier_is_refused_with_its_path():
    data = _default_dict()
    data["tiers"][1]["colour"] = "red"
    assert "tiers[1].colour: unknown key" in _refused(data)


def test_overlapping_tiers_are_refused():
    data = _default_dict()
    data["tiers"][0]["p_willingness"] = [0.5, 1.0]  # self_cure now overlaps able_unwilling
    message = _refused(data)
    assert "tiers[0] (self_cure) and tiers[2] (able_unwilling) overlap" in message
    assert "p_willingness [0.5, 0.6) x p_ability [0.5, 1)" in message


def test_tiers_leaving_a_gap_are_refused():
    data = _default_dict()
    data["tiers"][0]["p_willingness"] = [0.7, 1.0]
    message = _refused(data)
    assert "gap" in message and "p_willingness [0.6, 0.7) x p_ability [0.5, 1)" in message


def test_tier_without_an_offer_is_refused():
    data = _default_dict()
    del data["tiers"][1]["offer"]
    assert "tiers[1].offer: required key is missing" in _refused(data)


def test_tier_with_offer_none_is_refused():
    data = _default_dict()
    data["tiers"][0]["offer"] = "none"
    assert "tiers[0].offer" in _refused(data)


def test_tier_offer_outside_the_vocabulary_is_refused():
    data = _default_dict()
    data["tiers"][0]["offer"] = "haircut"
    assert "tiers[0].offer" in _refused(data)


def test_tier_cap_above_the_profile_is_refused_by_name():
    data = _default_dict()
    data["tiers"][2]["max_calls_7d"] = 8
    message = _refused(data)
    assert "tiers[2] (able_unwilling).max_calls_7d = 8" in message
    assert "legal cap of 7" in message and "12 CFR 1006.14" in message


def test_the_same_cap_is_lawful_under_cn_2025():
    data = _default_dict()
    data["jurisdiction"] = "cn_2025"
    data["tiers"][2]["max_calls_7d"] = 8
    assert parse_policy(data).tiers[2].max_calls_7d == 8


def test_intensity_cap_above_the_profile_is_refused_by_name():
    data = _default_dict()
    data["intensity_caps"]["high"]["max_calls_7d"] = 9
    assert "intensity_caps.high.max_calls_7d = 9" in _refused(data)


def test_contact_hours_wider_than_the_profile_are_refused():
    data = _default_dict()
    data["contact_hours"]["end"] = "21:30"
    message = _refused(data)
    assert "contact_hours 08:00-21:30" in message and "08:00-21:00" in message


def test_contact_hours_to_22_are_lawful_under_cn_2025_only():
    data = _default_dict()
    data["contact_hours"]["end"] = "22:00"
    _refused(data)
    data["jurisdiction"] = "cn_2025"
    assert parse_policy(data).contact_hours.end == "22:00"


def test_unknown_jurisdiction_is_refused():
    data = _default_dict()
    data["jurisdiction"] = "eu_ccd"
    message = _refused(data)
    assert message.startswith("invalid policy test.yaml: jurisdiction:")
    assert "us_reg_f" in message


def test_stage_offer_for_an_unknown_tier_is_refused():
    data = _default_dict()
    data["dpd_stages"]["late"]["offers"]["ghost"] = "legal_review"
    assert "dpd_stages.late.offers.ghost" in _refused(data)


def test_dpd_stages_must_be_contiguous():
    data = _default_dict()
    data["dpd_stages"]["mid"]["dpd"] = [30, 91]
    assert "mid.dpd" in _refused(data)


def test_hardship_override_must_be_forbearance():
    data = _default_dict()
    data["overrides"]["hardship"]["offer"] = "settlement"
    message = _refused(data)
    assert "overrides.hardship.offer: settlement is not a forbearance offer" in message
    assert "installment_plan" in message and "Input should be" not in message


# --- policies that could put an account outside its profile are refused -----------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["overrides"]["hardship"].update(max_intensity="high"),
            "overrides.hardship.max_intensity: high is above the most a debtor in hardship",
        ),
        (
            lambda d: d.update(control_offer="legal_review"),
            "control_offer = legal_review: a random draw must never",
        ),
        (
            lambda d: d["overrides"].update(bankruptcy={"offer": "settlement"}),
            "overrides.bankruptcy.offer = settlement: no offer may be made to a bankruptcy",
        ),
        (
            lambda d: d["overrides"].update(do_not_contact={"offer": "legal_review"}),
            "overrides.do_not_contact.offer = legal_review",
        ),
        (
            lambda d: d.update(low_ability_threshold=0),
            "low_ability_threshold = 0 is below the uk_conc floor of 0.3",
        ),
    ],
)
def test_policies_that_loosen_a_profile_are_refused_with_the_rule(change, expected):
    data = _default_dict()
    change(data)
    assert expected in _refused(data)


def test_uk_conc_has_a_numeric_call_cap():
    data = _default_dict()
    data["jurisdiction"] = "uk_conc"
    assert parse_policy(data).tiers[2].max_calls_7d == 6
    data["intensity_caps"]["high"]["max_calls_7d"] = 500
    message = _refused(data)
    assert "intensity_caps.high.max_calls_7d = 500 is above the legal cap of 7" in message
    assert "CONC 7.9" in message


def test_per_jurisdiction_settings_may_only_tighten():
    data = _default_dict()
    data["jurisdictions"] = {
        "uk_conc": {"max_calls_7d": 3, "low_ability_threshold": 0.4},
        "cn_2025": {"contact_hours": {"start": "09:00", "end": "20:00"}},
    }
    policy = parse_policy(data)
    assert policy.hours_for("cn_2025") == ("09:00", "20:00")
    assert policy.hours_for("us_reg_f") == ("08:00", "21:00")
    assert policy.threshold_for("uk_conc") == 0.4
    data["jurisdictions"]["uk_conc"]["max_calls_7d"] = 8
    assert "jurisdictions.uk_conc.max_calls_7d = 8 is above the legal cap of 7" in _refused(data)
    data["jurisdictions"]["uk_conc"] = {"low_ability_threshold": 0.1}
    assert "jurisdictions.uk_conc.low_ability_threshold = 0.1 is below" in _refused(data)
    data["jurisdictions"] = {"us_reg_f": {"contact_hours": {"start": "07:00", "end": "20:00"}}}
    assert "jurisdictions.us_reg_f.contact_hours 07:00-20:00 is wider" in _refused(data)


def test_intensity_none_tier_must_have_zero_caps():
    data = _default_dict()
    data["tiers"][0]["contact_intensity"] = "none"
    assert "tiers[0]" in _refused(data) and "max_calls_7d" in _refused(data)


def test_control_share_above_half_is_refused():
    data = _default_dict()
    data["control_share"] = 0.8
    assert "control_share" in _refused(data)


def test_load_policy_reads_a_file_and_reports_bad_yaml(tmp_path: Path):
    good = tmp_path / "policy.yaml"
    data = _default_dict()
    data["version"] = "team-7"
    good.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert load_policy(good).version == "team-7"

    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers: [\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.yaml")
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="mapping"):
        load_policy(listed)


def test_policy_version_is_a_content_hash(tmp_path: Path):
    path = tmp_path / "policy.yaml"
    text = DEFAULT_FILE.read_text("utf-8")
    path.write_text(text, encoding="utf-8")
    first = policy_version(path)
    assert len(first) == 12 and all(c in "0123456789abcdef" for c in first)
    assert first == policy_version(None)  # same bytes, same version
    path.write_text(text + "\n# a comment changes the version\n", encoding="utf-8")
    assert policy_version(path) != first


def test_policy_dict_is_not_mutated_by_validation():
    data = _default_dict()
    before = copy.deepcopy(data)
    parse_policy(data)
    assert data == before


def test_policy_from_bytes_is_the_file_policy_and_the_hash_of_those_bytes(tmp_path):
    from pipeline.policy import load_policy_and_version, policy_from_bytes, read_policy_bytes

    raw, source = read_policy_bytes(None)
    policy, version = policy_from_bytes(raw, source)
    assert (policy, version) == load_policy_and_version(None)
    edited = raw + b"\n# edited after the read\n"
    assert policy_from_bytes(edited, source)[1] != version  # the version follows the bytes

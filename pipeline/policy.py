"""The collections policy: a flat YAML file read once into frozen pydantic models.

Risk teams edit the YAML (the packaged default is ``pipeline/default_policy.yaml``;
``docs/policy.md`` explains every key). :func:`load_policy` validates it and
refuses, with a :class:`PolicyError` that names the key, anything unknown,
incomplete or unlawful: unknown keys, tiers that overlap or leave a gap in
the willingness x ability square, a tier without an offer, a cap or contact
hours beyond the jurisdiction profile, an unknown jurisdiction.
:func:`policy_version` is the content hash written into every output row.
The policy's sections (tiers, stages, overrides, ...) are the models of
:mod:`pipeline.policy_parts`, each checking its own keys; here are the rules
that join them.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import Field, ValidationError, model_validator

from features.vocab import CONTACT_INTENSITIES, DEFAULT_MATERIALITY, SUPPRESSING_STATUSES
from pipeline.approach import Approaches
from pipeline.compliance import (
    HARDSHIP_FORBIDDEN_OFFERS,
    PROFILES,
    ComplianceProfile,
    hhmm_to_minutes,
)
from pipeline.policy_parts import (
    Caps,
    Channel,
    ContactHours,
    DpdStages,
    FrozenModel,
    Intensity,
    Jurisdiction,
    JurisdictionRules,
    Offer,
    OfferTerms,
    Overrides,
    Probability,
    PromiseRules,
    Tier,
)
from pipeline.value_plan import ValueAllocation

DEFAULT_POLICY_FILE = "default_policy.yaml"

#: The DPD stages, in escalation order.
STAGES: tuple[str, ...] = ("early", "mid", "late")


#: Statuses under which no offer may be recorded at all (estate, automatic stay).
NO_OFFER_STATUSES: tuple[str, ...] = ("deceased", "bankruptcy")


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the key and the fix."""


class Policy(FrozenModel):
    """A validated collections policy (see ``docs/policy.md`` for each key)."""

    version: str = Field(min_length=1)
    jurisdiction: Jurisdiction
    horizon_days: Annotated[int, Field(ge=1, le=365)] = 30
    reject_limit: Probability = 0.01
    max_days_after_export: Annotated[int, Field(ge=0)] = 3
    materiality: Annotated[float, Field(ge=0.0)] = DEFAULT_MATERIALITY
    control_share: Annotated[float, Field(ge=0.0, le=0.5)] = 0.05
    control_seed: int = 0
    control_offer: Offer = "reminder"
    control_channels: tuple[Channel, ...] = ("sms", "email", "call")
    low_ability_threshold: Probability = 0.3
    fallback_installment_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    contact_hours: ContactHours
    intensity_caps: dict[Intensity, Caps]
    tiers: tuple[Tier, ...] = Field(min_length=1)
    dpd_stages: DpdStages
    overrides: Overrides = Overrides()
    promises: PromiseRules = PromiseRules()
    offer_terms: OfferTerms = OfferTerms()
    jurisdictions: dict[Jurisdiction, JurisdictionRules] = Field(default_factory=dict)
    approaches: Approaches | None = None
    value_allocation: ValueAllocation | None = None

    @property
    def profile(self) -> ComplianceProfile:
        """Return the jurisdiction profile the policy names."""
        return PROFILES[self.jurisdiction]

    @property
    def hours(self) -> tuple[str, str]:
        """Return the policy's local contact hours as ``(start, end)``."""
        return self.contact_hours.start, self.contact_hours.end

    def hours_for(self, jurisdiction: str) -> tuple[str, str]:
        """Return the contact hours for one jurisdiction's accounts (its own, else the policy's)."""
        own = self.jurisdictions.get(jurisdiction)
        if own is not None and own.contact_hours is not None:
            return own.contact_hours.start, own.contact_hours.end
        return self.hours

    def threshold_for(self, jurisdiction: str) -> float:
        """Return the low-ability threshold for one jurisdiction, never below its floor."""
        own = self.jurisdictions.get(jurisdiction)
        value = self.low_ability_threshold
        if own is not None and own.low_ability_threshold is not None:
            value = own.low_ability_threshold
        return max(value, PROFILES[jurisdiction].min_low_ability_threshold)

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        _check_intensity_caps(self)
        _check_tiling(self.tiers)
        _check_stage_offers(self)
        _check_profile(self)
        _check_offers(self)
        _check_jurisdictions(self)
        return self


def _check_intensity_caps(policy: Policy) -> None:
    missing = [i for i in CONTACT_INTENSITIES if i not in policy.intensity_caps]
    if missing:
        raise ValueError(f"intensity_caps: give caps for every intensity, missing {missing}")
    none = policy.intensity_caps["none"]
    if none.max_calls_7d or none.max_sms_7d:
        raise ValueError("intensity_caps.none: caps must be 0")
    for lower, upper in zip(CONTACT_INTENSITIES, CONTACT_INTENSITIES[1:], strict=False):
        a, b = policy.intensity_caps[lower], policy.intensity_caps[upper]
        if a.max_calls_7d > b.max_calls_7d or a.max_sms_7d > b.max_sms_7d:
            raise ValueError(f"intensity_caps.{upper}: caps must not be below those of {lower}")


def _check_tiling(tiers: tuple[Tier, ...]) -> None:
    """Refuse tiers that overlap or leave a gap in [0, 1] x [0, 1]."""
    names = [t.name for t in tiers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"tiers: names must be unique, repeated {dupes}")
    # Every cell of the grid cut by all the tiers' edges must lie in exactly one tier.
    w_edges = sorted({0.0, 1.0, *(e for t in tiers for e in t.p_willingness)})
    a_edges = sorted({0.0, 1.0, *(e for t in tiers for e in t.p_ability)})
    for w_lo, w_hi in zip(w_edges, w_edges[1:], strict=False):
        for a_lo, a_hi in zip(a_edges, a_edges[1:], strict=False):
            w, a = (w_lo + w_hi) / 2, (a_lo + a_hi) / 2
            inside = [
                i
                for i, t in enumerate(tiers)
                if t.p_willingness[0] <= w < t.p_willingness[1]
                and t.p_ability[0] <= a < t.p_ability[1]
            ]
            cell = f"p_willingness [{w_lo:g}, {w_hi:g}) x p_ability [{a_lo:g}, {a_hi:g})"
            if len(inside) > 1:
                pair = " and ".join(f"tiers[{i}] ({tiers[i].name})" for i in inside[:2])
                raise ValueError(
                    f"tiers: p_willingness/p_ability ranges of {pair} overlap on {cell}"
                )
            if not inside:
                raise ValueError(
                    f"tiers: p_willingness/p_ability ranges leave a gap, no tier covers {cell}"
                )


def _check_stage_offers(policy: Policy) -> None:
    names = {t.name for t in policy.tiers}
    for stage in STAGES:
        for tier_name in getattr(policy.dpd_stages, stage).offers:
            if tier_name not in names:
                raise ValueError(
                    f"dpd_stages.{stage}.offers.{tier_name}: no tier is named {tier_name!r}"
                )


def _check_profile(policy: Policy) -> None:
    """Refuse anything the jurisdiction profile does not allow."""
    profile = policy.profile
    where = f"the {profile.name} profile ({profile.reference})"
    capped: list[tuple[str, int]] = []
    for i, t in enumerate(policy.tiers):
        capped.append((f"tiers[{i}] ({t.name}).max_calls_7d", t.max_calls_7d))
    for name, caps in policy.intensity_caps.items():
        capped.append((f"intensity_caps.{name}.max_calls_7d", caps.max_calls_7d))
    legal = profile.planning_cap_7d
    if legal is not None:
        for key, value in capped:
            if value > legal:
                raise ValueError(
                    f"{key} = {value} is above the legal cap of {legal} calls in "
                    f"7 days of {where}; lower it"
                )
    if profile.max_sms_7d is not None:
        sms = [
            (f"tiers[{i}] ({t.name}).max_sms_7d", t.max_sms_7d) for i, t in enumerate(policy.tiers)
        ]
        sms += [
            (f"intensity_caps.{n}.max_sms_7d", c.max_sms_7d)
            for n, c in policy.intensity_caps.items()
        ]
        for key, value in sms:
            if value > profile.max_sms_7d:
                raise ValueError(
                    f"{key} = {value} is above the legal cap of {profile.max_sms_7d} texts in "
                    f"7 days of {where}; lower it"
                )
    _check_hours("contact_hours", policy.contact_hours, profile)


def _check_offers(policy: Policy) -> None:
    """Refuse offers that a status or a random draw must never get."""
    if policy.control_offer in HARDSHIP_FORBIDDEN_OFFERS:
        raise ValueError(
            f"control_offer = {policy.control_offer}: a random draw must never put an account "
            "into settlement pressure or legal review; use reminder or a forbearance offer"
        )
    for status in SUPPRESSING_STATUSES:
        offer = getattr(policy.overrides, status).offer
        if status in NO_OFFER_STATUSES and offer != "none":
            raise ValueError(
                f"overrides.{status}.offer = {offer}: no offer may be made to a {status} "
                "account (estate or automatic stay); use none"
            )
        if offer in HARDSHIP_FORBIDDEN_OFFERS:
            raise ValueError(
                f"overrides.{status}.offer = {offer}: a suppressed account gets no settlement "
                "or legal review; use none, reminder or a forbearance offer"
            )


def _check_threshold(key: str, value: float, profile: ComplianceProfile) -> None:
    if value < profile.min_low_ability_threshold:
        raise ValueError(
            f"{key} = {value:g} is below the {profile.name} floor of "
            f"{profile.min_low_ability_threshold:g}: debtors below it must count as in "
            f"difficulty ({profile.reference}); raise it"
        )


def _check_jurisdictions(policy: Policy) -> None:
    """Refuse per-jurisdiction settings or thresholds that loosen a profile."""
    for profile in PROFILES.values():
        if profile.forbearance_for_low_ability:
            _check_threshold("low_ability_threshold", policy.low_ability_threshold, profile)
    for name, rules in policy.jurisdictions.items():
        profile = PROFILES[name]
        where = f"the {name} profile ({profile.reference})"
        legal = profile.planning_cap_7d
        if legal is not None and rules.max_calls_7d is not None and rules.max_calls_7d > legal:
            raise ValueError(
                f"jurisdictions.{name}.max_calls_7d = {rules.max_calls_7d} is above the legal "
                f"cap of {legal} calls in 7 days of {where}; lower it"
            )
        if rules.contact_hours is not None:
            _check_hours(f"jurisdictions.{name}.contact_hours", rules.contact_hours, profile)
        if rules.low_ability_threshold is not None and profile.forbearance_for_low_ability:
            _check_threshold(
                f"jurisdictions.{name}.low_ability_threshold", rules.low_ability_threshold, profile
            )


def _check_hours(key: str, hours: ContactHours, profile: ComplianceProfile) -> None:
    lo, hi = profile.window_minutes
    if hhmm_to_minutes(hours.start) < lo or hhmm_to_minutes(hours.end) > hi:
        raise ValueError(
            f"{key} {hours.start}-{hours.end} is wider than the lawful "
            f"{profile.contact_start}-{profile.contact_end} local time of the {profile.name} "
            f"profile ({profile.reference}); narrow it"
        )


def _format_errors(error: ValidationError) -> str:
    parts = []
    for err in error.errors():
        key = ""
        for item in err["loc"]:
            key += f"[{item}]" if isinstance(item, int) else (f".{item}" if key else str(item))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling; docs/policy.md lists the keys)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        parts.append(f"{key}: {msg}" if key else msg)
    return "; ".join(parts)


def read_policy_bytes(path: Path | None) -> tuple[bytes, str]:
    """Return a policy file's bytes (None: the packaged default) and where they came from."""
    if path is None:
        resource = resources.files("pipeline").joinpath(DEFAULT_POLICY_FILE)
        return resource.read_bytes(), f"packaged {DEFAULT_POLICY_FILE}"
    try:
        return Path(path).read_bytes(), str(path)
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from exc


def parse_policy(data: object, source: str = "policy") -> Policy:
    """Validate a mapping (a parsed policy YAML) into a :class:`Policy`.

    Parameters
    ----------
    data : object
        The parsed YAML document; must be a mapping.
    source : str
        Where it came from, for messages.

    Returns
    -------
    Policy
        The validated policy.

    Raises
    ------
    PolicyError
        If anything is wrong; the message names each offending key.
    """
    if not isinstance(data, dict):
        raise PolicyError(f"invalid policy {source}: the file must be a YAML mapping of keys")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"invalid policy {source}: {_format_errors(exc)}") from None


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a policy YAML file.

    Parameters
    ----------
    path : pathlib.Path, optional
        The policy file; None reads the packaged ``pipeline/default_policy.yaml``.

    Returns
    -------
    Policy
        The validated, frozen policy.

    Raises
    ------
    PolicyError
        If the file cannot be read or parsed, or breaks a rule; the message
        names the key (e.g. ``tiers[1] (firm).max_calls_7d = 9 is above ...``).

    Examples
    --------
    >>> load_policy().jurisdiction in {"us_reg_f", "cn_2025", "uk_conc"}
    True
    """
    return load_policy_and_version(path)[0]


def load_policy_and_version(path: Path | None = None) -> tuple[Policy, str]:
    """Return the policy and its version from one read of the file.

    A scoring run uses this, so the version written into every row is the
    hash of exactly the bytes that were applied, even if the file is edited
    during the run.
    """
    return policy_from_bytes(*read_policy_bytes(path))


def policy_from_bytes(raw: bytes, source: str = "policy") -> tuple[Policy, str]:
    """Return the policy in ``raw`` (a policy YAML's bytes) and its version, the hash of ``raw``.

    For a caller that also passes the bytes on (the sharded score sends them
    to its workers): the policy applied, logged and sent are one read.
    """
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise PolicyError(f"invalid policy {source}: not valid YAML ({exc})") from None
    return parse_policy(data, source), _version_of(raw)


def _version_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:12]


def policy_version(policy_path: Path | None = None) -> str:
    """Return the policy's content hash: the first 12 hex digits of sha256 of the file.

    Parameters
    ----------
    policy_path : pathlib.Path, optional
        The policy file; None hashes the packaged default.

    Returns
    -------
    str
        12 lowercase hex digits; any change to the file's bytes changes it.

    Examples
    --------
    >>> len(policy_version())
    12
    """
    return _version_of(read_policy_bytes(policy_path)[0])


__all__ = [
    "STAGES",
    "Policy",
    "PolicyError",
    "Tier",
    "load_policy",
    "parse_policy",
    "policy_version",
]


def policy_source(policy_path: Path | None = None) -> tuple[str, str]:
    """Return the policy file's text and version (its content hash) from one read.

    A scoring run logs the text to MLflow next to the version in its rows.
    """
    raw, _ = read_policy_bytes(policy_path)
    return raw.decode("utf-8"), _version_of(raw)

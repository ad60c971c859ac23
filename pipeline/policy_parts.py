"""The sections of a collections policy, as frozen pydantic models that refuse unknown keys.

:class:`pipeline.policy.Policy` is made of these; each checks its own keys
(a clock hour, a range, a forbearance offer), the policy checks the rules
that join them. ``docs/policy.md`` explains every key.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.vocab import CONTACT_CHANNELS, CONTACT_INTENSITIES, OUTPUT_OFFERS
from pipeline.compliance import FORBEARANCE_OFFERS, PROFILES, hhmm_to_minutes

# Closed vocabularies come from features.vocab and the profiles, never retyped here.
Jurisdiction = Literal[tuple(PROFILES)]  # type: ignore[valid-type]
Intensity = Literal[CONTACT_INTENSITIES]  # type: ignore[valid-type]
Offer = Literal[OUTPUT_OFFERS]  # type: ignore[valid-type]
Channel = Literal[CONTACT_CHANNELS]  # type: ignore[valid-type]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Cap = Annotated[int, Field(ge=0)]


class FrozenModel(BaseModel):
    """Base of every policy section's model (here, approach, value_plan): no unknown key, no change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactHours(FrozenModel):
    """Local clock hours in which contact is allowed, both ends included."""

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        hhmm_to_minutes(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ContactHours:
        if hhmm_to_minutes(self.start) >= hhmm_to_minutes(self.end):
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self


class Caps(FrozenModel):
    """Contact caps over the next 7 days."""

    max_calls_7d: Cap
    max_sms_7d: Cap


class Tier(FrozenModel):
    """A rectangle of the willingness x ability square and what it gets.

    Ranges are half-open ``[lo, hi)``, except that ``hi = 1.0`` includes 1.0.
    """

    name: str = Field(min_length=1)
    p_willingness: tuple[Probability, Probability]
    p_ability: tuple[Probability, Probability]
    contact_intensity: Intensity
    channels: tuple[Channel, ...]
    max_calls_7d: Cap
    max_sms_7d: Cap
    offer: Offer
    #: This tier's share in the control group (None: the policy's ``control_share``).
    control_share: Annotated[float, Field(ge=0.0, le=0.5)] | None = None

    @field_validator("p_willingness", "p_ability")
    @classmethod
    def _range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError(f"range [{value[0]}, {value[1]}) must have lo < hi")
        return value

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"channels {list(value)} repeat a channel")
        return value

    @field_validator("offer")
    @classmethod
    def _real_offer(cls, value: str) -> str:
        if value == "none":
            raise ValueError(
                "a tier must make an offer (at least reminder); 'none' is kept for suppressed accounts"
            )
        return value

    @model_validator(mode="after")
    def _none_means_none(self) -> Tier:
        if self.contact_intensity == "none" and (self.max_calls_7d or self.max_sms_7d):
            raise ValueError("contact_intensity none needs max_calls_7d and max_sms_7d of 0")
        return self


class DpdStage(FrozenModel):
    """A DPD stage: its range ``[lo, hi)`` (hi null = no upper end) and escalation."""

    dpd: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=1)] | None]
    intensity_step: Annotated[int, Field(ge=0, le=3)] = 0
    baseline_intensity: Intensity
    offers: dict[str, Offer] = Field(default_factory=dict)

    @field_validator("dpd")
    @classmethod
    def _range(cls, value: tuple[int, int | None]) -> tuple[int, int | None]:
        if value[1] is not None and not value[0] < value[1]:
            raise ValueError(f"range [{value[0]}, {value[1]}) must have lo < hi")
        return value


class DpdStages(FrozenModel):
    """The three DPD stages, contiguous from 0 days past due upwards."""

    early: DpdStage
    mid: DpdStage
    late: DpdStage

    @model_validator(mode="after")
    def _contiguous(self) -> DpdStages:
        if self.early.dpd[0] != 0:
            raise ValueError("early.dpd must start at 0")
        for a, b in (("early", "mid"), ("mid", "late")):
            hi, lo = getattr(self, a).dpd[1], getattr(self, b).dpd[0]
            if hi != lo:
                raise ValueError(f"{a}.dpd must end where {b}.dpd starts ({hi} != {lo})")
        if self.late.dpd[1] is not None:
            raise ValueError("late.dpd must be open-ended: [lo, null]")
        return self


class SuppressedOverride(FrozenModel):
    """What a suppressed account gets (its contact is always none)."""

    offer: Offer = "none"


class HardshipOverride(FrozenModel):
    """What an account in hardship gets on top of its tier."""

    offer: Offer = "installment_plan"
    max_intensity: Intensity = "low"

    @field_validator("offer")
    @classmethod
    def _forbearance(cls, value: str) -> str:
        if value not in FORBEARANCE_OFFERS:
            raise ValueError(
                f"{value} is not a forbearance offer: a debtor in hardship must be offered "
                f"{' or '.join(sorted(FORBEARANCE_OFFERS))} (every profile's hardship rule)"
            )
        return value

    @field_validator("max_intensity")
    @classmethod
    def _no_pressure(cls, value: str) -> str:
        if value not in HARDSHIP_INTENSITIES:
            raise ValueError(
                f"{value} is above the most a debtor in hardship may get: use "
                f"{', '.join(HARDSHIP_INTENSITIES)} (forbearance, not pressure; FCA CONC 7.3.4R)"
            )
        return value


#: Contact intensities a debtor in hardship may get at most.
HARDSHIP_INTENSITIES: tuple[str, ...] = ("none", "low", "medium")


class PromiseRules(FrozenModel):
    """How promises to pay shape the plan (the hold until the promised date is not optional)."""

    broken_intensity_step: Annotated[int, Field(ge=0, le=3)] = 1
    broken_lookback_days: Annotated[int, Field(ge=1, le=365)] = 60


class OfferTerms(FrozenModel):
    """Limits that keep plan offers ones a debtor can keep and that mean something."""

    max_installments: Annotated[int, Field(ge=2, le=120)] = 24
    min_installment: Annotated[float, Field(gt=0.0)] = 10.0
    max_staged_steps: Annotated[int, Field(ge=2, le=24)] = 6
    first_due_days: Annotated[int, Field(ge=1, le=60)] = 7


class JurisdictionRules(FrozenModel):
    """A policy's stricter settings for the accounts of one jurisdiction."""

    contact_hours: ContactHours | None = None
    max_calls_7d: Cap | None = None
    max_sms_7d: Cap | None = None
    low_ability_threshold: Probability | None = None


class Overrides(FrozenModel):
    """Overrides for special statuses."""

    deceased: SuppressedOverride = SuppressedOverride()
    bankruptcy: SuppressedOverride = SuppressedOverride()
    dispute_open: SuppressedOverride = SuppressedOverride()
    cease_communication: SuppressedOverride = SuppressedOverride()
    do_not_contact: SuppressedOverride = SuppressedOverride()
    hardship: HardshipOverride = HardshipOverride()

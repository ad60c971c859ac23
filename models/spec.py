"""The feature spec a model is trained on: columns, categories, monotone directions.

The spec is what makes training and scoring agree: the column order, the fixed
category lists that LightGBM maps to integer codes, the known directions of
effect (monotone constraints) and a version of the feature code. It is saved
with every model as JSON, so a reviewer can read exactly what the model sees.
"""

from __future__ import annotations

import hashlib
import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ReasonText = Callable[[str, Any], str]


@dataclass(frozen=True)
class FeatureSpec:
    """Columns, category lists and monotone directions of the model's features.

    Parameters
    ----------
    columns : tuple of str
        Feature columns in the fixed order the boosters see them.
    categorical : dict
        Categorical feature -> its fixed, ordered category list.
    monotone_willingness, monotone_ability : dict
        Feature -> +1 (never lowers the probability as it grows) or -1 (never
        raises it) for the willingness and the ability head. Features absent
        are unconstrained.
    descriptions : dict
        Feature -> one-line description (used in reason codes and the report).
    code_version : str
        A fingerprint of the feature code the columns were computed with.
    drift_exempt : dict
        Feature -> why its distribution moves by construction (it counts
        time, e.g. days in the current episode): its PSI is reported but
        raises no drift alarm and does not count against the gate's
        stability check.

    Examples
    --------
    >>> spec = FeatureSpec(columns=("dpd", "product"), categorical={"product": ("a", "b")},
    ...                    monotone_willingness={"dpd": -1})
    >>> spec.monotone_vector("willingness")
    [-1, 0]
    """

    columns: tuple[str, ...]
    categorical: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    monotone_willingness: Mapping[str, int] = field(default_factory=dict)
    monotone_ability: Mapping[str, int] = field(default_factory=dict)
    descriptions: Mapping[str, str] = field(default_factory=dict)
    code_version: str = "unversioned"
    drift_exempt: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(
            self, "categorical", {k: tuple(v) for k, v in dict(self.categorical).items()}
        )
        object.__setattr__(self, "monotone_willingness", dict(self.monotone_willingness))
        object.__setattr__(self, "monotone_ability", dict(self.monotone_ability))
        object.__setattr__(self, "descriptions", dict(self.descriptions))
        object.__setattr__(self, "drift_exempt", dict(self.drift_exempt))
        if len(set(self.columns)) != len(self.columns):
            dupes = sorted({c for c in self.columns if self.columns.count(c) > 1})
            raise ValueError(f"FeatureSpec.columns has duplicates: {dupes}")
        unknown = sorted(set(self.categorical) - set(self.columns))
        if unknown:
            raise ValueError(f"categorical features not in FeatureSpec.columns: {unknown}")
        for head, mono in (
            ("willingness", self.monotone_willingness),
            ("ability", self.monotone_ability),
        ):
            bad_cols = sorted(set(mono) - set(self.columns))
            if bad_cols:
                raise ValueError(f"monotone_{head} names features not in columns: {bad_cols}")
            bad_vals = {k: v for k, v in mono.items() if v not in (-1, 0, 1)}
            if bad_vals:
                raise ValueError(f"monotone_{head} directions must be -1, 0 or +1: {bad_vals}")
            on_cat = sorted(k for k, v in mono.items() if v and k in self.categorical)
            if on_cat:
                raise ValueError(f"monotone_{head} cannot constrain categorical features: {on_cat}")

    @property
    def numeric(self) -> tuple[str, ...]:
        """Return the non-categorical feature columns, in spec order."""
        return tuple(c for c in self.columns if c not in self.categorical)

    def monotone_vector(self, head: str) -> list[int]:
        """Return LightGBM's ``monotone_constraints`` list for a head, in column order."""
        mono = self._monotone(head)
        return [int(mono.get(c, 0)) for c in self.columns]

    def _monotone(self, head: str) -> Mapping[str, int]:
        if head == "willingness":
            return self.monotone_willingness
        if head == "ability":
            return self.monotone_ability
        raise ValueError(f"unknown head {head!r}: expected 'willingness' or 'ability'")

    def subset(self, columns: Sequence[str]) -> FeatureSpec:
        """Return the spec restricted to ``columns`` (kept in this spec's order).

        Examples
        --------
        >>> spec = FeatureSpec(columns=("a", "b", "c"), monotone_willingness={"b": -1})
        >>> sub = spec.subset(["c", "b"])
        >>> sub.columns, sub.monotone_willingness
        (('b', 'c'), {'b': -1})
        """
        wanted = set(columns)
        unknown = sorted(wanted - set(self.columns))
        if unknown:
            raise ValueError(f"features not in the spec: {unknown}")
        if not wanted:
            raise ValueError("a feature subset needs at least one column")
        return FeatureSpec(
            columns=tuple(c for c in self.columns if c in wanted),
            categorical={k: v for k, v in self.categorical.items() if k in wanted},
            monotone_willingness={
                k: v for k, v in self.monotone_willingness.items() if k in wanted
            },
            monotone_ability={k: v for k, v in self.monotone_ability.items() if k in wanted},
            descriptions={k: v for k, v in self.descriptions.items() if k in wanted},
            code_version=self.code_version,
            drift_exempt={k: v for k, v in self.drift_exempt.items() if k in wanted},
        )

    def describe(self, feature: str) -> str:
        """Return the one-line description of a feature (its name when undocumented)."""
        return self.descriptions.get(feature, feature)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the spec."""
        return {
            "columns": list(self.columns),
            "categorical": {k: list(v) for k, v in self.categorical.items()},
            "monotone_willingness": dict(self.monotone_willingness),
            "monotone_ability": dict(self.monotone_ability),
            "descriptions": dict(self.descriptions),
            "code_version": self.code_version,
            "drift_exempt": dict(self.drift_exempt),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Rebuild a spec from :meth:`to_dict` output."""
        return cls(
            columns=tuple(data["columns"]),
            categorical={k: tuple(v) for k, v in data.get("categorical", {}).items()},
            monotone_willingness={
                k: int(v) for k, v in data.get("monotone_willingness", {}).items()
            },
            monotone_ability={k: int(v) for k, v in data.get("monotone_ability", {}).items()},
            descriptions=dict(data.get("descriptions", {})),
            code_version=str(data.get("code_version", "unversioned")),
            drift_exempt=dict(data.get("drift_exempt", {})),
        )

    @classmethod
    def default(cls) -> FeatureSpec:
        """Build the spec of the project's feature catalogue (``features.catalogue``).

        The import is done here, not at module import, so that ``models`` loads
        without the feature code (a saved model carries its own spec).
        """
        catalogue = importlib.import_module("features.catalogue")
        return cls(
            columns=tuple(catalogue.MODEL_COLUMNS),
            categorical={k: tuple(v) for k, v in catalogue.CATEGORICAL_FEATURES.items()},
            monotone_willingness=dict(catalogue.MONOTONE_WILLINGNESS),
            monotone_ability=dict(catalogue.MONOTONE_ABILITY),
            descriptions=dict(catalogue.FEATURE_DESCRIPTIONS),
            code_version=feature_code_version(),
            drift_exempt={
                k: v for k, v in catalogue.DRIFT_EXEMPT.items() if k in catalogue.MODEL_COLUMNS
            },
        )


def feature_code_version() -> str:
    """Return a short SHA-256 of the ``features`` package source files.

    The hash covers every ``.py`` file under the package (relative path and
    bytes, in sorted order), so any change to the feature code changes it.
    """
    package = importlib.import_module("features")
    root = Path(package.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return "features-" + digest.hexdigest()[:12]


def default_reason_text() -> ReasonText | None:
    """Return ``features.catalogue.reason_text`` when it exists, else None."""
    try:
        catalogue = importlib.import_module("features.catalogue")
    except ImportError:
        return None
    return getattr(catalogue, "reason_text", None)


def fallback_reason_text(spec: FeatureSpec) -> ReasonText:
    """Return a renderer "<description>: <value>" for features without a reason text.

    Examples
    --------
    >>> spec = FeatureSpec(columns=("dpd",), descriptions={"dpd": "days past due"})
    >>> fallback_reason_text(spec)("dpd", 45.0)
    'days past due: 45'
    """

    def render(feature: str, value: Any) -> str:
        return f"{spec.describe(feature)}: {format_value(value)}"

    return render


def format_value(value: Any) -> str:
    """Format a feature value compactly ("missing" for null, 4 significant digits).

    Examples
    --------
    >>> format_value(float("nan")), format_value(0.123456), format_value("bnpl")
    ('missing', '0.1235', 'bnpl')
    """
    if value is None:
        return "missing"
    if isinstance(value, float | int):
        if isinstance(value, float) and math.isnan(value):
            return "missing"
        return f"{value:.4g}"
    return str(value)

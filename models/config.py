"""Training configuration: hyper-parameters, splits, calibration, baselines, gate.

The configuration is a YAML file of a few flat sections (see
``models/default_config.yaml`` for every key, its default and why). It is read
once into frozen pydantic models and passed in; unknown keys are refused with
the key named, so a typo in a risk team's copy never silently does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

_STRICT = ConfigDict(extra="forbid", frozen=True)


class LightGBMConfig(BaseModel):
    """LightGBM hyper-parameters shared by both heads."""

    model_config = _STRICT

    learning_rate: float = Field(0.1, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    max_depth: int = Field(5, ge=-1)
    min_data_in_leaf: int = Field(200, ge=1)
    feature_fraction: float = Field(0.9, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    bagging_freq: int = Field(1, ge=0)
    lambda_l2: float = Field(1.0, ge=0)
    max_bin: int = Field(255, ge=2)
    min_data_per_group: int = Field(100, ge=1)
    cat_smooth: float = Field(10.0, ge=0)
    n_estimators: int = Field(1000, ge=1)
    early_stopping_rounds: int = Field(30, ge=1)
    seed: int = 42
    deterministic: bool = True
    force_col_wise: bool = True
    num_threads: int = Field(2, ge=1)

    def booster_params(self) -> dict[str, Any]:
        """Return the parameters passed to ``lightgbm.train`` (rounds and stopping excluded)."""
        params = self.model_dump(exclude={"n_estimators", "early_stopping_rounds"})
        params.update(objective="binary", metric="binary_logloss", verbosity=-1)
        return params


class SplitConfig(BaseModel):
    """Sizes of the time-based validation and out-of-time test slices, in months."""

    model_config = _STRICT

    test_months: int = Field(2, ge=1)
    validation_months: int = Field(2, ge=1)
    gap_months: int = Field(0, ge=0)


class CalibrationConfig(BaseModel):
    """Calibration method fitted on the validation months."""

    model_config = _STRICT

    method: Literal["isotonic", "platt"] = "isotonic"


class LabelConfig(BaseModel):
    """How the ability head's binary target is cut from coverage."""

    model_config = _STRICT

    full_coverage_threshold: float = Field(0.999, gt=0, le=1)


class BaselineConfig(BaseModel):
    """Settings of the DPD-bucket rule and the logistic WOE scorecard."""

    model_config = _STRICT

    dpd_column: str = "dpd"
    scorecard_features: tuple[str, ...] = ()
    scorecard_max_features: int = Field(6, ge=1)
    scorecard_bins: int = Field(5, ge=2)


class EvaluationConfig(BaseModel):
    """Bins, PSI flags and plot sizes of the evaluation."""

    model_config = _STRICT

    n_bins: int = Field(10, ge=2)
    psi_moderate: float = Field(0.10, gt=0)
    psi_major: float = Field(0.25, gt=0)
    shap_sample_rows: int = Field(5000, ge=10)
    top_features: int = Field(20, ge=1)


class GateConfig(BaseModel):
    """Promotion gate: AUC tolerance against the champion and calibration bound."""

    model_config = _STRICT

    tolerance: float = Field(0.005, ge=0)
    max_ece: float = Field(0.03, gt=0)


class FairnessConfig(BaseModel):
    """Protected attributes: left out of the features unless a justification is recorded."""

    model_config = _STRICT

    protected: tuple[str, ...] = ("age",)
    include_protected: tuple[str, ...] = ()
    justification: str = ""
    age_bands: tuple[float, ...] = Field((25, 35, 45, 55, 65), min_length=1)

    @model_validator(mode="after")
    def _justified(self) -> FairnessConfig:
        unknown = sorted(set(self.include_protected) - set(self.protected))
        if unknown:
            raise ValueError(f"include_protected names attributes not in protected: {unknown}")
        if self.include_protected and not self.justification.strip():
            raise ValueError(
                f"include_protected {list(self.include_protected)} needs a justification "
                "(why the attribute is lawful and necessary), recorded in the model report"
            )
        if list(self.age_bands) != sorted(set(self.age_bands)):
            raise ValueError(f"age_bands must be strictly increasing, got {list(self.age_bands)}")
        return self

    @property
    def excluded(self) -> tuple[str, ...]:
        """Return the protected attributes kept out of the features."""
        return tuple(c for c in self.protected if c not in self.include_protected)


class TrainingConfig(BaseModel):
    """The whole training configuration (one section per concern)."""

    model_config = _STRICT

    lightgbm: LightGBMConfig = LightGBMConfig()
    splits: SplitConfig = SplitConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    labels: LabelConfig = LabelConfig()
    baselines: BaselineConfig = BaselineConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    gate: GateConfig = GateConfig()
    fairness: FairnessConfig = FairnessConfig()

    def flat(self) -> dict[str, Any]:
        """Return the config as flat ``section.key`` pairs (for MLflow params).

        Examples
        --------
        >>> TrainingConfig().flat()["lightgbm.num_threads"]
        2
        """
        out: dict[str, Any] = {}
        for section, values in self.model_dump().items():
            for key, value in values.items():
                out[f"{section}.{key}"] = list(value) if isinstance(value, tuple) else value
        return out

    def to_yaml(self) -> str:
        """Return the config as YAML text (sections and keys in definition order)."""
        data = self.model_dump(mode="json")
        return yaml.safe_dump(data, sort_keys=False)


def default_config_path() -> Path:
    """Return the path of the packaged ``default_config.yaml``."""
    return Path(str(resources.files("models").joinpath("default_config.yaml")))


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainingConfig:
    """Read a training config from YAML (the packaged defaults when ``path`` is None).

    Parameters
    ----------
    path : str or Path, optional
        A YAML file with any subset of the sections and keys of
        ``models/default_config.yaml``.
    overrides : mapping, optional
        Values replacing those of the file, either nested
        (``{"lightgbm": {"num_leaves": 7}}``) or as dotted keys
        (``{"lightgbm.num_leaves": 7}``); checked like the file.

    Returns
    -------
    TrainingConfig

    Raises
    ------
    ValueError
        When the file has an unknown key or a value of the wrong type or range;
        the message names each offending key.
    """
    source = Path(path) if path is not None else default_config_path()
    data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    if overrides:
        data = merge_overrides(data, overrides)
    return config_from_dict(data, source=str(source))


def merge_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``data`` with ``overrides`` applied (nested mappings or dotted keys).

    Examples
    --------
    >>> merge_overrides({"lightgbm": {"seed": 1, "num_leaves": 7}},
    ...                 {"lightgbm.seed": 2, "gate": {"max_ece": 0.05}})
    {'lightgbm': {'seed': 2, 'num_leaves': 7}, 'gate': {'max_ece': 0.05}}
    """
    out: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    for key, value in overrides.items():
        if "." in key:
            section, name = key.split(".", 1)
            value = {name: value}
            key = section
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **value}
        else:
            out[key] = dict(value) if isinstance(value, Mapping) else value
    return out


def config_from_dict(data: Any, source: str = "config") -> TrainingConfig:
    """Validate a mapping into a :class:`TrainingConfig`, naming every bad key.

    Examples
    --------
    >>> config_from_dict({"lightgbm": {"num_leafs": 7}})
    Traceback (most recent call last):
    ...
    ValueError: config: unknown key 'lightgbm.num_leafs' (known keys in 'lightgbm': ...
    """
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    try:
        return TrainingConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_explain(exc, source)) from None


def _explain(exc: ValidationError, source: str) -> str:
    messages = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            known = _known_keys(loc[:-1])
            where = f"'{'.'.join(loc[:-1])}'" if len(loc) > 1 else "the top level"
            messages.append(f"unknown key '{key}' (known keys in {where}: {', '.join(known)})")
        else:
            messages.append(f"'{key}': {err['msg']} (got {err.get('input')!r})")
    return f"{source}: " + "; ".join(messages)


def _known_keys(loc: list[str]) -> list[str]:
    model: type[BaseModel] = TrainingConfig
    for part in loc:
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)

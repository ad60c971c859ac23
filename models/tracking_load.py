"""Reading models back from the store: load, resolve aliases, versions and their tags.

Split from :mod:`models.tracking` (which writes); importing from
``models.tracking`` still works for every name here. A model folder is
refused before anything in it is read when it holds a pickle-like file or is
not this project's; models load from text and JSON only.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
from mlflow.exceptions import MlflowException

from models.packaging import saved_model_dir, unsafe_files
from models.propensity_model import PropensityModel
from models.tracking import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    UPLIFT_TAG,
    ForeignModelError,
    ModelNotFoundError,
    client,
    open_store,
    with_retry,
)
from models.uplift import UpliftModel

#: MLflow's error codes for a registered model, alias, version or run that is not there.
_MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")

# ---------------------------------------------------------------- the model


class UnsafeModelError(ForeignModelError):
    """The model folder holds a file that would run code when read (a pickle) or is foreign."""


def _refuse_unsafe(folder: Path, uri: str) -> None:
    """Refuse a downloaded model folder before anything in it is read or executed."""
    bad = unsafe_files(folder)
    if bad:
        names = ", ".join(str(p.relative_to(folder)) for p in bad[:5])
        raise UnsafeModelError(
            f"refusing the model at {uri}: it contains {len(bad)} pickle-like file(s) ({names}); "
            "models of this project are text and JSON only"
        )


def _saved_model_dir(folder: Path, uri: str) -> Path:
    """Return the saved model inside a model folder; ForeignModelError when it is not ours."""
    try:
        return saved_model_dir(folder)
    except ValueError as exc:
        raise ForeignModelError(f"the model at {uri} is not a {MODEL_NAME} model: {exc}") from None


def _download_model(uri: str, dst: Path) -> Path:
    """Download a model's folder (no loading), mapping a missing model to ModelNotFoundError."""
    local = Path(uri)
    if local.is_dir():
        return local
    if ":/" not in uri:
        raise ModelNotFoundError(f"no model at {uri}: no such folder")
    client()
    try:
        return Path(
            with_retry(mlflow.artifacts.download_artifacts, artifact_uri=uri, dst_path=str(dst))
        )
    except MlflowException as exc:
        if exc.error_code in _MISSING_CODES:
            raise ModelNotFoundError(f"no model at {uri}: {exc.message}") from None
        raise
    except OSError as exc:
        raise ModelNotFoundError(f"no model at {uri}: {exc}") from None


# ----------------------------------------------------------------- registry


def load_model(uri: str = f"models:/{MODEL_NAME}@{CHAMPION}") -> PropensityModel:
    """Load a registered or logged model as a :class:`PropensityModel`, reading text and JSON only.

    The model folder is downloaded, refused if it holds a pickle-like file
    or is not this project's models-from-code model, and its saved model
    (LightGBM text boosters, JSON calibrators and spec) is read with the
    installed project code: nothing shipped in the folder is executed.

    Parameters
    ----------
    uri : str
        Any MLflow model URI: ``models:/repayment-propensity@champion``,
        ``models:/repayment-propensity/3``, ``runs:/<run_id>/model``, or a
        local model folder.

    Returns
    -------
    PropensityModel
        With ``version`` set to the registered version (the URI itself for
        an unregistered model).

    Raises
    ------
    ModelNotFoundError
        When no model, alias, version or run answers to ``uri``
        (:class:`ForeignModelError` when the model there is not this project's,
        :class:`UnsafeModelError` when its folder holds a pickle-like file).
    StoreUnavailableError
        When the store cannot be opened.
    """
    if uri.startswith(("models:/", "runs:/")):
        try:
            open_store(must_exist=True)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(f"no model at {uri}: {exc}") from None
    version = resolve_version(uri)
    if uri.startswith("models:/") and "@" in uri:
        # Load the version the alias pointed to when resolved, so a promotion
        # landing in between cannot stamp scores with the wrong version.
        uri = f"models:/{uri[len('models:/') :].split('@', 1)[0]}/{version}"
    with tempfile.TemporaryDirectory() as tmp:
        folder = _download_model(uri, Path(tmp))
        _refuse_unsafe(folder, uri)
        try:
            model = PropensityModel.load(_saved_model_dir(folder, uri))
        except (ValueError, FileNotFoundError, KeyError) as exc:
            raise ForeignModelError(
                f"the model at {uri} cannot be loaded as a {MODEL_NAME} model: {exc}"
            ) from None
    model.version = version
    return model


def load_pyfunc(uri: str = f"models:/{MODEL_NAME}@{CHAMPION}") -> Any:
    """Load a model as a generic MLflow pyfunc (signature-enforced ``predict``).

    The folder is checked like :func:`load_model` before MLflow reads it;
    MLflow then runs the model's entry script with the project code shipped
    in the model (``code/``).

    Raises
    ------
    ModelNotFoundError
        When no model, alias, version or run answers to ``uri``.
    UnsafeModelError
        When the folder holds a pickle-like file or is not a propensity model.
    """
    dst = Path(tempfile.mkdtemp(prefix="propensity_model_"))
    folder = _download_model(uri, dst)
    _refuse_unsafe(folder, uri)
    _saved_model_dir(folder, uri)
    return with_retry(mlflow.pyfunc.load_model, str(folder))


def alias_version(alias: str, model_name: str = MODEL_NAME) -> str | None:
    """Return the version an alias points to, or None when the alias (or model) is unset."""
    mlc = client()
    try:
        return str(with_retry(mlc.get_model_version_by_alias, model_name, alias).version)
    except MlflowException as exc:
        if exc.error_code in _MISSING_CODES:
            return None
        raise


def _required_version(alias: str, model_name: str, hint: str) -> str:
    """Return the version an alias points to; ModelNotFoundError (with ``hint``) when unset."""
    version = alias_version(alias, model_name)
    if version is None:
        raise ModelNotFoundError(f"model {model_name!r} has no alias {alias!r}: {hint}")
    return version


def resolve_version(uri: str) -> str:
    """Return a model URI's registered version (``models:/name@alias`` or ``models:/name/V``).

    Other URIs are returned unchanged, so the result can always be recorded
    as the ``model_version`` of a score.
    """
    prefix = "models:/"
    if not uri.startswith(prefix):
        return uri
    rest = uri[len(prefix) :]
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return _required_version(alias, name, "train or promote first")
    if "/" in rest:
        return rest.rsplit("/", 1)[1]
    return uri


# ------------------------------------------------------------- review helpers


def version_info(version: str | int | None = None, model_name: str = MODEL_NAME) -> dict[str, Any]:
    """Return a registered version's tags, aliases and run id (default: the challenger).

    Raises
    ------
    ModelNotFoundError
        When the version (or the challenger alias) does not exist.
    """
    if version is None:
        version = _required_version(CHALLENGER, model_name, "train a model first")
    mlc = client()
    try:
        mv = with_retry(mlc.get_model_version, model_name, str(version))
    except MlflowException as exc:
        if exc.error_code in _MISSING_CODES:
            raise ModelNotFoundError(f"model {model_name!r} has no version {version}") from None
        raise
    return {
        "version": str(mv.version),
        "run_id": mv.run_id,
        "aliases": list(mv.aliases or []),
        "tags": dict(mv.tags or {}),
    }


def load_uplift(
    version: str | int | None = None, model_name: str = MODEL_NAME
) -> UpliftModel | None:
    """Return the treatment-effect model logged with a registered version (default: champion).

    None when the version was trained without one (its ``uplift_model`` tag
    says why); the model is read from its JSON artifact, never a pickle.

    Raises
    ------
    ModelNotFoundError
        When the version (or the champion alias) does not exist.
    """
    if version is None:
        version = _required_version(CHAMPION, model_name, "promote a version first")
    info = version_info(version, model_name)
    artifact = info["tags"].get(UPLIFT_TAG, "")
    if not artifact.startswith("uplift/"):
        return None
    text = with_retry(mlflow.artifacts.load_text, artifact_uri=f"runs:/{info['run_id']}/{artifact}")
    return UpliftModel.from_dict(json.loads(text))

"""How a model is packaged for MLflow without pickle, and how a model folder is checked.

A logged model folder holds ``MLmodel``, ``requirements.txt`` (pinned,
:mod:`models.provenance`), the entry script ``mlflow_model.py``, the project's
``models`` and ``features`` source under ``code/`` and the saved model under
``artifacts/`` (text and JSON only). Before anything is loaded from a folder,
:func:`unsafe_files` lists any file whose format runs code when read (pickle
and its relatives); a folder with one is refused, and so is a folder whose
``MLmodel`` is not this project's models-from-code pyfunc.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

#: File name parts of formats that execute code when deserialised.
UNSAFE_SUFFIXES: tuple[str, ...] = (
    ".pkl",
    ".pickle",
    ".joblib",
    ".cloudpickle",
    ".dill",
    ".pt",
    ".pth",
)
#: Packages of the project shipped with the model (``code_paths``).
CODE_PACKAGES: tuple[str, ...] = ("models", "features")
#: Non-Python files of those packages the model needs (packaged defaults).
DATA_SUFFIXES: tuple[str, ...] = (".py", ".yaml")
ENTRY_SCRIPT = "mlflow_model.py"


def project_root() -> Path:
    """Return the folder holding the ``models`` and ``features`` packages."""
    return Path(__file__).resolve().parent.parent


def entry_script() -> Path:
    """Return the models-from-code entry script (``models/mlflow_model.py``)."""
    return Path(__file__).resolve().parent / ENTRY_SCRIPT


def unsafe_files(folder: Path) -> list[Path]:
    """Return every file under ``folder`` whose name marks a pickle-like format.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "a.txt").write_text("x"); (d / "m.pkl.gz").write_text("x")
    1
    1
    >>> [p.name for p in unsafe_files(d)]
    ['m.pkl.gz']
    """
    return sorted(
        p
        for p in Path(folder).rglob("*")
        if p.is_file() and any(s in p.name.lower() for s in UNSAFE_SUFFIXES)
    )


def stage_code(dst: Path) -> list[str]:
    """Copy the project's packages (``.py`` and ``.yaml`` files only) into ``dst``.

    Returns
    -------
    list of str
        One folder per package, for ``code_paths``.
    """
    root = project_root()
    out = []
    for package in CODE_PACKAGES:
        src = root / package
        target = Path(dst) / package
        for path in sorted(src.rglob("*")):
            if path.is_file() and path.suffix in DATA_SUFFIXES and "__pycache__" not in path.parts:
                rel = path.relative_to(src)
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target / rel)
        out.append(str(target))
    return out


def saved_model_dir(folder: Path) -> Path:
    """Return the saved :class:`PropensityModel` folder inside a logged model folder.

    Raises
    ------
    ValueError
        When the folder is not this project's models-from-code pyfunc model.
    """
    mlmodel = Path(folder) / "MLmodel"
    if not mlmodel.is_file():
        raise ValueError(f"{folder} is not an MLflow model folder (no MLmodel file)")
    flavors = (yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get("flavors", {})
    pyfunc = flavors.get("python_function", {})
    extra = sorted(set(flavors) - {"python_function"})
    if extra or "model_code_path" not in pyfunc:
        raise ValueError(
            f"{folder} is not a models-from-code propensity model (flavors {sorted(flavors)}); "
            "retrain it with this version of the project"
        )
    rel = pyfunc.get("artifacts", {}).get("model_dir", {}).get("path")
    if not rel:
        raise ValueError(f"{folder}: MLmodel names no 'model_dir' artifact")
    path = (Path(folder) / rel).resolve()
    if Path(folder).resolve() not in path.parents:
        raise ValueError(f"{folder}: artifact path {rel!r} points outside the model folder")
    return path

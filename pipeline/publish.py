"""Publish a run folder whole or not at all, and keep two runs of one date apart.

A scoring run for date D writes into a hidden temporary folder beside the
target and renames it to ``<out>/as_of=D/`` only when every file is complete,
so a reader never sees half a run; running the same D again replaces the
folder. A lock file per output folder and date makes a second run wait (up to
a timeout) or fail with a clear message, never interleave. The lock files live
outside the output folder (see :func:`lock_path`), which holds only the runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)


class RunLockedError(RuntimeError):
    """Another run holds the lock for the same output and date."""


def run_dir_name(as_of_label: str) -> str:
    """Return the contract's folder name for a run date, e.g. ``as_of=2025-06-30``.

    Examples
    --------
    >>> run_dir_name("2025-06-30")
    'as_of=2025-06-30'
    """
    return f"as_of={as_of_label}"


#: Environment variable naming the folder of the run locks (default: the system temp folder's
#: ``propensity-locks``); set it to a folder on the shared disk when several machines write
#: to one output folder.
LOCK_DIR_ENV = "PROPENSITY_LOCK_DIR"


def lock_path(out_dir: Path, as_of_label: str) -> Path:
    """Return the lock file of ``<out>/as_of=D``: ``<lock dir>/<out hash>.as_of=D.lock``.

    The hash is of the output folder's absolute path, so two output folders
    never share a lock and the output folder itself stays free of lock files.
    """
    root = Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "propensity-locks")
    digest = hashlib.sha256(str(Path(out_dir).resolve()).encode()).hexdigest()[:16]
    return root / f"{digest}.{run_dir_name(as_of_label)}.lock"


def _shared_dir(folder: Path) -> None:
    """Create the lock folder, open to every user like ``/tmp`` (sticky) when this call made it."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(folder, 0o1777)
    except OSError:  # not ours after all (made by another process meanwhile)
        pass


@contextmanager
def run_lock(out_dir: Path, as_of_label: str, timeout: float = 0.0) -> Iterator[Path]:
    """Hold the lock of ``<out>/as_of=D`` for the duration of a run.

    Parameters
    ----------
    out_dir : Path
        The output root.
    as_of_label : str
        The run date as ``YYYY-MM-DD``.
    timeout : float
        Seconds to wait for a running job to finish; 0 fails at once.

    Raises
    ------
    RunLockedError
        When another run holds the lock past the timeout.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = lock_path(out_dir, as_of_label)
    _shared_dir(path.parent)
    # Readable and writable by all: an operator rerunning by hand may not be the cron user.
    lock = FileLock(str(path), timeout=timeout, mode=0o666)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if timeout <= 0:
                raise
            log.info(
                "waiting up to %.0fs for another scoring run of %s on %s (lock %s)",
                timeout,
                as_of_label,
                out_dir,
                path,
            )
            lock.acquire()
    except Timeout as exc:
        raise RunLockedError(
            f"another scoring run for {as_of_label} is writing to {out_dir} "
            f"(lock {path}); wait for it to finish, or pass --wait SECONDS"
        ) from exc
    try:
        yield path
    finally:
        lock.release()


def staging_dir(out_dir: Path, as_of_label: str) -> Path:
    """Create and return a fresh hidden staging folder beside the target."""
    path = out_dir / f".{run_dir_name(as_of_label)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


def publish(staging: Path, out_dir: Path, as_of_label: str) -> Path:
    """Move a complete staging folder to ``<out>/as_of=D``, replacing an earlier run.

    The previous folder is moved aside first and deleted only after the new
    one is in place, so a failure at any step leaves one complete run.
    """
    final = out_dir / run_dir_name(as_of_label)
    previous = None
    if final.exists():
        previous = out_dir / f".{run_dir_name(as_of_label)}.old-{uuid.uuid4().hex[:8]}"
        os.replace(final, previous)
    try:
        os.replace(staging, final)
    except OSError:
        if previous is not None:
            os.replace(previous, final)
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    return final


def recover(out_dir: Path, as_of_label: str) -> None:
    """Clean up after a run that died: restore a moved-aside folder, drop stale staging."""
    final = out_dir / run_dir_name(as_of_label)
    prefix = f".{run_dir_name(as_of_label)}."
    if not out_dir.exists():
        return
    for leftover in sorted(out_dir.glob(prefix + "*")):
        if leftover.name.endswith(".lock"):
            leftover.unlink(missing_ok=True)  # left by an earlier version, which kept it here
            continue
        if ".old-" in leftover.name and not final.exists():
            os.replace(leftover, final)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _json_safe(obj: object) -> object:
    """Return ``obj`` with NaN and infinite floats as None: JSON has no token for them."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def write_json(obj: object, path: Path) -> None:
    """Write strict JSON with sorted keys and a trailing newline (stable, diffable).

    Missing figures (NaN, infinities, numpy's included) are written as ``null``,
    so any JSON reader can parse the manifest.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> out = Path(tempfile.mkdtemp()) / "m.json"
    >>> write_json({"ece": float("nan"), "rows": [np.float64("inf"), 1.5]}, out)
    >>> json.loads(out.read_text())
    {'ece': None, 'rows': [None, 1.5]}
    """
    text = json.dumps(_json_safe(obj), indent=2, sort_keys=True, default=str, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")

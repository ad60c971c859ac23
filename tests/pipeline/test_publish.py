"""Publishing a run folder is all or nothing, replaces a rerun, and never interleaves."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from pipeline import publish as pub


def _stage(out, label, text):
    staging = pub.staging_dir(out, label)
    (staging / "scores.txt").write_text(text)
    return staging


def test_publish_then_rerun_replaces(tmp_path):
    first = pub.publish(_stage(tmp_path, "2025-01-31", "one"), tmp_path, "2025-01-31")
    assert first == tmp_path / "as_of=2025-01-31"
    assert (first / "scores.txt").read_text() == "one"
    pub.publish(_stage(tmp_path, "2025-01-31", "two"), tmp_path, "2025-01-31")
    assert (first / "scores.txt").read_text() == "two"
    # Nothing but the run folder is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["as_of=2025-01-31"]


def test_failed_rename_restores_previous_run(tmp_path, monkeypatch):
    pub.publish(_stage(tmp_path, "2025-01-31", "old"), tmp_path, "2025-01-31")
    staging = _stage(tmp_path, "2025-01-31", "new")
    real_replace = os.replace

    def flaky(src, dst):
        if str(src) == str(staging):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(pub.os, "replace", flaky)
    with pytest.raises(OSError, match="disk full"):
        pub.publish(staging, tmp_path, "2025-01-31")
    assert (tmp_path / "as_of=2025-01-31" / "scores.txt").read_text() == "old"


def test_recover_after_a_crash_between_the_two_renames(tmp_path):
    pub.publish(_stage(tmp_path, "2025-01-31", "old"), tmp_path, "2025-01-31")
    # A run died after moving the old folder aside and before renaming its staging.
    os.replace(tmp_path / "as_of=2025-01-31", tmp_path / ".as_of=2025-01-31.old-dead")
    _stage(tmp_path, "2025-01-31", "half")
    pub.recover(tmp_path, "2025-01-31")
    assert (tmp_path / "as_of=2025-01-31" / "scores.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["as_of=2025-01-31"]


def test_second_run_on_same_date_fails_clearly_while_first_holds_lock(tmp_path):
    # The lock is held by another process, as a concurrent nightly run would.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from pipeline.publish import run_lock
                with run_lock(Path({str(tmp_path)!r}), "2025-01-31"):
                    print("locked", flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(pub.RunLockedError, match="another scoring run for 2025-01-31"):
            with pub.run_lock(tmp_path, "2025-01-31", timeout=0.2):
                pass
        # Another date is not blocked.
        with pub.run_lock(tmp_path, "2025-02-28"):
            pass
    finally:
        holder.communicate("\n", timeout=30)
    with pub.run_lock(tmp_path, "2025-01-31", timeout=5):
        pass


def test_the_run_lock_lives_outside_the_output_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(pub.LOCK_DIR_ENV, str(tmp_path / "locks"))
    out = tmp_path / "scores"
    with pub.run_lock(out, "2025-01-31") as held:
        assert held.parent == tmp_path / "locks" and held.name.endswith(".as_of=2025-01-31.lock")
        assert held != pub.lock_path(tmp_path / "other", "2025-01-31")
        # Another user (cron, or an operator by hand) can take the same lock next time.
        assert held.stat().st_mode & 0o666 == 0o666
        assert held.parent.stat().st_mode & 0o1777 == 0o1777
    assert list(out.iterdir()) == []
    # A lock file left in the output folder by an earlier version is removed.
    (out / ".as_of=2025-01-31.lock").write_text("")
    pub.recover(out, "2025-01-31")
    assert list(out.iterdir()) == []


def test_waiting_for_a_run_of_the_same_date_is_logged(tmp_path, monkeypatch, caplog):
    import logging
    import threading
    import time

    monkeypatch.setenv(pub.LOCK_DIR_ENV, str(tmp_path / "locks"))
    held = threading.Event()

    def other_run():
        with pub.run_lock(tmp_path, "2025-01-31"):
            held.set()
            time.sleep(0.5)

    thread = threading.Thread(target=other_run)
    thread.start()
    held.wait(5)
    with caplog.at_level(logging.INFO, logger="pipeline.publish"):
        with pub.run_lock(tmp_path, "2025-01-31", timeout=10):
            pass
    thread.join()
    assert any("waiting up to 10s" in r.getMessage() for r in caplog.records)

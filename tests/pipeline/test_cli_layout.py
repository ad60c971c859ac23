"""The command line is one group over theme modules: every command registered once, no cycle."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import click
import typer

from pipeline import cli

PIPELINE = Path(cli.__file__).resolve().parent
ROOT = PIPELINE.parent
#: The subcommands in the order `propensity --help` lists them (README, docs/operations.md).
COMMANDS = [
    "simulate",
    "validate",
    "features",
    "training-set",
    "train",
    "promote",
    "rollback",
    "recalibrate",
    "report",
    "evaluate",
    "partition",
    "score",
    "replay",
    "effect",
]


def test_the_group_registers_every_command_once_in_the_documented_order():
    group = typer.main.get_command(cli.app)
    assert group.list_commands(click.Context(group)) == COMMANDS


def test_theme_modules_never_import_the_group():
    # pipeline.cli imports the themes: importing it back would be a cycle, and with cli.py
    # run as a script (spark-submit) a second copy of the group.
    for path in sorted(PIPELINE.glob("cli_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
        } | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "pipeline.cli" not in imported, path.name
        if path.name == "cli_common.py":  # shared by the themes, so it imports none of them
            assert not any(m.startswith("pipeline.cli_") for m in imported)


def test_cli_py_run_as_a_script_lists_every_command():
    out = subprocess.run(
        [sys.executable, str(PIPELINE / "cli.py"), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    listed = [line.split()[1] for line in out.splitlines() if line.startswith("│ ")]
    assert [n for n in listed if n in COMMANDS] == COMMANDS

"""Text shown to operators: values from the data never break a line of a report or log."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    r"""Escape control characters (newline, tab, escape...) so that a value stays on one line.

    Examples
    --------
    >>> printable("A1\nA2\tb\x1b[31m")
    'A1\\nA2\\tb\\x1b[31m'
    """
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)

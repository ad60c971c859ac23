"""Shared fixtures: make ``tests/factories.py`` importable as ``factories``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).parent))

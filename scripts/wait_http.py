"""Wait until a URL answers HTTP 200 while a server process lives; exit 0 then, 1 if it dies.

Usage: ``python scripts/wait_http.py PID URL [TIMEOUT_S]`` (``make mlflow-ui`` uses it
so that the address is printed only once the MLflow UI answers).
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    """Poll ``URL`` every second until it answers, the process ``PID`` exits, or time runs out."""
    pid, url = int(argv[1]), argv[2]
    deadline = time.monotonic() + (float(argv[3]) if len(argv) > 3 else 600.0)
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            print(f"the server (pid {pid}) exited before answering at {url}", file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return 0
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    print(f"no answer at {url} in time", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Writing a command's report to stdout: text, or JSON under --json (emit_json).

A reader may close the pipe early (`sisnbms design | head`): the rest of the
report is then dropped quietly instead of ending in a BrokenPipeError traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from host.report import json_out


def emit(text: str) -> bool:
    """Write text and a newline to stdout; False if the reader has gone."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The interpreter flushes stdout again at exit and would report the same error:
        # point the descriptor at /dev/null so that flush succeeds silently.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return False
    return True


def emit_json(value: dict[str, Any], *, indent: int | None = 2) -> bool:
    """Write a command's JSON result (host.report.json_out's convention) to stdout."""
    return emit(json_out.dumps(value, indent=indent))

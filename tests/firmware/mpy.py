"""Run MicroPython code under the real unix-port interpreter for firmware tests.

`run_mpy(script)` executes a script with firmware/ on sys.path (as on a board,
where the firmware sits at the root of the flash) and returns its stdout.
A script signals failure by raising: the interpreter exits non-zero and the
traceback is shown in the assertion.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from host.interpreter import find_micropython

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"


def run_mpy(
    script: str,
    *,
    cwd: Path | None = None,
    timeout_s: float = 120.0,
    heap: str = "2M",
    extra_path: list[Path] | None = None,
) -> str:
    """Run `script` under MicroPython with firmware/ importable; return stdout, raise on failure."""
    paths = [str(FIRMWARE)] + [str(p) for p in (extra_path or [])]
    prelude = "import sys\n" + "".join(f"sys.path.insert(0, {p!r})\n" for p in reversed(paths))
    code = prelude + textwrap.dedent(script)
    proc = subprocess.run(
        [str(find_micropython()), "-X", f"heapsize={heap}", "-c", code],
        cwd=str(cwd) if cwd else None,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"MicroPython exited {proc.returncode}\n--- stdout ---\n{proc.stdout}"
            f"\n--- stderr ---\n{proc.stderr}"
        )
    return proc.stdout

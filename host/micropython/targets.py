"""The chip-faithful MicroPython targets: what each one builds, from which port, with what.

- unix-32: the unix port built 32-bit with single-precision floats, the object model of the
  RP2040 and ESP32 ports (small ints of +-2**30, float32), as a desktop interpreter.
- qemu-cortex-m0: bare-metal MicroPython for QEMU's `microbit` machine (nRF51, a Cortex-M0;
  the RP2040 is a Cortex-M0+), with the board files in boards/qemu/ (boot sequence, littlefs
  flash, clock, heap of an RP2040 build: see boards/qemu/README.md).

The make lines are those verified in ../shared/vendor/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from host.resources import boards_dir

# The unix-32 build freezes asyncio from extmod/, as the standard variant does, and nothing
# from micropython-lib (absent from the vendored source).
UNIX32_MANIFEST = 'include("$(MPY_DIR)/extmod/asyncio")\n'


@dataclass(frozen=True)
class Tool:
    """A program a build needs, and the Debian package that provides it."""

    command: str
    package: str


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    port: str  # folder under ports/
    artifact: str  # file name of the built binary
    tools: tuple[Tool, ...]
    run_tools: tuple[Tool, ...] = ()
    # unix port: the interpreter's heap (-X heapsize), an RP2040 build's usable heap
    unix_heap: str = ""

    def board_files(self) -> list[Path]:
        """Files of this repository the build reads (they are part of the cache key)."""
        if self.name != QEMU_TARGET:
            return []
        root = boards_dir() / "qemu"
        return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)

    def make_args(self, build_dir: Path, mpy_cross: Path, lib_dir: Path) -> list[str]:
        """Arguments of `make -C ports/<port>` that build this target into `build_dir`."""
        common = [
            f"BUILD={build_dir}",
            f"MPY_LIB_DIR={lib_dir}",
            f"MICROPY_MPYCROSS={mpy_cross}",
            f"MICROPY_MPYCROSS_DEPENDENCY={mpy_cross}",
        ]
        if self.name == UNIX32_TARGET:
            return [
                "VARIANT=standard",
                "CC=gcc -m32",
                "LD=gcc -m32",
                "MICROPY_PY_BTREE=0",
                "MICROPY_PY_SSL=0",
                "MICROPY_PY_FFI=0",
                "MICROPY_STANDALONE=0",
                f"FROZEN_MANIFEST={lib_dir / 'manifest.py'}",
                "CFLAGS_EXTRA=-DMICROPY_FLOAT_IMPL=MICROPY_FLOAT_IMPL_FLOAT",
                *common,
            ]
        return ["BOARD=SISNBMS_QEMU", f"BOARD_DIR={boards_dir() / 'qemu'}", *common]


UNIX32_TARGET = "unix-32"
QEMU_TARGET = "qemu-cortex-m0"

_MAKE = Tool("make", "make")
_GCC = Tool("gcc", "gcc")

TARGETS: dict[str, Target] = {
    UNIX32_TARGET: Target(
        name=UNIX32_TARGET,
        description="unix port, 32-bit, single-precision floats (the chips' object model)",
        port="unix",
        artifact="micropython",
        # gcc -m32 needs the 32-bit C library and libgcc of gcc-multilib.
        tools=(_MAKE, _GCC, Tool("gcc -m32", "gcc-multilib")),
        # boards/qemu/README.md: 216,320 B free of the RP2040 build's heap, plus the
        # interpreter's own start-up
        unix_heap="224256",
    ),
    QEMU_TARGET: Target(
        name=QEMU_TARGET,
        description="bare-metal MicroPython on QEMU's microbit machine (nRF51, Cortex-M0)",
        port="qemu",
        artifact="firmware.elf",
        tools=(
            _MAKE,
            _GCC,  # mpy-cross, which freezes the board's _boot.py
            Tool("arm-none-eabi-gcc", "gcc-arm-none-eabi"),
            Tool("arm-none-eabi-gcc newlib", "libnewlib-arm-none-eabi"),
        ),
        run_tools=(Tool("qemu-system-arm", "qemu-system-arm"),),
    ),
}


def get_target(name: str) -> Target:
    from cellmodel.errors import InputError

    try:
        return TARGETS[name]
    except KeyError:
        raise InputError(
            "--target", name, f"unknown target (known: {', '.join(TARGETS)})"
        ) from None

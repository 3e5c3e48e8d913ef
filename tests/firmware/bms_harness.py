"""Pytest side of the MicroPython rig: run a script with firmware/ and mpylib/ importable."""

from __future__ import annotations

from pathlib import Path

from tests.firmware.mpy import FIRMWARE, run_mpy

MPYLIB = Path(__file__).resolve().parent / "mpylib"


def run_rig(script: str, cwd: Path, timeout_s: float = 120.0) -> str:
    """Run `script` under MicroPython in `cwd` with bmsrig importable; return its stdout."""
    return run_mpy(script, cwd=cwd, timeout_s=timeout_s, extra_path=[MPYLIB])


def firmware_on_path() -> None:
    """Let CPython import firmware/bms for property tests."""
    import sys

    if str(FIRMWARE) not in sys.path:
        sys.path.insert(0, str(FIRMWARE))

"""Pytest side of the MicroPython rig: run a script with firmware/ and mpylib/ importable."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from tests.firmware.mpy import FIRMWARE, run_mpy

MPYLIB = Path(__file__).resolve().parent / "mpylib"


def run_rig(script: str, cwd: Path, timeout_s: float = 120.0) -> str:
    """Run `script` under MicroPython in `cwd` with bmsrig importable; return its stdout."""
    return run_mpy(script, cwd=cwd, timeout_s=timeout_s, extra_path=[MPYLIB])


def firmware_module(name: str) -> Any:
    """Import a firmware module (e.g. "bms.config") under CPython, for property tests."""
    if str(FIRMWARE) not in sys.path:
        sys.path.insert(0, str(FIRMWARE))
    return importlib.import_module(name)

"""Pytest side of the MicroPython rig: run a script with firmware/ and mpylib/ importable."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

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


def default_config() -> dict[str, Any]:
    """The firmware's default configuration (bms.config_rules.DEFAULTS), as a dict."""
    return dict(firmware_module("bms.config_rules").DEFAULTS)


def soc_at(mV: float, branch: str) -> float:
    """SOC (cpct) where a branch of the default OCV table reads mV: linear between its points
    and, past its ends, along the end segment for at most 10 % (soc.py's reading rule).
    Worked out with numpy, not with the firmware's integer routines."""
    d = default_config()
    soc = np.array(d["ocv_soc_cpct"], dtype=float)
    v = np.array(d["ocv_chg_mV" if branch == "charge" else "ocv_dsg_mV"], dtype=float)
    if mV < v[0]:
        return max(soc[0] - (soc[1] - soc[0]) * (v[0] - mV) / (v[1] - v[0]), soc[0] - 1000)
    if mV > v[-1]:
        return min(soc[-1] + (soc[-1] - soc[-2]) * (mV - v[-1]) / (v[-1] - v[-2]), soc[-1] + 1000)
    return float(np.interp(mV, v, soc))

"""Fault, warning, STATE-flag and boot-flag bit names of the firmware (docs/protocol.md).

One source: the firmware's own firmware/bms/faults.py (pure Python that runs
under CPython too), loaded here the way host.firmware_config loads its
configuration rules, so the host cannot drift from the bits the board sends.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from types import ModuleType

from host.resources import firmware_dir

# Host names of two STATE flags whose firmware constants are abbreviated (F_BRANCH_DSG,
# F_VOLTAGE_CORRECTION); logs and summaries have always used these.
_FLAG_RENAMES = {"BRANCH_DSG": "BRANCH_DISCHARGE", "VOLTAGE_CORRECTION": "V_CORRECTION"}


@cache
def firmware_faults() -> ModuleType:
    """firmware/bms/faults.py as the firmware has it."""
    path = firmware_dir() / "bms" / "faults.py"
    spec = importlib.util.spec_from_file_location("sisnbms_firmware_faults", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load the firmware's fault bits from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bit(value: int, name: str) -> int:
    if value <= 0 or value & (value - 1):
        raise ValueError(f"firmware/bms/faults.py: {name} = {value:#x} is not a single bit")
    return value.bit_length() - 1


def _prefixed(module: ModuleType, prefix: str) -> dict[str, int]:
    """{name without prefix: bit number} of the module's PREFIX_NAME constants, in order."""
    return {
        name[len(prefix) :]: _bit(value, name)
        for name, value in vars(module).items()
        if name.startswith(prefix) and isinstance(value, int)
    }


def _tables() -> tuple[dict[str, int], dict[str, int], dict[str, int], dict[str, int]]:
    fw = firmware_faults()
    faults = {name: _bit(getattr(fw, name), name) for name in fw.NAMES}
    warnings = {name: _bit(getattr(fw, "W_" + name), "W_" + name) for name in fw.WARNING_NAMES}
    flags = {_FLAG_RENAMES.get(k, k): v for k, v in _prefixed(fw, "F_").items()}
    return faults, warnings, flags, _prefixed(fw, "BOOT_")


FAULT_BITS, WARNING_BITS, FLAG_BITS, BOOT_FLAG_BITS = _tables()
"""Name -> bit number: faults (STATE faults/latched), warnings, STATE flags, boot flags."""


def names(bits: int, table: dict[str, int]) -> tuple[str, ...]:
    """Names of the set bits in `bits`, lowest bit first; unknown bits as "BIT<n>"."""
    known = {bit: name for name, bit in table.items()}
    return tuple(known.get(b, f"BIT{b}") for b in range(bits.bit_length()) if bits >> b & 1)

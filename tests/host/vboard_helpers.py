"""Shared pieces of the virtual-board tests: a tiny stand-in firmware and a REPL talker."""

from __future__ import annotations

from pathlib import Path

from host.link import SerialLink

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"

BOOT_PY = "print('boot ran')\n"
# Stands in for the real firmware: says it ran, leaves a global for the REPL,
# and soft-resets once when a flag file asks it to.
MAIN_PY = """\
import os
print('main ran')
answer = 41
try:
    os.stat('reset_once')
    os.remove('reset_once')
    import machine
    machine.soft_reset()
except OSError:
    pass
"""


def write_tiny_firmware(flash: Path) -> None:
    flash.mkdir(parents=True, exist_ok=True)
    (flash / "boot.py").write_text(BOOT_PY)
    (flash / "main.py").write_text(MAIN_PY)


async def expect(link: SerialLink, ending: bytes, timeout_s: float = 10.0) -> bytes:
    data = await link.read_until(ending, timeout_s)
    assert data.endswith(ending), f"waited for {ending!r}, got {data!r}"
    return data

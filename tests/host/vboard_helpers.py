"""Shared pieces of the virtual-board tests: a tiny stand-in firmware and a REPL talker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from host.link import SerialLink
from host.vboard import VirtualBoard

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
PROMPT = b"\r\n>>> "

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


@asynccontextmanager
async def powered_board(flash: Path) -> AsyncIterator[tuple[VirtualBoard, SerialLink]]:
    """A virtual board of `flash`, its port opened before power-on (pyserial flushes the
    input on open, as a host opening a real board's port after it booted misses what it
    printed), then powered; stopped on the way out."""
    vb = VirtualBoard(flash)
    await vb.start(powered=False)
    try:
        async with await SerialLink.open(vb.port) as link:
            await vb.power_on()
            yield vb, link
    finally:
        await vb.stop()

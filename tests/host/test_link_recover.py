"""recover_firmware(): a board left at its REPL, in its raw REPL or in a loop comes back.

Real firmware on a real virtual board, driven over real pyserial (the
function is synchronous; these tests run it in a thread so the board's
supervisor keeps running on the event loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import serial

from host.link import SerialLink
from host.link.recover import RecoveryError, recover_firmware
from host.protocol.client import BmsClient
from host.vboard import VirtualBoard
from host.vboard.provision import provision_flash
from tests.host.vboard_helpers import RAW_BANNER, expect, write_tiny_firmware

PROMPT = b"\r\n>>> "


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[VirtualBoard]:
    """A board running the real firmware (its BOOT frame seen)."""
    flash = tmp_path / "flash"
    provision_flash(flash, None)
    vb = VirtualBoard(flash)
    await vb.start(powered=False)
    try:
        async with await SerialLink.open(vb.port) as link:
            await vb.power_on()
            await BmsClient(link).wait_boot(20.0)
        yield vb
    finally:
        await vb.stop()


async def at_repl(board: VirtualBoard) -> SerialLink:
    """The firmware left for the friendly REPL (ENTER_REPL), the link still open."""
    link = await SerialLink.open(board.port)
    await BmsClient(link, timeout_s=5.0).enter_repl()
    link.write(b"\r")
    await expect(link, PROMPT)
    return link


async def recover(board: VirtualBoard, **kwargs: float):
    return await asyncio.to_thread(recover_firmware, board.port, **kwargs)


async def assert_serves_frames(board: VirtualBoard) -> None:
    async with await SerialLink.open(board.port) as link:
        hello = await BmsClient(link, timeout_s=5.0).hello()
    assert hello.board_name == "virtual"


async def test_a_running_firmware_is_left_alone(board: VirtualBoard) -> None:
    result = await recover(board)
    assert result.found == "firmware" and result.boot is None
    assert board.boots == 1  # not reset
    await assert_serves_frames(board)


async def test_from_the_friendly_repl(board: VirtualBoard) -> None:
    link = await at_repl(board)
    link.write(b"half_typed = (")  # a line in progress, as a person may leave it
    await link.close()
    result = await recover(board)
    assert result.found == "REPL" and result.boot is not None
    assert result.boot.board_name == "virtual" and board.boots == 2
    await assert_serves_frames(board)


async def test_from_the_raw_repl(board: VirtualBoard) -> None:
    link = await at_repl(board)
    link.write(b"\x01")
    await expect(link, RAW_BANNER + b">")
    link.write(b"print('never run')")  # a raw-REPL command without its Ctrl-D
    await link.close()
    result = await recover(board)
    assert result.found == "REPL" and result.boot is not None
    assert b"never run" not in result.transcript  # Ctrl-C dropped it (the raw REPL has no echo)
    await assert_serves_frames(board)


async def test_from_a_loop_at_the_friendly_repl(board: VirtualBoard) -> None:
    link = await at_repl(board)
    link.write(b"while True: pass\r")
    await expect(link, b"while True: pass\r\n")
    await link.close()
    result = await recover(board)
    assert result.found == "running code" and result.boot is not None
    assert board.crashes == 0  # interrupted, not killed
    await assert_serves_frames(board)


async def test_from_a_loop_run_by_the_raw_repl(board: VirtualBoard) -> None:
    link = await at_repl(board)
    link.write(b"\x01")
    await expect(link, RAW_BANNER + b">")
    link.write(b"while True: pass\x04")  # what `mpremote exec` leaves behind when killed
    await expect(link, b"OK")
    await link.close()
    result = await recover(board)
    assert result.found == "running code" and result.boot is not None
    await assert_serves_frames(board)


async def test_from_an_abandoned_raw_paste(board: VirtualBoard) -> None:
    link = await at_repl(board)
    link.write(b"\x01")
    await expect(link, RAW_BANNER + b">")
    link.write(b"\x05A\x01")
    assert (await link.read(2, 5.0))[:1] == b"R"
    link.write(b"x = 1\n")  # and never the Ctrl-D
    await link.close()
    result = await recover(board)
    assert result.boot is not None
    await assert_serves_frames(board)


async def test_an_open_pyserial_port_is_used_as_is(board: VirtualBoard) -> None:
    link = await at_repl(board)
    await link.close()

    def with_port() -> str:
        with serial.Serial(board.port, 115200, exclusive=True) as port:
            return recover_firmware(port).found

    assert await asyncio.to_thread(with_port) == "REPL"
    await assert_serves_frames(board)


async def test_a_loop_that_disabled_ctrl_c_is_reported(board: VirtualBoard) -> None:
    link = await at_repl(board)
    # One REPL statement: each new one would get Ctrl-C back, as pyexec gives it on a board.
    link.write(
        b"import micropython; micropython.kbd_intr(-1); print('looping'); exec('while 1: pass')\r"
    )
    await expect(link, b"looping\r\n")
    await link.close()
    with pytest.raises(RecoveryError, match="no REPL answered"):
        await recover(board, repl_timeout_s=2.0)


async def test_a_board_without_firmware_is_reported(tmp_path: Path) -> None:
    write_tiny_firmware(tmp_path / "flash")  # main.py prints and ends: no BOOT frame
    async with VirtualBoard(tmp_path / "flash") as vb:
        with pytest.raises(RecoveryError, match="no BOOT frame") as err:
            await recover(vb, boot_timeout_s=3.0)
    assert "main ran" in str(err.value)

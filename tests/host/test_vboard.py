"""The virtual board: REPLs, soft resets and power cycles over its real pseudo-terminal."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from host.link import SerialLink
from host.vboard import VirtualBoard
from tests.host.vboard_helpers import RAW_BANNER, expect, write_tiny_firmware

PROMPT = b"\r\n>>> "


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[VirtualBoard]:
    """A virtual board with its port made but not yet powered: `link` powers it up."""
    write_tiny_firmware(tmp_path / "flash")
    vb = VirtualBoard(tmp_path / "flash")
    await vb.start(powered=False)
    try:
        yield vb
    finally:
        await vb.stop()


@pytest.fixture
async def link(board: VirtualBoard) -> AsyncIterator[SerialLink]:
    # Open first, then power up: pyserial flushes the input on open, as a host opening a
    # real board's port after it booted misses what it printed.
    async with await SerialLink.open(board.port) as lk:
        await board.power_on()
        yield lk


async def test_power_up_runs_boot_then_main_then_repl(board: VirtualBoard, link: SerialLink):
    out = await expect(link, b">>> ")
    assert out.index(b"boot ran") < out.index(b"main ran") < out.index(b"MicroPython v")
    assert board.port.startswith("/dev/pts/")


async def test_friendly_repl_evaluates_in_main_globals(link: SerialLink):
    await expect(link, b">>> ")
    link.write(b"answer + 1\r")
    assert b"42\r\n" in await expect(link, PROMPT)
    link.write(b"for i in range(3):\r    print(i * 10)\r\r")
    out = await expect(link, PROMPT)
    assert b"... " in out and b"0\r\n10\r\n20\r\n" in out
    link.write(b"1/0\r")
    out = await expect(link, PROMPT)
    assert b'File "<stdin>", line 1' in out and b"ZeroDivisionError" in out
    assert b"vboard_rom" not in out  # the ROM's own frames are not the user's business
    link.write(b"undefined_na\x7f\x7fme_x\x03")  # edit, then Ctrl-C cancels the line
    await expect(link, PROMPT)
    link.write(b"x = 'p\xc3\xa9'\rprint(len(x))\r")  # UTF-8 input
    assert b"2\r\n" in await expect(link, b"2\r\n>>> ")


async def test_paste_mode(link: SerialLink):
    await expect(link, b">>> ")
    link.write(b"\x05def f():\r    return 7\r\rprint(f() * 6)\x04")
    assert b"42\r\n" in await expect(link, PROMPT)


async def test_ctrl_d_at_friendly_prompt_reruns_boot_and_main(board: VirtualBoard, link):
    await expect(link, b">>> ")
    link.write(b"answer = 5\r")
    await expect(link, PROMPT)
    link.write(b"\x04")
    out = await expect(link, b">>> ")
    assert b"MPY: soft reboot\r\n" in out
    assert out.index(b"boot ran") < out.index(b"main ran")
    link.write(b"answer\r")
    assert b"41\r\n" in await expect(link, PROMPT)  # main.py ran again, RAM was cleared
    assert board.boots == 2


async def test_raw_repl_exec_and_soft_reset_skip_main(link: SerialLink):
    await expect(link, b">>> ")
    link.write(b"\r\x01")
    await expect(link, RAW_BANNER + b">")
    link.write(b"print(answer)\x04")
    assert await expect(link, b"\x04>") == b"OK41\r\n\x04\x04>"
    link.write(b"nope\x04")
    out = await expect(link, b"\x04>")
    assert out.startswith(b"OK\x04Traceback") and b"NameError" in out
    link.write(b"\x04")  # soft reset from the raw REPL: boot.py only, raw REPL again
    out = await expect(link, RAW_BANNER + b">")
    assert b"soft reboot\r\n" in out and b"boot ran" in out and b"main ran" not in out
    link.write(b"print('answer' in globals())\x04")
    assert b"False" in await expect(link, b"\x04>")
    link.write(b"\x02")  # Ctrl-B: back to the friendly REPL
    await expect(link, b">>> ")


async def test_raw_paste_mode_flow_control(link: SerialLink):
    await expect(link, b">>> ")
    link.write(b"\r\x01")
    await expect(link, RAW_BANNER + b">")
    link.write(b"\x05A\x01")
    header = await link.read_until(b"", 0.5)
    header += await link.read(4 - len(header), 2.0)
    assert header[:2] == b"R\x01"
    window = int.from_bytes(header[2:4], "little")
    code = ("x = 0\n" + "x += 1\n" * (window // 7 + 50) + "print(x)\n").encode()
    sent, credit = 0, window
    while sent < len(code):
        if credit == 0:
            assert await link.read(1, 2.0) == b"\x01"
            credit += window
        chunk = code[sent : sent + credit]
        link.write(chunk)
        sent += len(chunk)
        credit -= len(chunk)
    link.write(b"\x04")
    out = await expect(link, b"\x04>")
    n = window // 7 + 50
    assert out.endswith(f"\x04{n}\r\n\x04\x04>".encode())


async def test_main_py_soft_reset_restarts_without_losing_the_port(tmp_path: Path):
    flash = tmp_path / "flash"
    write_tiny_firmware(flash)
    (flash / "reset_once").write_text("")
    vb = VirtualBoard(flash)
    await vb.start(powered=False)
    try:
        async with await SerialLink.open(vb.port) as link:
            await vb.power_on()
            out = await expect(link, b">>> ")
            assert out.count(b"main ran") == 2 and b"MPY: soft reboot" in out
            assert vb.boots == 2 and vb.last_exit == 94
            assert not (flash / "reset_once").exists()
    finally:
        await vb.stop()


async def test_power_cut_loses_ram_keeps_flash_and_port(board: VirtualBoard, link):
    await expect(link, b">>> ")
    port = board.port
    link.write(b"open('kept.txt', 'w').write('flash')\r")
    await expect(link, PROMPT)
    link.write(b"answer = 7\r")
    await expect(link, PROMPT)
    await board.power_cut()
    assert not board.powered
    assert await link.read(100, 0.2) == b""  # a board without power says nothing
    await board.power_on()
    out = await expect(link, b">>> ")
    assert b"soft reboot" not in out and b"main ran" in out
    link.write(b"answer, open('kept.txt').read()\r")
    assert b"(41, 'flash')" in await expect(link, PROMPT)
    assert board.port == port
    assert (board.flash_dir / "kept.txt").read_text() == "flash"


async def test_forced_soft_reset_and_crash_restart(board: VirtualBoard, link):
    await expect(link, b">>> ")
    await board.soft_reset()
    assert b"MPY: soft reboot" in await expect(link, b">>> ")
    proc = board._proc
    assert proc is not None
    os.kill(proc.pid, 9)  # the interpreter dies as a hard fault would: restarted
    out = await expect(link, b">>> ")
    assert b"main ran" in out and board.crashes == 1


async def test_flash_paths_are_rooted_in_the_folder(board: VirtualBoard, link):
    await expect(link, b">>> ")
    link.write(b"import os; os.mkdir('/lib'); open('/lib/m.py', 'w').write('v = 3')\r")
    await expect(link, PROMPT)
    link.write(b"import m; m.v, os.getcwd(), sorted(os.listdir('/'))\r")
    out = await expect(link, PROMPT)
    assert b"(3, '/', ['boot.py', 'lib', 'main.py'])" in out
    assert (board.flash_dir / "lib" / "m.py").read_text() == "v = 3"

"""The virtual board: REPLs, soft resets and power cycles over its real pseudo-terminal."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from host.link import SerialLink
from host.vboard import VirtualBoard
from tests.host.vboard_helpers import (
    PROMPT,
    RAW_BANNER,
    expect,
    powered_board,
    write_tiny_firmware,
)


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
    header = b""
    while len(header) < 4:  # the 4-byte answer may come in pieces
        chunk = await link.read(4 - len(header), 10.0)
        assert chunk, f"raw-paste header incomplete: {header!r}"
        header += chunk
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
    async with powered_board(flash) as (vb, link):
        out = await expect(link, b">>> ")
        assert out.count(b"main ran") == 2 and b"MPY: soft reboot" in out
        assert vb.boots == 2 and vb.last_exit == 94
        assert not (flash / "reset_once").exists()


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


async def test_forced_soft_reset_and_crash_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="host.vboard")
    write_tiny_firmware(tmp_path / "flash")
    vb = VirtualBoard(tmp_path / "flash")
    await vb.start(powered=False)
    async with await SerialLink.open(vb.port) as link:
        await vb.power_on()
        await expect(link, b">>> ")
        await vb.soft_reset()
        assert b"MPY: soft reboot" in await expect(link, b">>> ")
        # A hard fault: the interpreter dies of SIGSEGV and restarts as after a watchdog reset.
        link.write(b"import uctypes; uctypes.bytearray_at(8, 1)[0] = 1\r")
        out = await expect(link, b">>> ", 20.0)
        assert b"main ran" in out and vb.crashes == 1 and vb.last_exit == -11
        link.write(b"\x04")  # and a soft reset asked for at the REPL
        await expect(link, b">>> ")
    await vb.stop()
    logged = [r.getMessage().split(": ", 1) for r in caplog.records]
    assert {who for who, _ in logged} == {f"virtual board on {link.port}"}
    assert [what for _, what in logged] == [
        f"flash folder {vb.flash_dir.resolve()}",
        "power on",
        "soft reset (forced)",
        "interpreter ended (killed by SIGSEGV); restarting in 0.5 s",
        "soft reset (status 94)",
        "power cut",
        "stopped",
    ]


async def test_flash_paths_are_rooted_in_the_folder(board: VirtualBoard, link):
    await expect(link, b">>> ")
    link.write(b"import os; os.mkdir('/lib'); open('/lib/m.py', 'w').write('v = 3')\r")
    await expect(link, PROMPT)
    link.write(b"import m; m.v, os.getcwd(), sorted(os.listdir('/'))\r")
    out = await expect(link, PROMPT)
    assert b"(3, '/', ['boot.py', 'lib', 'main.py'])" in out
    assert (board.flash_dir / "lib" / "m.py").read_text() == "v = 3"


async def test_flash_operations_behave_as_on_a_board(board: VirtualBoard, link: SerialLink):
    await expect(link, b">>> ")
    steps = [
        "import os; os.mkdir('d'); os.chdir('d'); open('a.txt', 'w').write('12345')",
        "os.rename('a.txt', '../b.txt'); os.getcwd(), os.listdir(), sorted(os.listdir('/'))",
        "open('/c.txt', 'w').write('x'); os.rename('/c.txt', '/b.txt'); open('/b.txt').read()",
        "os.chdir('..'); [e for e in os.ilistdir() if e[0] == 'b.txt']",
        "os.remove('b.txt'); os.rmdir('d'); os.chdir('/'); sorted(os.listdir())",
        "os.chdir('boot.py')",
    ]
    out = b""
    for line in steps:
        link.write(line.encode() + b"\r")
        out += await expect(link, PROMPT)
    assert b"('/d', [], ['b.txt', 'boot.py', 'd', 'main.py'])" in out
    assert b"'x'" in out  # renamed over an existing file
    assert b"[('b.txt', 32768, " in out and b", 1)]" in out  # ilistdir gives the size
    assert b"['boot.py', 'main.py']" in out
    assert b"OSError: 20" in out  # not a directory
    assert sorted(p.name for p in board.flash_dir.iterdir()) == ["boot.py", "main.py"]


async def test_ctrl_c_interrupts_code_at_the_friendly_repl(board: VirtualBoard, link: SerialLink):
    await expect(link, b">>> ")
    link.write(b"n = 0\rwhile True:\r    n += 1\r    if n == 1: print('looping')\r\r")
    await expect(link, b"looping\r\n")  # the loop runs (and Ctrl-C is armed)
    link.write(b"\x03")
    out = await expect(link, PROMPT)
    assert b"KeyboardInterrupt" in out
    link.write(b"n > 0, answer\r")  # the same interpreter: RAM kept
    assert b"(True, 41)" in await expect(link, PROMPT)
    # input() waiting for a line is interrupted too
    link.write(b"input('? ')\r")
    await expect(link, b"? ")
    link.write(b"\x03")
    assert b"KeyboardInterrupt" in await expect(link, PROMPT)
    assert board.boots == 1 and board.crashes == 0


async def test_ctrl_c_interrupts_code_run_by_the_raw_repl(board: VirtualBoard, link: SerialLink):
    await expect(link, b">>> ")
    link.write(b"\r\x01")
    await expect(link, RAW_BANNER + b">")
    link.write(b"print('start')\nwhile True: pass\x04")
    await expect(link, b"OKstart\r\n")
    link.write(b"\x03")
    out = await expect(link, b"\x04>")
    assert out.startswith(b"\x04Traceback") and b"KeyboardInterrupt" in out
    link.write(b"print(answer)\x04")
    assert await expect(link, b"\x04>") == b"OK41\r\n\x04\x04>"


async def test_kbd_intr_sets_or_disables_the_interrupt_character(link: SerialLink):
    await expect(link, b">>> ")
    # Disabled: 0x03 is data for the code that reads it, as the firmware's frames need.
    link.write(
        b"import micropython, sys; micropython.kbd_intr(-1); print('off'); "
        b"sys.stdin.buffer.read(4)\r"
    )
    await expect(link, b"off\r\n")
    link.write(b"\x03a\x03b")
    assert b"b'\\x03a\\x03b'" in await expect(link, PROMPT)
    # Another character: it interrupts instead, and 0x03 is data.
    link.write(
        b"micropython.kbd_intr(0x18); print('set'); print(sys.stdin.buffer.read(1)); "
        b"exec('while 1: pass')\r"
    )
    await expect(link, b"set\r\n")  # sent once the character is set, not before
    link.write(b"\x03")
    await expect(link, b"b'\\x03'\r\n")
    link.write(b"\x18")
    assert b"KeyboardInterrupt" in await expect(link, PROMPT)


async def test_a_busy_firmware_with_ctrl_c_disabled_is_not_stopped(tmp_path: Path):
    # A firmware computing (not reading) with kbd_intr(-1): a 0x03 on the line must not
    # interrupt or kill it; the byte waits for whoever reads next.
    flash = tmp_path / "flash"
    write_tiny_firmware(flash)
    (flash / "main.py").write_text(
        "import micropython, sys\n"
        "micropython.kbd_intr(-1)\n"
        "print('busy')\n"
        "n = 0\n"
        "while n < 3000000:\n"
        "    n += 1\n"
        "print('done', sys.stdin.buffer.read(1))\n"
        "micropython.kbd_intr(3)\n"
    )
    async with powered_board(flash) as (vb, link):
        await expect(link, b"busy\r\n")
        link.write(b"\x03\x03")
        out = await expect(link, b">>> ", 60.0)
        assert b"done b'\\x03'" in out and b"KeyboardInterrupt" not in out
        assert vb.crashes == 0 and vb.boots == 1


async def test_input_that_is_not_utf8_is_a_syntax_error(board: VirtualBoard, link: SerialLink):
    await expect(link, b">>> ")
    link.write(b"\xa5\xff\r")
    out = await expect(link, PROMPT)
    link.write(b"\x05\xff\xfe\x04")  # paste mode
    out += await expect(link, PROMPT)
    link.write(b"\r\x01\xc3\x28\x04")  # raw REPL
    out += await expect(link, b"\x04>")
    link.write(b"\x02answer\r")
    out += await expect(link, b"41\r\n>>> ")
    assert out.count(b"SyntaxError: invalid UTF-8") == 3
    for leak in (str(board.flash_dir), "vboard_rom", "/rom.py", "/home", "/usr", "/tmp"):
        assert leak.encode() not in out
    assert board.boots == 1 and board.crashes == 0


async def test_a_board_whose_host_ended_stops(tmp_path: Path):
    # The supervisor's process ends without stop(): its pty goes with it, and the board
    # process must not live on (as a USB board loses power with its cable).
    write_tiny_firmware(tmp_path / "flash")
    script = (
        "import asyncio, os, sys\n"
        "from host.vboard import VirtualBoard\n"
        "async def main():\n"
        f"    vb = VirtualBoard({str(tmp_path / 'flash')!r})\n"
        "    await vb.start()\n"
        "    print(vb._proc.pid, flush=True)\n"
        "    await asyncio.sleep(0.5)\n"
        "    os._exit(0)\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    pid = int(out)
    for _ in range(600):
        if not _alive(pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"board process {pid} still runs after its host ended")


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"

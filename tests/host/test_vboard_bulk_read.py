"""Bulk reads on the virtual board: code that runs with no interrupt character may ask for a
non-blocking stdin (micropython.nonblocking_stdin, the ROM's own), and the firmware then
reads what the line holds in one read (host/vboard/jail.py, main.Console.readinto).
Real MicroPython in the real jail, over a real pty.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

from host.link import SerialLink
from host.protocol.client import BmsClient
from host.protocol.codec import FrameType, encode_frame, encode_sample
from host.vboard import VirtualBoard
from host.vboard.provision import provision_flash
from tests.host.vboard_helpers import PROMPT, expect, powered_board, write_tiny_firmware

# The firmware's own main(), with its Console's stdin reads counted (main.py is the
# firmware's, imported as fw_main), and the heap allocated from the 10th to the 30th read
# (the collector off): SAMPLE frames only, the host sends 40 after two other requests and
# each frame takes at least one read. Written to the flash when the loop ends.
PROBE_MAIN = """\
import gc
import micropython
import fw_main

app, io, board = fw_main.setup()
micropython.kbd_intr(-1)
line = fw_main.Console()
count = [0, 0]  # stdin reads, bytes read
heap = [0, 0]  # gc.mem_alloc() at the 10th and the 30th read
stdin_readinto = line.stdin_readinto


def counted(buf, n):
    k = stdin_readinto(buf, n)
    count[0] += 1
    count[1] += k or 0
    if count[0] == 10:
        heap[0] = gc.mem_alloc()
    elif count[0] == 30:
        heap[1] = gc.mem_alloc()
    return k


line.stdin_readinto = counted
gc.collect()
gc.disable()
try:
    action = fw_main.serve(app, io, board, line)
finally:
    app.bms.shutdown()
    io.open_all()
    micropython.kbd_intr(3)
    gc.enable()
bulk = getattr(line, "bulk", 0)
with open("probe.json", "w") as f:
    f.write('{"bulk": %d, "reads": %d, "bytes": %d, ' % (bulk, count[0], count[1]))
    f.write('"alloc": %d}' % (heap[1] - heap[0]))
"""

SAMPLES = 40


async def test_a_non_blocking_stdin_is_granted_only_with_no_interrupt_character(
    tmp_path: Path,
) -> None:
    flash = tmp_path / "flash"
    write_tiny_firmware(flash)
    async with powered_board(flash) as (_, link):
        await expect(link, b">>> ")
        await _grant_and_revoke(link)


async def _grant_and_revoke(link: SerialLink) -> None:
    # With Ctrl-C set the request is refused: stdin keeps blocking.
    link.write(b"import micropython, sys; b = bytearray(4); micropython.nonblocking_stdin()\r")
    assert b"\r\nFalse\r\n" in await expect(link, PROMPT)
    # With none it is granted: an empty line gives None at once, no wait.
    link.write(
        b"micropython.kbd_intr(-1); g = micropython.nonblocking_stdin(); "
        b"print(g, sys.stdin.buffer.readinto(b, 4))\r"
    )
    assert b"\r\nTrue None\r\n" in await expect(link, PROMPT)
    # Taken back when that code ended: the next code's read waits for its bytes.
    link.write(b"micropython.kbd_intr(-1); print('off'); sys.stdin.buffer.read(3)\r")
    await expect(link, b"off\r\n")
    await asyncio.sleep(0.2)
    link.write(b"\x03ab")
    assert b"b'\\x03ab'" in await expect(link, PROMPT)
    # And by kbd_intr(c): blocking again, and Ctrl-C interrupts.
    link.write(
        b"micropython.kbd_intr(-1); g = micropython.nonblocking_stdin(); "
        b"micropython.kbd_intr(3); print(g, 'set'); sys.stdin.buffer.read(1)\r"
    )
    await expect(link, b"True set\r\n")
    await asyncio.sleep(0.2)
    link.write(b"\x03")
    assert b"KeyboardInterrupt" in await expect(link, PROMPT)


async def test_the_firmware_reads_frames_in_bulk_and_a_cut_frame_does_not_block(
    tmp_path: Path,
) -> None:
    flash = tmp_path / "flash"
    provision_flash(flash, None)
    shutil.copy(flash / "main.py", flash / "fw_main.py")
    (flash / "main.py").write_text(PROBE_MAIN)
    vb = VirtualBoard(flash)
    await vb.start(powered=False)
    try:
        async with await SerialLink.open(vb.port) as link:
            client = BmsClient(link, timeout_s=5.0)
            await vb.power_on()
            await client.wait_boot(20.0)
            hello = await client.hello()
            cells = [3700] * hello.n_cells
            temps = [250] * hello.n_temps
            timeout_ms = (await client.config_read())["link_timeout_ms"]
            frame_bytes = 0
            sample = encode_sample(0, cells, 500, temps)
            for k in range(SAMPLES):
                state = await client.sample(1000 * (k + 1), cells, 500, temps)
                assert "DSG_ON" in state.flag_names
                frame_bytes += len(encode_frame(FrameType.SAMPLE, 0, sample))
            # A frame cut short: dropped by the stall timeout, the next one is served.
            cut = encode_frame(FrameType.SAMPLE, 200, encode_sample(41000, cells, 500, temps))
            link.write(cut[: len(cut) // 2])
            await asyncio.sleep(0.3)
            state = await client.sample(42000, cells, 500, temps)
            assert "DSG_ON" in state.flag_names and state.samples == SAMPLES + 1
            # Cut short again and then silence: the link watchdog still opens the switches.
            link.write(cut[: len(cut) // 2])
            await asyncio.sleep(timeout_ms / 1000 + 0.5)
            state = await client.get_state()
            assert "LINK_LOST" in state.faults, state.faults
            assert "DSG_ON" not in state.flag_names and "CHG_ON" not in state.flag_names
            await client.enter_repl()
            link.write(b"\r")
            await expect(link, PROMPT)
            probe = json.loads((flash / "probe.json").read_text())
            assert probe["bulk"] == 1, probe
            assert probe["bytes"] >= frame_bytes, (probe, frame_bytes)
            # Byte by byte this would be one read a byte; in bulk it is about one a frame.
            requests = SAMPLES + 7  # hello, config_read, get_state, enter_repl, cuts
            assert probe["reads"] <= 2 * requests, probe
            assert probe["alloc"] == 0, probe  # nothing allocated per SAMPLE frame
            print(
                f"\nbulk reads: {probe['bytes']} bytes of {requests} requests"
                f" in {probe['reads']} reads"
            )
            # The REPL after framing mode: stdin blocks again, Ctrl-C interrupts.
            link.write(b"print(6 * 7)\r")
            await expect(link, b"42" + PROMPT)
            link.write(b"while True: pass\r\r")
            await asyncio.sleep(0.3)
            link.write(b"\x03")
            await expect(link, b"KeyboardInterrupt")
            link.write(b"print(6 * 8)\r")
            await expect(link, b"48" + PROMPT)
        # mpremote too.
        mpremote = Path(sys.executable).parent / "mpremote"
        proc = await asyncio.create_subprocess_exec(
            str(mpremote), "connect", vb.port, "exec", "print('at the REPL')",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0 and b"at the REPL" in out, out
    finally:
        await vb.stop()

"""The firmware's own frame rate, on each target, against a trivial echo on the same board.

`firmware_frames_per_s(target)` runs the real firmware on a virtual board of `target` and
drives it like the lockstep emulator's fastest possible host: it only writes pre-encoded
SAMPLE frames and reads the STATE replies (blocking fd I/O, one frame in flight), so what is
measured is the firmware's frame path (read, parse, CRC, App, Bms.step, encode, write) and
the line under it. The same is done for a trivial MicroPython echo on the same kind of board
(it reads a request of the SAMPLE frame's size and writes a reply of the STATE frame's
size, knowing both sizes: no parsing, no poll), the floor any firmware could reach.

- unix-64 (the PyPI interpreter) and unix-32 (single-precision 32-bit build, RP2040 heap):
  `host.vboard.VirtualBoard`, the firmware from source as `sisnbms emulate` runs it. Wall
  time of the lockstep loop on the host: frames/s and us per frame.
- qemu-cortex-m0: `QemuBoard` flashed with the .mpy firmware (armv6m, as `sisnbms flash`
  installs it) under `-icount shift=0`: the emulated clock advances 1 ns per instruction,
  so the board's time.ticks_us() counts instructions. Waiting for the host is not the
  firmware's work (and in QEMU it is a busy loop whose length is the host's latency), so a
  harness at the board's REPL runs main.setup() and main.serve() with a Console that times
  its waits for the next frame; the rest is the firmware's work per frame. Two sessions of
  different lengths are subtracted, so HELLO, ENTER_REPL and the BOOT frame drop out.
  Instructions are converted to time at the RP2040's 125 MHz with one instruction per cycle
  (host.micropython.measure.ASSUMED_CPI: real time is this times the CPI, about 1.3-1.6).

The machine may be shared: compare firmware versions with interleaved runs (see
docs/internals.md), not with runs far apart in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import struct
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from host.micropython.measure import (
    ASSUMED_CPI,
    RP2040_CLOCK_HZ,
    RP2040_HEAP,
    UNIX64,
)
from host.micropython.targets import QEMU_TARGET, UNIX32_TARGET
from host.protocol.codec import HEADER_LEN, FrameType, encode_frame, encode_sample

TARGETS = (UNIX64, UNIX32_TARGET, QEMU_TARGET)
_CRC_LEN = 2
_STATE_FRAME = HEADER_LEN + 48 + _CRC_LEN  # the echo's reply: a STATE frame's size
_IO_TIMEOUT_S = 20.0


# ------------------------------------------------------------------ frames and the line


def sample_frames(n_cells: int, count: int, first_seq: int) -> list[bytes]:
    """`count` SAMPLE frames, 1 s apart, seq from `first_seq`: a slow discharge at rest level."""
    frames = []
    for k in range(count):
        cells = [3700 + (k + i) % 5 for i in range(n_cells)]
        payload = encode_sample(1000 * (k + 1), cells, 500, [250])
        frames.append(encode_frame(FrameType.SAMPLE, (first_seq + k) & 0xFFFF, payload))
    return frames


def read_exactly(fd: int, n: int, timeout_s: float = _IO_TIMEOUT_S) -> bytes:
    """n bytes from a blocking-mode fd, or TimeoutError naming what came."""
    data = b""
    deadline = time.monotonic() + timeout_s
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError(f"{len(data)} of {n} bytes: {data[-64:]!r}")
        data += os.read(fd, n - len(data))
    return data


def read_frame(fd: int, timeout_s: float = _IO_TIMEOUT_S) -> tuple[int, int, bytes]:
    """(type, seq, payload) of the next frame on the line, skipping bytes before its sync."""
    while read_exactly(fd, 1, timeout_s) != b"\xa5":
        pass
    head = read_exactly(fd, HEADER_LEN - 1, timeout_s)
    _version, ftype, seq, length = struct.unpack("<BBHH", head)
    body = read_exactly(fd, length + _CRC_LEN, timeout_s)
    return ftype, seq, body[:length]


def ask(fd: int, ftype: int, seq: int, expect: int) -> bytes:
    os.write(fd, encode_frame(ftype, seq))
    while True:
        rtype, rseq, payload = read_frame(fd)
        if rseq == seq and rtype == expect:
            return payload


def lockstep(fd: int, frames: Sequence[bytes]) -> float:
    """Write each frame, read its reply (a STATE); the wall seconds it took."""
    start = time.perf_counter()
    for frame in frames:
        os.write(fd, frame)
        rtype, _seq, _payload = read_frame(fd)
        if rtype != FrameType.STATE:
            raise RuntimeError(f"a SAMPLE drew a reply of type {rtype:#x}, not STATE")
    return time.perf_counter() - start


def echo_lockstep(fd: int, request: bytes, reply_len: int, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        os.write(fd, request)
        read_exactly(fd, reply_len)
    return time.perf_counter() - start


# ------------------------------------------------------------------ unix virtual boards

_UNIX_ECHO_MAIN = """\
import sys, micropython
micropython.kbd_intr(-1)
inp = sys.stdin.buffer
out = sys.stdout.buffer
req = bytearray(REQUEST)
rep = bytes(REPLY)
out.write(b"ECHO\\n")
while True:
    if inp.readinto(req) != REQUEST:
        raise SystemExit
    out.write(rep)
"""


def _interpreter(target: str) -> tuple[Path, str]:
    """(unix-port interpreter, heap) of a unix target."""
    if target == UNIX64:
        from host.interpreter import find_micropython

        return find_micropython(), "1M"
    from host.micropython.measure import _build

    return _build(target).path, RP2040_HEAP


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *_descendants(int(child))]
    return found


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc; 0 where that is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _board_pid(before: set[int]) -> int | None:
    """The board's interpreter: the child of the jail (this process's child) that has none.
    Processes in `before` were there before the board (a campaign's fork server, say)."""
    found = [p for p in _descendants(os.getpid()) if p not in before]
    leaves = [p for p in found if not _descendants(p)]
    return leaves[0] if len(leaves) == 1 else None


def _blocks(count: int, quick: bool) -> list[int]:
    return [count // 5] * 5 if not quick else [count // 10] * 2


async def _unix_firmware(interpreter: Path, heap: str, flash: Path, quick: bool) -> dict:
    import serial

    from host.vboard import VirtualBoard
    from host.vboard.provision import provision_flash

    provision_flash(flash, None)
    before = set(_descendants(os.getpid()))
    async with VirtualBoard(flash, interpreter, heap=heap) as board:
        port = serial.Serial(board.port, 115200, timeout=0)
        try:
            fd = port.fileno()
            hello = await asyncio.to_thread(ask, fd, FrameType.HELLO, 1, FrameType.HELLO_REPLY)
            n_cells = hello[1]
            sizes = _blocks(5000, quick)
            frames = sample_frames(n_cells, 100 + sum(sizes), 2)
            warm, rest = frames[:100], frames[100:]
            await asyncio.to_thread(lockstep, fd, warm)
            pid = _board_pid(before)
            cpu0 = _cpu_s(pid) if pid else 0.0
            walls = []
            for size in sizes:
                block, rest = rest[:size], rest[size:]
                walls.append(await asyncio.to_thread(lockstep, fd, block))
            cpu = _cpu_s(pid) - cpu0 if pid else None
            await asyncio.to_thread(
                ask, fd, FrameType.ENTER_REPL, 2 + len(frames), FrameType.ENTER_REPL_REPLY
            )
        finally:
            port.close()
    return _block_rates(sizes, walls) | {
        "n_cells": n_cells,
        "frame_bytes": len(frames[0]),
        "board_cpu_us_per_frame": round(cpu / sum(sizes) * 1e6, 1) if cpu is not None else None,
    }


async def _unix_echo(
    interpreter: Path, heap: str, flash: Path, request: int, quick: bool
) -> dict[str, Any]:
    import serial

    from host.vboard import VirtualBoard

    flash.mkdir(parents=True, exist_ok=True)
    main = _UNIX_ECHO_MAIN.replace("REQUEST", str(request)).replace("REPLY", str(_STATE_FRAME))
    (flash / "main.py").write_text(main)
    before = set(_descendants(os.getpid()))
    board = VirtualBoard(flash, interpreter, heap=heap)
    await board.start(powered=False)
    # the port opens before power-on: pyserial's open flushes its input, banner included
    port = serial.Serial(board.port, 115200, timeout=0)
    try:
        await board.power_on()
        fd = port.fileno()
        await asyncio.to_thread(read_exactly, fd, 5)  # "ECHO\n": the loop runs
        data = bytes(range(request))
        await asyncio.to_thread(echo_lockstep, fd, data, _STATE_FRAME, 100)
        sizes = _blocks(5000, quick)
        pid = _board_pid(before)
        cpu0 = _cpu_s(pid) if pid else 0.0
        walls = []
        for size in sizes:
            walls.append(await asyncio.to_thread(echo_lockstep, fd, data, _STATE_FRAME, size))
        cpu = _cpu_s(pid) - cpu0 if pid else None
    finally:
        port.close()
        await board.stop()
    return _block_rates(sizes, walls) | {
        "request_bytes": request,
        "reply_bytes": _STATE_FRAME,
        "board_cpu_us_per_frame": round(cpu / sum(sizes) * 1e6, 1) if cpu is not None else None,
    }


def _block_rates(sizes: list[int], walls: list[float]) -> dict[str, Any]:
    """Median and best block (the machine may be shared: the best is the least disturbed)."""
    per = sorted(w / n for n, w in zip(sizes, walls, strict=True))
    median = per[len(per) // 2]
    return {
        "frames": sum(sizes),
        "blocks": len(sizes),
        "frames_per_s": round(1 / median, 1),
        "us_per_frame": round(median * 1e6, 2),
        "us_per_frame_best_block": round(per[0] * 1e6, 2),
        "method": "host wall time, lockstep, median of blocks",
    }


def _unix_target(target: str, quick: bool) -> dict[str, Any]:
    interpreter, heap = _interpreter(target)
    with tempfile.TemporaryDirectory(prefix="sisnbms-fwspeed-") as tmp:
        fw = asyncio.run(_unix_firmware(interpreter, heap, Path(tmp) / "fw", quick))
        echo = asyncio.run(
            _unix_echo(interpreter, heap, Path(tmp) / "echo", fw["frame_bytes"], quick)
        )
    return {
        "target": target,
        "firmware": fw,
        "echo": echo,
        "firmware_to_echo": round(fw["frames_per_s"] / echo["frames_per_s"], 3),
    }


# ------------------------------------------------------------------ the QEMU board

# Runs at the board's raw REPL: main.setup(), then main.serve() over the real UART once per
# session the host drives (HELLO, SAMPLEs, ENTER_REPL), with a Console that times its waits
# for the line (ready() with a timeout: the idle wait for the next frame). A wait with no
# timeout (ready(0), once a byte in older firmware) is counted, and what the timing wrapper
# costs per call is measured afterwards on an empty line, so it can be taken out.
_QEMU_FIRMWARE = """
import time, micropython, main
ticks_us = time.ticks_us
td = time.ticks_diff
Console = main.Console
class Timed(Console):
    def __init__(self):
        Console.__init__(self)
        self.idle = 0
        self.calls = 0
    def ready(self, timeout_ms):
        if timeout_ms:
            t0 = ticks_us()
            r = Console.ready(self, timeout_ms)
            self.idle += td(ticks_us(), t0)
            return r
        self.calls += 1
        return Console.ready(self, 0)
app, io, board = main.setup()
micropython.kbd_intr(-1)
out = []
for session in range(SESSIONS):
    line = Timed()
    app.action = 0
    t0 = ticks_us()
    main.serve(app, io, board, line)
    out.append((td(ticks_us(), t0), line.idle, line.calls))
micropython.kbd_intr(3)
app.bms.shutdown()
def cost(f, n):
    t0 = ticks_us()
    for _ in range(n):
        f(0)
    return td(ticks_us(), t0)
line = Timed()
plain = Console()
wrapped = cost(line.ready, 2000) - cost(plain.ready, 2000)
for total, idle, calls in out:
    print("SESSION", total, idle, calls, wrapped)
"""

# The echo's round trip on the board: wait for the request (idle), read it whole (its size is
# known), write the reply; each round trip's work timed alone. QEMU's UART takes in a few
# bytes at a time from the host, and a read that outruns it spins until the next ones come
# (host latency, not work): the least disturbed round trips (the 10th percentile) are
# reported, with the median for comparison.
_QEMU_ECHO = """
import sys, select, time, micropython
from array import array
ticks_us = time.ticks_us
td = time.ticks_diff
inp = sys.stdin.buffer
outp = sys.stdout.buffer
req = bytearray(REQUEST)
rep = bytes(REPLY)
poller = select.poll()
poller.register(sys.stdin, select.POLLIN)
work = array("i", [0] * COUNT)
micropython.kbd_intr(-1)
outp.write(b"ECHO\\n")
for k in range(COUNT):
    for _ in poller.ipoll(-1):
        break
    t0 = ticks_us()
    inp.readinto(req)
    outp.write(rep)
    work[k] = td(ticks_us(), t0)
micropython.kbd_intr(3)
w = sorted(work)
print("ECHO", w[COUNT // 10], w[COUNT // 2])
"""


def _sessions(text: str) -> list[tuple[int, int, int, int]]:
    rows = [line.split()[1:] for line in text.splitlines() if line.startswith("SESSION")]
    return [(int(a), int(b), int(c), int(d)) for a, b, c, d in rows]


def _busy_per_frame(rows: list[tuple[int, int, int, int]], counts: Sequence[int]) -> float:
    """Emulated us of work per frame: the longer session minus the shorter, over the frames
    between them (what both sessions share, their start and end, drops out)."""
    busy = [total - idle - calls * wrapped / 2000 for total, idle, calls, wrapped in rows]
    return (busy[-1] - busy[0]) / (counts[-1] - counts[0])


def _drive_firmware(fd: int, counts: Sequence[int], seen: dict[str, int]) -> None:
    seq = 1
    for count in counts:
        read_frame(fd)  # BOOT: the session runs
        seen["n_cells"] = ask(fd, FrameType.HELLO, seq, FrameType.HELLO_REPLY)[1]
        lockstep(fd, sample_frames(seen["n_cells"], count, seq + 1))
        seq += count + 1
        ask(fd, FrameType.ENTER_REPL, seq, FrameType.ENTER_REPL_REPLY)
        seq += 1


def _drive_echo(fd: int, request: int, count: int) -> None:
    read_exactly(fd, 5)  # "ECHO\n"
    echo_lockstep(fd, bytes(range(request)), _STATE_FRAME, count)


def _on_qemu(script: str, drive: Any) -> str:
    """Run `script` at the QEMU board's raw REPL (icount) while drive(fd) talks to it."""
    from mpremote.transport_serial import SerialTransport

    from host.flash.flasher import request_repl
    from host.micropython.measure import QEMU_BOOT_WAIT_S, _build, _qemu_board

    async def on_board() -> str:
        async with _qemu_board(_build(QEMU_TARGET), icount_shift=0) as qb:
            await request_repl(qb.port, wait_s=QEMU_BOOT_WAIT_S)

            def run() -> str:
                transport = SerialTransport(qb.port, baudrate=115200, timeout=5)
                try:
                    transport.enter_raw_repl(soft_reset=True)
                    transport.exec_raw_no_follow(script)
                    port: Any = transport.serial  # a pyserial Serial
                    drive(port.fileno())
                    out, err = transport.follow(120)
                    if err:
                        raise RuntimeError(err.decode(errors="replace"))
                    return out.decode(errors="replace")
                finally:
                    transport.close()

            return await asyncio.to_thread(run)

    return asyncio.run(on_board())


def _instructions(busy_us: float) -> dict[str, Any]:
    # -icount shift=0: 1 ns of emulated time per instruction
    instructions = busy_us * 1000
    return {
        "instructions_per_frame": round(instructions),
        "us_per_frame_at_125MHz": round(instructions * ASSUMED_CPI / RP2040_CLOCK_HZ * 1e6, 1),
        "frames_per_s_at_125MHz": round(RP2040_CLOCK_HZ / (instructions * ASSUMED_CPI), 1),
    }


def _qemu_target(quick: bool) -> dict[str, Any]:
    counts = (20, 120) if quick else (50, 550)
    seen: dict[str, int] = {}
    fw_out = _on_qemu(
        _QEMU_FIRMWARE.replace("SESSIONS", str(len(counts))),
        lambda fd: _drive_firmware(fd, counts, seen),
    )
    n_cells = seen["n_cells"]
    request = len(sample_frames(n_cells, 1, 1)[0])
    echo_out = _on_qemu(
        _QEMU_ECHO.replace("REQUEST", str(request))
        .replace("REPLY", str(_STATE_FRAME))
        .replace("COUNT", str(counts[-1])),
        lambda fd: _drive_echo(fd, request, counts[-1]),
    )
    fw = _instructions(_busy_per_frame(_sessions(fw_out), counts))
    p10_us, median_us = (int(v) for v in echo_out.split("ECHO", 1)[1].split()[:2])
    echo = _instructions(p10_us) | {
        "instructions_per_frame_median": median_us * 1000,
        "method": "each round trip timed on the board; 10th percentile (median beside it)",
    }
    return {
        "target": QEMU_TARGET,
        "firmware": fw | {"frames": counts[-1] - counts[0], "n_cells": n_cells},
        "echo": echo | {"request_bytes": request, "reply_bytes": _STATE_FRAME},
        "firmware_to_echo": round(echo["instructions_per_frame"] / fw["instructions_per_frame"], 3),
        "method": "qemu -icount shift=0, work between waits for the host timed on the board",
        "clock_hz": RP2040_CLOCK_HZ,
        "assumed_cpi": ASSUMED_CPI,
    }


def firmware_frames_per_s(target: str = UNIX64, quick: bool = False) -> dict[str, Any]:
    """The firmware's SAMPLE->STATE rate on a virtual board of `target`, and a trivial echo's
    on the same board (see the module docstring). unix-64, unix-32 or qemu-cortex-m0; a chip
    target not built (or QEMU absent) gives {"target", "skipped": why}."""
    if target not in TARGETS:
        raise ValueError(f"target {target!r}: one of {', '.join(TARGETS)}")
    if target != UNIX64:
        from host.micropython.measure import _skip_reason

        reason = _skip_reason(target)
        if reason:
            return {"target": target, "skipped": reason}
    if target == QEMU_TARGET:
        return _qemu_target(quick)
    return _unix_target(target, quick)

"""Measurements of the firmware on the chip-faithful targets, for `sisnbms bench`.

- `heap_usage(target)`: heap in use after boot, during operation (garbage included) and
  after it, on unix-32 (heap of the RP2040 size) or on the QEMU board.
- `step_time_qemu()`: Bms.step per sample for 1, 4 and 16 cells on the QEMU board, counted
  in emulated instructions (QEMU `-icount shift=0`: the emulated clock advances 1 ns per
  instruction, so the board's time.ticks_us() counts thousands of instructions), converted
  to time at the RP2040's 125 MHz.
- `sample_rate_qemu()`: closed-loop SAMPLE round trips per second from the host client to
  the firmware on the QEMU board (QEMU at full speed, no -icount).

Each returns a dict (the `sisnbms bench` convention), or {"skipped": reason} when the
target is not built (the reason names the `sisnbms micropython build` command: a bench never
builds, it measures the cached build that `--target` runs) or QEMU is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cellmodel.errors import InputError
from host.micropython.build import BuildResult, latest_build
from host.micropython.targets import QEMU_TARGET, UNIX32_TARGET

RP2040_CLOCK_HZ = 125_000_000
# The assumption of the conversion: one instruction per cycle. The Cortex-M0+ takes 1 cycle
# for most ALU instructions, 2 for loads, stores and taken branches, and the RP2040 runs
# MicroPython from XIP flash behind a 16 KB cache (the rp2 build keeps the VM, GC and parser
# in RAM): real time is this figure times the average CPI, about 1.3-1.6 on such code.
ASSUMED_CPI = 1.0
# The unix-32 interpreter runs with the QEMU board's (the RP2040's) GC heap.
RP2040_HEAP = "224256"
UNIX64 = "unix-64"

# Runs on the board (or unix-32) in the flash folder: heap after main.setup(), the highest
# heap in use while serving 500 SAMPLE frames and the configuration commands with the GC off
# (garbage included), and after a collection. The frames are written into one buffer with
# struct.pack_into: the driver itself allocates nothing, so the figures are the firmware's.
_HEAP_SCRIPT = """
import gc, struct
import main
from bms import codec
app, io, board = main.setup()
gc.collect()
boot = gc.mem_alloc()
n = app.cfg.n_cells
tx = bytearray(codec.FRAME_MAX)
config = b'{"ov_mV": 4210}'
pack_into = struct.pack_into
finish = codec.finish
receive = app.receive
def send(ftype, seq, length):
    m = finish(tx, ftype, seq, length)
    i = 0
    while i < m:
        i = receive(tx, i, m, seq)
        app.out_len = 0
gc.collect()
ready = gc.mem_alloc()
peak = 0
gc.disable()
send(0x01, 1, 0)
for k in range(500):
    pack_into("<IiB", tx, 7, 1000 * k + 1000, 800, n)
    for i in range(n):
        pack_into("<H", tx, 16 + 2 * i, 3700 + (k + i) % 3)
    pack_into("<Bh", tx, 16 + 2 * n, 1, 250)
    send(0x02, 2 + k, 12 + 2 * n)
    peak = max(peak, gc.mem_alloc() - ready)
for seq, ftype in ((600, 0x04), (601, 0x09)):
    send(ftype, seq, 0)
    peak = max(peak, gc.mem_alloc() - ready)
codec.put_bytes(tx, 7, config)
send(0x05, 602, len(config))
peak = max(peak, gc.mem_alloc() - ready)
send(0x04, 603, 0)
peak = max(peak, gc.mem_alloc() - ready)
# the heap each further SAMPLE -> STATE takes, frame by frame (GC still off): 0 in the
# steady state; a frame that writes the persisted state allocates for the file
from array import array
per = array("i", [0] * 200)
for k in range(200):
    pack_into("<IiB", tx, 7, 1000 * k + 600000, 800, n)
    for i in range(n):
        pack_into("<H", tx, 16 + 2 * i, 3700 + (k + i) % 3)
    pack_into("<Bh", tx, 16 + 2 * n, 1, 250)
    a = gc.mem_alloc()
    send(0x02, 700 + k, 12 + 2 * n)
    per[k] = gc.mem_alloc() - a
gc.enable()
assert app.bms.samples == 700 and app.cfg.ov_mV == 4210, (app.bms.samples, app.cfg.ov_mV)
zero = 0
for v in per:
    zero += v == 0
gc.collect()
print("HEAP", boot, boot + peak, gc.mem_alloc(), gc.mem_alloc() + gc.mem_free(), zero, max(per))
"""

# Bms.step for N cells, each step timed alone into a preallocated array, and the same loop
# without the step (the timing's own cost). A small LCG keeps every intermediate a small int.
# Printed: median, mean and max of the steps and the median of the bare loop, in us.
_STEP_SCRIPT = """
import time
from array import array
from bms import config
from bms.core import Bms
ticks_us = time.ticks_us
ticks_diff = time.ticks_diff
def run(n, steps):
    cfg, flags = config.load("no-such-config.json")
    cfg.update({"n_cells": n})
    bms = Bms(cfg, state_path="bench_state.json")
    cells = array("H", [3700] * n)
    temps = array("h", [250])
    step = bms.step
    d = array("I", [0] * steps)
    def loop(count, with_step):
        x = 1
        for k in range(count):
            x = (x * 75 + 74) % 65537
            cells[k % n] = 3600 + (x & 255)
            t0 = ticks_us()
            if with_step:
                step(1000, cells, n, 1000 - (x & 2047), temps, 1)
            d[k] = ticks_diff(ticks_us(), t0)
    loop(50, True)  # warm-up: first-call allocations and the estimator's start
    saves = bms.saves
    loop(steps, True)
    full = sorted(d)
    loop(steps, False)
    bare = sorted(d)
    return full[steps // 2], sum(full) // steps, full[-1], bare[steps // 2], bms.saves - saves
for n in CELLS:
    print("STEP", n, *run(n, STEPS))
"""


def _skip_reason(target: str) -> str | None:
    """Why a chip target cannot be measured here (None: it can): not built yet (builds take
    minutes: `sisnbms micropython build` makes them, a bench does not), or QEMU absent."""
    from host.micropython.resolve import target_binary
    from host.micropython.targets import TARGETS
    from host.micropython.toolchain import install_hint, missing_tools

    try:
        target_binary(target)
    except InputError as exc:
        return f"{target}: {exc.reason}"
    missing = missing_tools(TARGETS[target].run_tools)
    if missing:
        return f"{', '.join(m.command for m in missing)} absent: {install_hint(missing)}"
    return None


def _build(target: str) -> BuildResult:
    """The cached build `--target` runs (host.micropython.resolve finds the same one)."""
    build = latest_build(target)
    if build is None:
        raise RuntimeError(_skip_reason(target))
    return build


# mpy-cross's -march for the unix interpreters on this machine (the firmware's viper module,
# bms/native.py, is machine code: an .mpy of it names the CPU), by platform.machine().
_UNIX_MARCH = {
    "x86_64": {UNIX64: "x64", UNIX32_TARGET: "x86"},
    "amd64": {UNIX64: "x64", UNIX32_TARGET: "x86"},
    "i686": {UNIX32_TARGET: "x86"},
}


def _compile_flash(flash: Path, mpy_cross: Path, march: str) -> None:
    """The firmware's modules as .mpy (as a board runs them), boot.py and main.py as source."""
    for src in sorted(flash.rglob("*.py")):
        if src.parent == flash and src.name in ("main.py", "boot.py"):
            continue
        rel = src.relative_to(flash).as_posix()
        out = src.with_suffix(".mpy")
        cmd = [str(mpy_cross), f"-march={march}", "-s", rel, "-o", str(out), str(src)]
        subprocess.run(cmd, check=True, capture_output=True)
        src.unlink()


def _parse(out: str, tag: str) -> list[list[int]]:
    return [[int(v) for v in line.split()[1:]] for line in out.splitlines() if line.startswith(tag)]


def _heap_dict(values: list[int], where: str) -> dict[str, Any]:
    boot, peak, after, total, zero, most = values
    return {
        "where": where,
        "after_boot_B": boot,
        "peak_in_operation_B": peak,
        "after_operation_B": after,
        "gc_heap_total_B": total,
        # issue 11: allocation per sample step, over 200 SAMPLE -> STATE frames
        "sample_frames_allocating_nothing": f"{zero}/200",
        "most_allocated_by_one_sample_B": most,
    }


# How long a QEMU board just powered up may take to boot its firmware and answer HELLO.
# One HELLO waits 0.5 s, and under -icount on a machine busy with a campaign the handover
# took 0.44-0.59 s in all (HELLO, ENTER_REPL and the 0.2 s drain): too little margin to
# ask once (mpremote's Ctrl-C cannot stop a firmware that turned it off).
QEMU_BOOT_WAIT_S = 120.0


@contextlib.asynccontextmanager
async def _qemu_board(build: BuildResult, *, icount_shift: int | None = None) -> AsyncIterator[Any]:
    """A QEMU board flashed with the firmware (.mpy, armv6m), in a temporary folder."""
    from host.boards import load_board
    from host.flash.flasher import flash_board
    from host.vboard.qemu_board import QemuBoard

    with tempfile.TemporaryDirectory(prefix="sisnbms-qemu-bench-") as tmp:
        async with QemuBoard(tmp, build.path) as qb:
            result = await flash_board(qb.port, load_board("qemu_cortex_m0"), None, mpy=True)
            if not result.ok:
                raise RuntimeError(f"flashing the QEMU board failed: {result.problems}")
        if icount_shift is None:
            async with QemuBoard(tmp, build.path) as qb:
                yield qb
        else:
            async with QemuBoard(tmp, build.path, icount_shift=icount_shift) as qb:
                yield qb


async def _exec_on_board(port: str, script: str, timeout_s: int) -> str:
    """Run a script at the board's raw REPL (after asking the firmware to yield the port)."""
    from mpremote.transport_serial import SerialTransport

    from host.flash.flasher import request_repl

    await request_repl(port, wait_s=QEMU_BOOT_WAIT_S)

    def run() -> str:
        transport = SerialTransport(port, baudrate=115200, timeout=5)
        try:
            transport.enter_raw_repl(soft_reset=True)
            out, err = transport.exec_raw(script, timeout=timeout_s)
            if err:
                raise RuntimeError(err.decode(errors="replace"))
            return out.decode()
        finally:
            transport.close()

    return await asyncio.to_thread(run)


def heap_usage(target: str = UNIX32_TARGET, quick: bool = False) -> dict[str, Any]:
    """Heap (bytes) after boot, at its peak while serving frames, and after, on a target.

    `target`: unix-32, qemu-cortex-m0, or unix-64 (the PyPI interpreter, for comparison; run
    with a 1 MB heap: its objects are twice the size).
    """
    if target == QEMU_TARGET:
        return _heap_on_qemu()
    march = _UNIX_MARCH.get(platform.machine().lower(), {}).get(target)
    if march is None:
        return {"skipped": f"{target}: mpy-cross has no -march for this {platform.machine()}"}
    if target == UNIX64:
        from host.image import mpy_cross_path
        from host.interpreter import find_micropython

        return _heap_on_unix(find_micropython(), mpy_cross_path(), march, "1M", target)
    reason = _skip_reason(target)
    if reason:
        return {"skipped": reason}
    build = _build(target)
    return _heap_on_unix(build.path, build.mpy_cross, march, RP2040_HEAP, target)


def _heap_on_qemu() -> dict[str, Any]:
    reason = _skip_reason(QEMU_TARGET)
    if reason:
        return {"skipped": reason}

    async def on_board() -> str:
        async with _qemu_board(_build(QEMU_TARGET)) as qb:
            return await _exec_on_board(qb.port, _HEAP_SCRIPT, 120)

    return _heap_dict(_parse(asyncio.run(on_board()), "HEAP")[0], "qemu board, .mpy")


def _heap_on_unix(
    interpreter: Path, mpy_cross: Path, march: str, heap: str, target: str
) -> dict[str, Any]:
    from host.vboard.provision import provision_flash

    with tempfile.TemporaryDirectory(prefix="sisnbms-heap-") as tmp:
        flash = Path(tmp)
        provision_flash(flash, None, "qemu_cortex_m0")
        _compile_flash(flash, mpy_cross, march)
        proc = subprocess.run(
            [str(interpreter), "-X", f"heapsize={heap}", "-c", _HEAP_SCRIPT],
            cwd=flash,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"heap script failed on {target}:\n{proc.stdout}{proc.stderr}")
    return _heap_dict(_parse(proc.stdout, "HEAP")[0], f"{target}, .mpy ({march}), heap {heap} B")


def step_time_qemu(quick: bool = False) -> dict[str, Any]:
    """Bms.step on the QEMU board: instructions per step and time at 125 MHz (CPI 1)."""
    reason = _skip_reason(QEMU_TARGET)
    if reason:
        return {"skipped": reason}
    steps = 200 if quick else 2000
    cells = (1, 4, 16)

    async def on_board() -> str:
        async with _qemu_board(_build(QEMU_TARGET), icount_shift=0) as qb:
            return await _exec_on_board(
                qb.port,
                _STEP_SCRIPT.replace("CELLS", repr(cells)).replace("STEPS", str(steps)),
                600,
            )

    out: dict[str, Any] = {
        "steps": steps,
        "clock_hz": RP2040_CLOCK_HZ,
        "assumed_cpi": ASSUMED_CPI,
        "method": "qemu -icount shift=0 (1 ns per instruction), time.ticks_us() on the board",
    }
    for n, median_us, mean_us, max_us, bare_us, saves in _parse(asyncio.run(on_board()), "STEP"):
        # 1 us of emulated time = 1000 instructions; the bare loop's timing cost subtracted
        typical = (median_us - bare_us) * 1000
        mean = (mean_us - bare_us) * 1000
        out[f"cells_{n}"] = {
            "instructions_per_step_median": typical,
            "instructions_per_step_mean": mean,
            "instructions_per_step_max": (max_us - bare_us) * 1000,
            "us_per_step_at_125MHz_median": round(typical * ASSUMED_CPI / RP2040_CLOCK_HZ * 1e6, 1),
            "us_per_step_at_125MHz_mean": round(mean * ASSUMED_CPI / RP2040_CLOCK_HZ * 1e6, 1),
            "state_saves_in_run": saves,  # a save (a littlefs write) makes the max and the mean
        }
    return out


def sample_rate_qemu(quick: bool = False) -> dict[str, Any]:
    """SAMPLE round trips per second, host client to the firmware on the QEMU board."""
    reason = _skip_reason(QEMU_TARGET)
    if reason:
        return {"skipped": reason}
    from host.link import SerialLink
    from host.protocol.client import BmsClient

    frames = 100 if quick else 1000

    async def run() -> dict[str, Any]:
        async with _qemu_board(_build(QEMU_TARGET)) as qb:
            t_boot = time.monotonic()
            async with await SerialLink.open(qb.port) as link:
                client = BmsClient(link, timeout_s=5.0)
                hello = None
                while hello is None:
                    with contextlib.suppress(Exception):
                        hello = await client.hello()
                boot_s = time.monotonic() - t_boot
                n = hello.n_cells
                t0 = time.monotonic()
                for k in range(frames):
                    await client.sample(1000 * (k + 1), [3700 + k % 5] * n, 1000, [250])
                wall = time.monotonic() - t0
        return {
            "frames": frames,
            "boot_to_hello_s": round(boot_s, 3),
            "samples_per_s": round(frames / wall, 1),
        }

    return asyncio.run(run())

"""Benchmarks of the closed loop against what the link allows (issue 13), side by side in one run.

- `echo_round_trips_per_s`: a trivial MicroPython echo on the same kind of virtual board (the
  same interpreter, ROM, confinement and pty), a 32-byte request and a 64-byte reply per round
  trip, driven from the host with blocking reads: the most a lockstep link can carry.
- `fil_steps_per_s`: closed-loop lockstep steps per second of the real firmware for 1, 4 and 16
  cells (the loop's own wall time, board start-up excluded).
- `emulate_default_s`: `sisnbms emulate` of the default scenario, start-up included, as a user
  runs it.

Targets (a 2-core machine): fil_to_echo_ratio >= 0.4, 16 cells at >= 60 % of the 1-cell step
rate, the default emulate in <= 2 s.
"""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import serial

TARGET_FIL_TO_ECHO = 0.4
TARGET_CELLS_16_OVER_1 = 0.6
TARGET_EMULATE_DEFAULT_S = 2.0

_ECHO_MAIN = """\
import sys, micropython
micropython.kbd_intr(-1)
inp = sys.stdin.buffer
out = sys.stdout.buffer
req = bytearray(32)
rep = bytes(64)
mv = memoryview(req)
out.write(b"ECHO\\n")
while True:
    n = 0
    while n < 32:
        k = inp.readinto(mv[n:])
        if not k:
            raise SystemExit
        n += k
    out.write(rep)
"""


def _read_exactly(fd: int, n: int, timeout_s: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout_s
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError(f"echo: {len(data)} of {n} bytes")
        data += os.read(fd, n - len(data))
    return data


def echo_round_trips_per_s(quick: bool = False) -> dict[str, Any]:
    """Round trips per second of a MicroPython echo on a virtual board (see the module doc)."""
    from host.vboard import VirtualBoard

    duration_s = 0.5 if quick else 2.0

    async def measure(flash: Path) -> tuple[int, float]:
        (flash / "main.py").write_text(_ECHO_MAIN)
        board = VirtualBoard(flash)
        await board.start(powered=False)
        # the port opens before power-on: pyserial's open flushes its input, banner included
        port = serial.Serial(board.port, 115200, timeout=0)
        try:
            await board.power_on()
            fd = port.fileno()
            request = bytes(range(32))
            _read_exactly(fd, 5, 10.0)  # "ECHO\n": the loop runs
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < duration_s:
                os.write(fd, request)
                _read_exactly(fd, 64, 5.0)
                count += 1
            return count, time.perf_counter() - start
        finally:
            port.close()
            await board.stop()

    with tempfile.TemporaryDirectory(prefix="sisnbms-echo-") as tmp:
        count, wall_s = asyncio.run(measure(Path(tmp)))
    return {"round_trips": count, "wall_s": round(wall_s, 3), "per_s": round(count / wall_s, 1)}


_FIL_SCENARIO = """\
name = "bench-fil-{n}s"
description = "Closed-loop lockstep speed: a discharge at 1 s periods."
cell = {cell!r}
sample_period_s = 1.0
steps = ["Rest for 10 seconds", "Discharge at 0.5C for {minutes} minutes"]
[initial]
soc = 0.9
branch = "discharge"
"""
_CELL = 'extends = "sisn-lco-2ah"\n[cell]\nname = "bench-{n}s"\nn_series = {n}\n'


def fil_steps_per_s(n_cells: int, quick: bool = False) -> dict[str, Any]:
    """Lockstep steps per second of the closed loop with the real firmware on n_cells."""
    from host.emulator import run_scenario
    from host.scenarios import load_scenario

    minutes = 3 if quick else 20
    with tempfile.TemporaryDirectory(prefix="sisnbms-fil-") as tmp:
        cell = Path(tmp) / f"bench-{n_cells}s.toml"
        cell.write_text(_CELL.format(n=n_cells))
        path = Path(tmp) / "fil.toml"
        path.write_text(_FIL_SCENARIO.format(n=n_cells, cell=str(cell), minutes=minutes))
        result = asyncio.run(
            run_scenario(load_scenario(path), out_dir=Path(tmp) / "out", write_files=False)
        )
    s = result.summary
    return {
        "n_cells": n_cells,
        "steps": s["steps"],
        "wall_s": s["wall_s"],
        "per_s": s["steps_per_s"],
    }


def emulate_default_s(quick: bool = False) -> dict[str, Any]:
    """Wall time of `sisnbms emulate` (default scenario), process start-up included."""
    with tempfile.TemporaryDirectory(prefix="sisnbms-emulate-") as tmp:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "host.cli.main", "emulate", "--out", tmp, "--json"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        wall_s = time.perf_counter() - start
    return {"wall_s": round(wall_s, 3), "exit_code": proc.returncode}


def closed_loop(quick: bool = False) -> dict[str, Any]:
    """The issue-13 figures side by side: echo, lockstep steps by cells, the default emulate."""
    echo = echo_round_trips_per_s(quick)
    by_cells = {str(n): fil_steps_per_s(n, quick) for n in (1, 4, 16)}
    rate = {n: r["per_s"] for n, r in by_cells.items()}
    ratio = rate["1"] / echo["per_s"]
    emulate = emulate_default_s(quick)
    return {
        "echo_round_trips_per_s": echo["per_s"],
        "fil_steps_per_s": rate["1"],
        "fil_to_echo_ratio": round(ratio, 3),
        "fil_steps_per_s_by_cells": rate,
        "cells_16_over_1": round(rate["16"] / rate["1"], 3),
        "emulate_default_s": emulate["wall_s"],
        "targets": {
            "fil_to_echo_ratio": TARGET_FIL_TO_ECHO,
            "cells_16_over_1": TARGET_CELLS_16_OVER_1,
            "emulate_default_s": TARGET_EMULATE_DEFAULT_S,
        },
        "meets_targets": {
            "fil_to_echo_ratio": ratio >= TARGET_FIL_TO_ECHO,
            "cells_16_over_1": rate["16"] / rate["1"] >= TARGET_CELLS_16_OVER_1,
            "emulate_default_s": emulate["wall_s"] <= TARGET_EMULATE_DEFAULT_S,
        },
        "detail": {"echo": echo, "fil": by_cells, "emulate": emulate},
    }

"""Benchmark registry: one function per benchmark, each returning a dict of results.

Not a test: numbers depend on the machine. `sisnbms bench` runs them all in one process, so
the figures of one run are measured side by side (`--only NAME[,NAME]` reruns some).

Targets (a 2-core machine), by benchmark:
- cell_steps: >= 20 million cell-steps/s at 10,000 cells;
- profile_1h: a 1-hour single-cell profile at 1 s steps in <= 20 ms;
- emulation: the default scenario (a full cycle, closed loop with the real firmware) in < 10 s;
- closed_loop (issue 13): closed-loop lockstep steps/s for one cell over the same-run echo
  round trips/s (`fil_to_echo_ratio`) >= 0.4; 16 cells at >= 60 % of the 1-cell step rate;
  the default `sisnbms emulate` in <= 2 s wall including start-up (`emulate_default_s`);
- campaign (issue 13): runs/s of the smoke campaign at 2 workers >= 1.8x that at 1 worker
  (`campaign_runs_per_s_by_workers`).

Reported without a target (the issues ask for the figures, not a bound):
- firmware_step: Bms.step under the MicroPython unix port;
- firmware_frames (issue 13): the firmware's SAMPLE->STATE frames/s on unix-64, unix-32 and
  qemu-cortex-m0 beside a trivial echo on the same board (host.bench_firmware);
- target_heap (issue 11): heap after boot and at its peak in operation on unix-64, unix-32 and
  qemu-cortex-m0;
- qemu_step (issue 11): Bms.step for 1, 4 and 16 cells on qemu-cortex-m0 in emulated
  instructions, and in time at the RP2040's 125 MHz (one instruction per cycle assumed);
- qemu_closed_loop (issue 11): closed-loop SAMPLE round trips/s against the QEMU board.

The chip targets (unix-32, qemu-cortex-m0) are measured from the cached build that
`--target` runs; a bench never builds. A target not built (or QEMU absent) gives
{"skipped": reason} naming the `sisnbms micropython build` command, in place of its figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cellmodel import DEFAULT_CELL, PackModel, load_cell
from cellmodel.pack import with_cells

TARGET_CELL_STEPS_PER_S = 20e6
TARGET_PROFILE_1H_S = 0.020
TARGET_EMULATE_S = 10.0


def _mixed_current_A(n: int, capacity_Ah: float) -> np.ndarray:
    """A discharge-heavy mix of pulses, rests and charge, positive on discharge."""
    k = np.arange(n)
    return (
        capacity_Ah
        * np.select([k % 300 < 120, k % 300 < 180, k % 300 < 240], [1.0, 0.0, -0.5], 2.0)
        * 0.5
    )


def cell_steps(quick: bool = False) -> dict[str, Any]:
    """Vectorized PackModel.step throughput for packs of 1, 100 and 10,000 cells."""
    design = load_cell(DEFAULT_CELL)
    out: dict[str, Any] = {}
    budget_s = 0.15 if quick else 1.0
    for n in (1, 100, 10_000):
        model = PackModel(with_cells(design, n), initial_soc=0.9)
        currents = _mixed_current_A(100_000, design.capacity_Ah) * 0.2
        for i in range(20):  # warm caches and allocator
            model.step(float(currents[i]), 1.0)
        steps = 0
        start = time.perf_counter()
        while True:
            for _ in range(50):
                model.step(float(currents[steps % currents.size]), 1.0)
                steps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= budget_s:
                break
        out[f"cells_{n}"] = {
            "n_cells": n,
            "steps": steps,
            "wall_s": elapsed,
            "us_per_step": elapsed / steps * 1e6,
            "cell_steps_per_s": n * steps / elapsed,
        }
    best = out["cells_10000"]["cell_steps_per_s"]
    out["target_cell_steps_per_s"] = TARGET_CELL_STEPS_PER_S
    out["meets_target"] = bool(best >= TARGET_CELL_STEPS_PER_S)
    return out


def profile_1h(quick: bool = False) -> dict[str, Any]:
    """Wall time of PackModel.run_profile over 3,600 one-second steps, single cell."""
    design = load_cell(DEFAULT_CELL)
    currents = _mixed_current_A(3600, design.capacity_Ah)
    repeats = 3 if quick else 15
    times = []
    for _ in range(repeats):
        model = PackModel(design, initial_soc=0.95)
        start = time.perf_counter()
        model.run_profile(currents, 1.0)
        times.append(time.perf_counter() - start)
    return {
        "steps": 3600,
        "repeats": repeats,
        "best_s": min(times),
        "median_s": float(np.median(times)),
        "target_s": TARGET_PROFILE_1H_S,
        "meets_target": bool(min(times) <= TARGET_PROFILE_1H_S),
    }


# Runs under MicroPython: times Bms.step (estimation, protection, balancing) for a
# 4-cell pack on varying inputs, with the interpreter's own microsecond clock.
_FIRMWARE_STEP_SCRIPT = """
import time, sys
from array import array
from bms import config
from bms.core import Bms
cfg, flags = config.load("no-such-config.json")
cfg.update({"n_cells": 4})
bms = Bms(cfg, state_path="bench_state.json")
cells = array("H", [3700, 3701, 3702, 3703])
temps = array("h", [250])
step = bms.step
N = %d
x = 1
t0 = time.ticks_us()
for k in range(N):
    x = (x * 1103515245 + 12345) & 0x3FFFFFFF
    cells[k & 3] = 3600 + (x & 255)
    step(1000, cells, 4, 1000 - (x & 2047), temps, 1)
dt = time.ticks_diff(time.ticks_us(), t0)
print(N, dt)
"""


def firmware_step(quick: bool = False) -> dict[str, Any]:
    """Bms.step time under the MicroPython unix port (desktop: a chip is ~50-100x slower)."""
    import subprocess
    import tempfile

    from host.interpreter import find_micropython
    from host.resources import firmware_dir

    n = 5_000 if quick else 50_000
    with tempfile.TemporaryDirectory() as tmp:
        code = f"import sys\nsys.path.insert(0, {str(firmware_dir())!r})\n"
        code += _FIRMWARE_STEP_SCRIPT % n
        proc = subprocess.run(
            [str(find_micropython()), "-c", code],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    steps, us = (int(v) for v in proc.stdout.split())
    return {"steps": steps, "us_per_step": us / steps, "steps_per_s": steps / (us / 1e6)}


def emulation(quick: bool = False) -> dict[str, Any]:
    """The closed loop with the real firmware on a virtual board: lockstep speed.

    Runs the default scenario (quick: a 20-minute discharge) and reports its wall time
    against the < 10 s target of the default run.
    """
    import asyncio
    import tempfile

    from host.emulator import run_scenario
    from host.scenarios import DEFAULT_SCENARIO, load_scenario

    with tempfile.TemporaryDirectory() as tmp:
        if quick:
            path = Path(tmp) / "quick.toml"
            path.write_text(
                'name = "bench-quick"\ndescription = "bench"\nsample_period_s = 1.0\n'
                'steps = ["Discharge at 1C for 20 minutes"]\n[initial]\nsoc = 0.9\n'
            )
            scenario = load_scenario(str(path))
        else:
            scenario = load_scenario(DEFAULT_SCENARIO)
        start = time.perf_counter()
        result = asyncio.run(run_scenario(scenario, out_dir=Path(tmp) / "out"))
        wall_s = time.perf_counter() - start
    summary = result.summary
    return {
        "scenario": scenario.name,
        "steps": summary["steps"],
        "loop_steps_per_s": summary["steps_per_s"],
        "wall_s": wall_s,
        "target_s": TARGET_EMULATE_S,
        "meets_target": bool(quick or wall_s < TARGET_EMULATE_S),
    }


def closed_loop(quick: bool = False) -> dict[str, Any]:
    """Issue 13's loop figures side by side (host.bench_loop.closed_loop)."""
    from host import bench_loop

    return bench_loop.closed_loop(quick)


def campaign(quick: bool = False) -> dict[str, Any]:
    """Runs/s of the smoke campaign at 1 and 2 workers (quick: its scenario over 4 seeds)."""
    from host.campaign import bench as campaign_bench

    if not campaign_bench.SMOKE_SPEC.is_file():
        return {"skipped": f"no {campaign_bench.SMOKE_SPEC} (examples/ of a source checkout)"}
    result = campaign_bench.campaign_runs_per_s_by_workers((1, 2), quick=quick)
    # issue 13's name for the figure
    return {"campaign_runs_per_s_by_workers": result.pop("runs_per_s"), **result}


def firmware_frames(quick: bool = False) -> dict[str, Any]:
    """The firmware's frame rate beside a trivial echo, by target (host.bench_firmware)."""
    from host.bench_firmware import TARGETS, firmware_frames_per_s

    return {target: firmware_frames_per_s(target, quick) for target in TARGETS}


def target_heap(quick: bool = False) -> dict[str, Any]:
    """Heap after boot, at its peak in operation and after, by target (bytes)."""
    from host.micropython.measure import heap_usage
    from host.micropython.resolve import RUN_TARGETS

    return {target: heap_usage(target, quick) for target in RUN_TARGETS}


def qemu_step(quick: bool = False) -> dict[str, Any]:
    """Bms.step for 1, 4 and 16 cells on the QEMU board, in emulated instructions."""
    from host.micropython.measure import step_time_qemu

    return step_time_qemu(quick)


def qemu_closed_loop(quick: bool = False) -> dict[str, Any]:
    """SAMPLE round trips/s from the host client to the firmware on the QEMU board."""
    from host.micropython.measure import sample_rate_qemu

    return sample_rate_qemu(quick)


BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "cell_steps": cell_steps,
    "profile_1h": profile_1h,
    "firmware_step": firmware_step,
    "emulation": emulation,
    "closed_loop": closed_loop,
    "campaign": campaign,
    "firmware_frames": firmware_frames,
    "target_heap": target_heap,
    "qemu_step": qemu_step,
    "qemu_closed_loop": qemu_closed_loop,
}


def run_all(quick: bool = False, only: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every benchmark (or those named in `only`, in the registry's order), by name."""
    if only is not None:
        unknown = [name for name in only if name not in BENCHMARKS]
        if unknown:
            raise ValueError(f"unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}")
    return {
        name: fn(quick=quick) for name, fn in BENCHMARKS.items() if only is None or name in only
    }

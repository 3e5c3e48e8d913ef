"""Benchmark registry: one function per benchmark, each returning a dict of results.

Not a test: numbers depend on the machine. `sisnbms bench` runs them all.
Targets (issue 2, 2-core machine): >= 20 million cell-steps/s at 10,000 cells,
and a 1-hour single-cell profile at 1 s steps in <= 20 ms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from cellmodel import DEFAULT_CELL, PackModel, load_cell
from cellmodel.pack import with_cells

TARGET_CELL_STEPS_PER_S = 20e6
TARGET_PROFILE_1H_S = 0.020


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


BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "cell_steps": cell_steps,
    "profile_1h": profile_1h,
}


def run_all(quick: bool = False) -> dict[str, dict[str, Any]]:
    return {name: fn(quick=quick) for name, fn in BENCHMARKS.items()}

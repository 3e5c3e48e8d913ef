"""The per-sample step allocates no heap memory; heap in use after constructing a Bms.

Run with -s to see the numbers.
"""

from __future__ import annotations

from pathlib import Path

from tests.firmware.bms_harness import run_rig

_SCRIPT = """
import gc
gc.collect()
m_start = gc.mem_alloc()
import micropython
from bmsrig import Rig
gc.collect()
m_import = gc.mem_alloc()
r = Rig({"n_cells": 4, "n_temps": 4, "rest_time_ms": 30000, "rest_window_ms": 10000,
         "full_time_ms": 2000, "frozen_ms": 20000, "learn_min_dsoc_cpct": 10000})
gc.collect()
m_bms = gc.mem_alloc()
b = r.bms
cells = r.cells
temps = r.temps
n = r.n
nt = r.nt
step = b.step

def drive(k0, count):
    # varying inputs that walk through charge, taper, rest, discharge and balancing
    x = k0
    for k in range(k0, k0 + count):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        phase = (k // 700) % 4
        if phase == 0:
            cur = -1500 - (x & 255)
        elif phase == 1:
            cur = -100 - (x & 31)
        elif phase == 2:
            cur = (x & 7) - 3
        else:
            cur = 1000 + (x & 1023)
        base = 3500 + (k % 700)
        for i in range(n):
            cells[i] = base + ((x >> (i * 3)) & 31)
        for i in range(nt):
            temps[i] = 200 + ((x >> i) & 63)
        step(900 + (x & 255), cells, n, cur, temps, nt)

drive(0, 3000)  # warm-up
saves = b.saves
gc.collect()
gc.disable()
m0 = gc.mem_alloc()
drive(3000, 10000)
delta = gc.mem_alloc() - m0
assert b.saves == saves  # a state-file write is a rare event that may allocate
gc.enable()
# stricter: with the heap locked any allocation attempt raises MemoryError
micropython.heap_lock()
try:
    drive(13000, 2000)
finally:
    micropython.heap_unlock()
print("import_B", m_import - m_start, "bms_B", m_bms - m_import, "total_B", m_bms,
      "delta_B", delta, "faults", b.faults, "flags", b.flags, "bal", b.balance)
assert delta == 0, delta
"""


def test_step_allocates_nothing_and_heap_fits(tmp_path: Path) -> None:
    out = run_rig(_SCRIPT, tmp_path).split()
    values = dict(zip(out[0::2], out[1::2], strict=False))
    print("heap:", values)
    assert values["delta_B"] == "0"
    assert int(values["total_B"]) <= 64 * 1024

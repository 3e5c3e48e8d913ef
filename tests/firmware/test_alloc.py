"""The per-sample step allocates no heap memory; heap in use after constructing a Bms.

Every value the drivers below compute stays a small int on 32-bit ports (|x| < 2**30):
a big int made by the driver itself would be a heap allocation charged to the firmware
(and under heap_lock a MemoryError), so the measurement would not be the firmware's.
Run with -s to see the numbers; SISNBMS_MICROPYTHON selects the interpreter.
"""

from __future__ import annotations

from pathlib import Path

from tests.firmware.bms_harness import run_rig
from tests.firmware.mpy import run_mpy

# MicroPython keeps a call's frame on the C stack when it has at most 11 words of state
# (py/objfun.c VM_MAX_STATE_ON_STACK); a larger frame is taken from the heap and freed on
# return, or, when the heap is locked, put on the C stack instead. So splitting a function
# into methods costs no heap under heap_lock (where Bms._step runs) and no net heap
# anywhere. micropython.mem_total() counts every heap request (even one refused under
# heap_lock); gc.mem_alloc() what is held.
_CALLS = """
import gc, micropython

class Est:
    def __init__(self):
        self.q_mAs = 0
        self.unc_mAs = 0

    def small(self, dq_mAs):  # 2 locals + a short stack: fits the 11 words
        self.q_mAs += dq_mAs

    def large(self, a, b, c, d, e, f):  # 14 locals: more than 11 words of state
        u = a + b
        v = c + d
        w = e + f
        y = u * v
        z = v * w
        s = y + z - u + v + w
        t = s - a
        self.unc_mAs += t - s + a

    def chain(self, dq_mAs):  # a method calling methods
        self.small(dq_mAs)
        self.large(dq_mAs, 1, 2, 3, 4, 5)
        return self.q_mAs

o = Est()
small = o.small
o.small(1)
o.large(1, 2, 3, 4, 5, 6)
o.chain(1)

def run(what, n):
    for k in range(n):
        if what == 3:
            pass  # the loop alone: its own frame is the baseline
        elif what == 0:
            o.small(k)
        elif what == 1:
            o.large(k, 1, 2, 3, 4, 5)
        else:
            o.chain(k)

def measure(what):  # locals only: a new global would grow the module's dict
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    t0 = micropython.mem_total()
    run(what, 1000)  # heap unlocked
    t1 = micropython.mem_total()
    a1 = gc.mem_alloc()
    micropython.heap_lock()
    try:
        run(what, 1000)  # any allocation that cannot fall back would raise here
    finally:
        micropython.heap_unlock()
    a2 = gc.mem_alloc()
    gc.enable()
    return "%d %d %d" % (t1 - t0, a1 - a0, a2 - a1)

print(measure(3), measure(0), measure(1), measure(2))
"""


def test_method_calls_cost_no_heap(tmp_path: Path) -> None:
    """The measurement behind splitting the estimator and Bms._step into methods."""
    out = [int(x) for x in run_mpy(_CALLS, cwd=tmp_path).split()]
    loop_req, loop_held, loop_locked = out[0:3]
    out = [v - loop_req if k % 3 == 0 else v for k, v in enumerate(out[3:])]
    small_req, small_held, small_locked = out[0:3]
    large_req, large_held, large_locked = out[3:6]
    chain_req, chain_held, chain_locked = out[6:9]
    print(
        f"\n1000 calls: small method {small_req} B requested; large {large_req} B requested "
        f"(taken and freed); nested {chain_req} B; held after: {small_held}/{large_held}/"
        f"{chain_held} B unlocked, {small_locked}/{large_locked}/{chain_locked} B under heap_lock"
    )
    assert loop_held == loop_locked == 0
    assert small_req == 0  # a small frame never touches the heap
    assert large_req > 0  # a large one does when it may (so the probe can see a request)
    assert small_held == large_held == chain_held == 0
    assert small_locked == large_locked == chain_locked == 0


_SCRIPT = """
import gc
gc.collect()
m_start = gc.mem_alloc()
import micropython
from bmsrig import Rig
gc.collect()
m_import = gc.mem_alloc()
# no calibration point is sure enough to learn from (learn_unc_max_cpct 0): a learned
# capacity is saved at once, and a state-file write may allocate
r = Rig({"n_cells": 4, "n_temps": 4, "rest_time_ms": 30000, "rest_window_ms": 10000,
         "full_time_ms": 2000, "frozen_ms": 20000, "learn_unc_max_cpct": 0})
gc.collect()
m_bms = gc.mem_alloc()
b = r.bms
cells = r.cells
temps = r.temps
n = r.n
nt = r.nt
step = b.step
from array import array
seen = array("i", [0, 0])  # flag and fault bits the drive reached (a tuple would allocate)

def drive(k0, count):
    # inputs that walk through charge, the CV taper (full calibration), a rest (voltage
    # correction, balancing), discharge and a low-current end of discharge (empty
    # calibration, under-voltage), 700 samples each; a small-int generator (Park-Miller
    # on 2**16 + 1: x < 65537, x * 75 < 2**23)
    x = k0 % 65537
    flags = 0
    faults = 0
    for k in range(k0, k0 + count):
        x = (x * 75 + 74) % 65537
        phase = (k // 700) % 5
        j = k % 700
        if phase == 0:
            cur = -1500 - (x & 255)
            base = 3500 + j
        elif phase == 1:
            cur = -60 - (x & 31)
            base = 4170 + j % 20
        elif phase == 2:
            cur = (x & 7) - 3
            base = -1
        elif phase == 3:
            cur = 1000 + (x & 1023)
            base = 4100 - j
        else:
            cur = 150 + (x & 127)
            base = 2800 - j // 10
        for i in range(n):
            # at rest a steady spread (the cells relax; the top ones bleed), else noise
            cells[i] = 3800 + 20 * i if base < 0 else base + ((x >> (i * 3)) & 31)
        for i in range(nt):
            temps[i] = 200 + ((x >> i) & 63)
        step(900 + (x & 255), cells, n, cur, temps, nt)
        flags |= b.flags
        faults |= b.faults
    seen[0] = flags
    seen[1] = faults

drive(0, 3500)  # warm-up
saves = b.saves
gc.collect()
gc.disable()
m0 = gc.mem_alloc()
drive(3500, 10500)
delta = gc.mem_alloc() - m0
flags, faults = seen
assert b.saves == saves  # a state-file write is a rare event that may allocate
gc.enable()
# stricter: with the heap locked any allocation attempt that cannot fall back raises
micropython.heap_lock()
try:
    drive(14000, 3500)
finally:
    micropython.heap_unlock()

# The estimator's rarer paths, under the lock too: a rest with the branch unknown (the
# count is only clamped between the branches' readings) and a rest reading far (> 3 sigma)
# from the count on a known branch (the reading replaces the count).
r2 = Rig({"rest_time_ms": 30000, "rest_window_ms": 10000, "learn_min_dsoc_cpct": 10000},
         state_path="other.json")
b2 = r2.bms
r2.step(0, 0, mV=3300)  # boots from its branch interval, branch unknown
cap = b2.learner.cap[0]
wrong_mAs = cap * 9 // 10
sure_mAs = cap // 200
e2 = b2.est
micropython.heap_lock()
try:
    r2.run(60, 0, mV=3700)  # rests well above: the interval there replaces the boot's
    rested = b2.soc_cpct
    r2.run(600, 2000, mV=3600)  # the branch becomes DISCHARGE
    e2.set(0, wrong_mAs, sure_mAs)  # a wrong count, 90 %, that claims 0.5 %
    e2.calibrated(1)
    r2.run(60, 0, mV=3600)  # rests: the reading replaces it
finally:
    micropython.heap_unlock()
from bms.ocv import CHARGE, DISCHARGE
lo = b2.ocv.soc_ext(CHARGE, 3700)
hi = b2.ocv.soc_ext(DISCHARGE, 3700)
assert lo < rested < hi, (lo, rested, hi)
assert abs(b2.soc_cpct - b2.ocv.soc_ext(DISCHARGE, 3600)) <= 1, b2.soc_cpct
import sys
print("word_B", 8 if sys.maxsize > 2**32 else 4,
      "import_B", m_import - m_start, "bms_B", m_bms - m_import, "total_B", m_bms,
      "delta_B", delta, "seen_flags", flags, "seen_faults", faults,
      "seen_flags_locked", seen[0], "seen_faults_locked", seen[1])
assert delta == 0, delta
"""

# STATE flag bits (docs/protocol.md) the drive must reach: resting, branch known, both
# branches, full calibration, a voltage correction at rest.
_RESTING = 1 << 2
_BRANCH_KNOWN = 1 << 3
_BRANCH_DSG = 1 << 4
_FULL_CAL = 1 << 7
_EMPTY_CAL = 1 << 8
_VOLTAGE_CORRECTION = 1 << 9
_ALL = _RESTING | _BRANCH_KNOWN | _BRANCH_DSG | _FULL_CAL | _EMPTY_CAL | _VOLTAGE_CORRECTION


def test_step_allocates_nothing(tmp_path: Path) -> None:
    out = run_rig(_SCRIPT, tmp_path).split()
    values = dict(zip(out[0::2], out[1::2], strict=False))
    print("heap:", values)
    assert values["delta_B"] == "0"
    # How much heap the firmware holds is judged where a board's form of it runs: the .mpy
    # build against the 64 KB budget in tests/firmware/test_boot.py (this rig runs source).
    for part in ("seen_flags", "seen_flags_locked"):
        seen = int(values[part])
        assert seen & _ALL == _ALL, f"{part}: the drive missed flag bits {_ALL & ~seen:#x}"
    # fault transitions (set and clear) were recorded under the lock too
    assert int(values["seen_faults_locked"]) != 0


_LONG_RUN = """
from bmsrig import Rig
CAP = 0x3FFFFFFF  # the largest small int on a 32-bit port
# a state file the filesystem refuses: the time since the last save only grows
r = Rig({"full_time_ms": 10000, "taper_mA": 150}, state_path="no-such-dir/bms_state.json")
b = r.bms
r.step(0, 0, mV=3700)
# timers and counters at their caps: they saturate (or wrap) without a larger sum
b.est.rest_ms = CAP - 5
b.since_save_ms = CAP - 5
b.clock_s = CAP - 1
b.samples = CAP
r.step(1000, 0, mV=3700)
assert (b.est.rest_ms, b.since_save_ms, b.clock_s, b.samples) == (CAP, CAP, CAP, 0)
assert b.save_errors > 0 and b.saves == 0
b.est.full_ms = CAP - 5
r.step(1000, -100, mV=4195)
assert b.est.full_ms == CAP, b.est.full_ms
# a restored clock at the state file's bound (2**30: a big int on 32-bit) saturates too
b.clock_s = 1 << 30
r.step(1000, 0, mV=3700)
assert b.clock_s == CAP
# the longest interval the app passes on (2**30 - 1 ms, 12.4 days): the clock takes it
# whole, the integration only max_dt_ms, flagged as a gap
b.clock_s = 0
b.clock_ms = 999
gaps = b.gaps
q = b.est.q[0]
r.step(CAP, 1000, mV=3700)
assert (b.clock_s, b.clock_ms) == ((999 + CAP) // 1000, (999 + CAP) % 1000)
assert b.gaps == gaps + 1 and b.flags & (1 << 10)
assert q - b.est.q[0] == b.cfg.max_dt_ms  # 1 A for max_dt_ms
print("ok")
"""


def test_long_run_counters_stay_small_ints(tmp_path: Path) -> None:
    """Issue 11: every timer and counter of the sample path stays within +-2**30 on a
    32-bit port (Bms.step runs under heap_lock: a big int there is a MemoryError)."""
    assert run_rig(_LONG_RUN, tmp_path).split() == ["ok"]

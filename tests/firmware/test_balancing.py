"""Passive balancing decisions per cell (bit 0 = cell 1). Current positive on discharge."""

from __future__ import annotations

from pathlib import Path

from tests.firmware.bms_harness import run_rig


def test_balancing_decisions(tmp_path: Path) -> None:
    run_rig(
        """
from bmsrig import Rig
from bms import faults as F
r = Rig({"n_cells": 4, "bal_threshold_mV": 15, "bal_hyst_mV": 5, "bal_start_mV": 3900,
         "bal_max_dsg_mA": 200, "bal_min_on_ms": 0})
b = r.bms
c = r.cells
def cells(a, b_, c_, d):
    c[0] = a
    c[1] = b_
    c[2] = c_
    c[3] = d
cells(4000, 4020, 4010, 4016)
r.step(0, -1000)  # near the top, charging
assert b.balance == 0b1010 and b.warnings & F.W_BALANCING, bin(b.balance)
cells(4000, 4012, 4010, 4009)
r.step(1000, -1000)  # cell 2 stays on above threshold - hysteresis, cell 4 drops out
assert b.balance == 0b0010
cells(3600, 3640, 3600, 3600)
r.step(1000, 1000)  # mid SOC, discharging: off
assert b.balance == 0
r.step(1000, 0)  # at rest: on
assert b.balance == 0b0010
r.step(1000, 300)  # discharging harder than bal_max_dsg_mA
assert b.balance == 0
for i in range(4):
    r.step(1000, 0, temp=700)  # hot: off once the over-temperature fault is on
assert b.balance == 0 and b.faults & F.OT_DSG
for i in range(4):
    r.step(1000, 0, temp=250)
assert b.balance == 0b0010 and b.faults == 0
r.bms.cfg.update({"bal_enable": 0})
r.step(1000, 0)
assert b.balance == 0 and not b.warnings & F.W_BALANCING
""",
        tmp_path,
    )


def test_a_started_bleed_holds_for_its_minimum_on_time(tmp_path: Path) -> None:
    """The bleed's own IR drop must not switch it off on the next sample (chatter)."""
    run_rig(
        """
from bmsrig import Rig
r = Rig({"n_cells": 2, "bal_threshold_mV": 15, "bal_hyst_mV": 5, "bal_start_mV": 3900,
         "bal_min_on_ms": 60000})
b = r.bms
c = r.cells
c[0] = 4000
c[1] = 4020
r.step(0, 0)
assert b.balance == 0b10
c[1] = 4008  # bleeding pulls cell 2 down by its IR drop: below threshold - hysteresis
for k in range(59):
    r.step(1000, 0)
    assert b.balance == 0b10, k  # held for the minimum on-time
r.step(1000, 0)
r.step(1000, 0)
assert b.balance == 0  # then the reading decides again
c[1] = 4020
r.step(1000, 300)  # discharging harder than bal_max_dsg_mA: off at once, hold or not
assert b.balance == 0
""",
        tmp_path,
    )


def test_the_bled_charge_comes_off_the_bled_cells_count(tmp_path: Path) -> None:
    """A bleed resistor's current passes the pack's current sensor by: the firmware counts it
    off the bled cell alone (V / bal_r_mohm each sample), a twentieth of it into that cell's
    half-width.
    Two cells charging slowly near the top, cell 2 30 mV high, for 5 minutes (no rest, no
    rest reading): cell 2 loses 4.03 V / 33 ohm x 300 s = 36.6 As = 10.2 mAh (0.51 % of
    2,000 mAh) more than cell 1; with bal_r_mohm 0 (no bleed hardware), nothing."""
    out = run_rig(
        """
from bmsrig import Rig
for r_mohm in (33000, 0):
    r = Rig({"n_cells": 2, "bal_min_on_ms": 0, "bal_r_mohm": r_mohm})
    b = r.bms
    r.cells[0] = 4000
    r.cells[1] = 4030
    r.step(0, -100)  # C/20 charge: the bleed is on, nothing rests
    q0 = [b.est.q[0], b.est.q[1]]
    u0 = [b.est.base[0], b.est.base[1]]
    for k in range(300):
        r.step(1000, -100)
        assert b.balance == 0b10, (k, b.balance)
    print(r_mohm, (b.est.q[0] - q0[0]) - (b.est.q[1] - q0[1]),
          (b.est.base[1] - u0[1]) - (b.est.base[0] - u0[0]))
""",
        tmp_path,
    )
    counted = {
        int(r): (int(dq), int(du))
        for r, dq, du in (line.split() for line in out.strip().split("\n"))
    }
    # the first sample decides the bleed, the 300 after it count it: 36,600 mAs (1 % for
    # the integer division's rounding per sample)
    assert abs(counted[33000][0] - 36_600) < 370, counted
    # the resistor's tolerance in the half-width the calibration left (the capacity's share
    # follows the charge the cell moved, less for the bled cell here)
    assert 36_600 // 20 - 40 <= counted[33000][1] <= 36_600 // 20, counted  # per sample, down
    assert counted[0] == (0, 0), counted

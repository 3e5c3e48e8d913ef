"""Each protection's trip, debounce (on sample time), release and latch, under MicroPython.

Current is positive on discharge. Switch decisions are in the same sample's results.
"""

from __future__ import annotations

from pathlib import Path

from tests.firmware.bms_harness import run_rig

_HEAD = """
from bmsrig import Rig, put
from bms import faults as F
"""


def test_voltage_protections_trip_release_and_abuse_latches(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"ov_delay_ms": 3000, "uv_delay_ms": 2000, "release_delay_ms": 2000})
b = r.bms
r.step(0, 0, mV=3700)  # mid-range at boot: neither window bound near its end
r.step(1000, 0, mV=4000)
assert b.chg_on and b.dsg_on
# debounce on sample time, from the first sample that shows the condition (1 s in)
assert r.until(F.OV, 0, mV=4230) == 1000 + 3000
assert not b.chg_on and b.dsg_on and b.latched == 0
r.step(1000, 0, mV=4160)  # above the release threshold: stays
assert b.faults & F.OV
r.run(1, 0, mV=4140)
r.run(1, 0, mV=4140)
assert b.faults & F.OV  # release delay runs
r.step(1000, 0, mV=4140)
assert not b.faults & F.OV and b.chg_on
# a blip shorter than the delay does not trip
r.step(1000, 0, mV=4230)
r.step(1000, 0, mV=4100)
r.step(1000, 0, mV=4230)
assert not b.faults & F.OV
# UV, IR-compensation off by default
r.set(mV=3500)
assert r.until(F.UV, 500, mV=2700) == 1000 + 2000 and not b.dsg_on and b.chg_on
r.run(5, 0, mV=2990)
assert b.faults & F.UV
r.run(3, -100, mV=3010)
assert not b.faults & F.UV
# abuse (abuse_delay_ms 0): confirmed by the second plausible sample, latched, both switches
r.step(1000, 0, mV=4260)
assert not b.faults & F.OV_ABUSE and b.latched == 0
r.step(1000, 0, mV=4260)
assert b.faults & F.OV_ABUSE and b.latched & F.OV_ABUSE and not b.chg_on and not b.dsg_on
r.run(10, 0, mV=4000)
assert b.latched & F.OV_ABUSE and not b.dsg_on
assert b.clear_latched(5, F.UV_ABUSE) == 0  # not latched: nothing to clear
assert b.clear_latched(5, 0xFFFFFF) == F.OV_ABUSE and b.latched == 0 and b.dsg_on
assert b.fault_log[-1][1:] == [F.OV_ABUSE, 5]  # cleared by command, reason 5
r.run(2, 0, mV=2400)
assert b.latched == F.UV_ABUSE and not b.chg_on
b.clear_latched(2, 0xFFFFFF)
r.step(1000, 0, mV=2400)  # cause persists: trips again
assert b.latched == F.UV_ABUSE
log = b.fault_log
assert [e[2] for e in log[:2]] == [1, 0] and log[0][1] == F.OV
""",
        tmp_path,
    )


def test_uv_ir_compensation(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"uv_ir_mohm": 100, "uv_delay_ms": 0, "uv_mV": 2750})
b = r.bms
r.step(0, 0, mV=3500)
r.step(1000, 4000, mV=2700)  # 2700 + 4000 mA x 0.1 ohm = 3100: not under-voltage
assert not b.faults & F.UV
r.step(1000, 400, mV=2700)  # 2740
assert b.faults & F.UV
""",
        tmp_path,
    )


def test_current_protections(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"oc_dsg_mA": 5000, "oc_dsg_delay_ms": 1000, "oc_chg_mA": 2500,
         "oc_chg_delay_ms": 2000, "oc_release_ms": 5000, "sc_mA": 20000})
b = r.bms
r.step(0, 0, mV=3700)
assert r.until(F.OC_DSG, 6000, mV=3700) == 1000 + 1000 and not b.dsg_on and b.chg_on
r.run(4, 0, mV=3700)
assert b.faults & F.OC_DSG
r.run(2, 0, mV=3700)
assert not b.faults & F.OC_DSG and b.dsg_on
assert r.until(F.OC_CHG, -3000, mV=3700) == 1000 + 2000 and not b.chg_on and b.dsg_on
r.run(6, 0, mV=3700)
assert not b.faults & F.OC_CHG
r.step(100, 25000, mV=3700)  # short circuit: the same sample, latched
assert b.faults & F.SC and b.latched & F.SC and not b.dsg_on and not b.chg_on
r.run(60, 0, mV=3700)
assert b.latched & F.SC
assert b.clear_latched(4, F.SC) == F.SC
assert b.dsg_on
""",
        tmp_path,
    )


def test_temperature_protections_with_hysteresis(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"t_delay_ms": 2000, "t_hyst_ddegC": 50, "release_delay_ms": 0})
b = r.bms
r.step(0, 0, mV=3700, temp=250)
r.set(temp=460)
assert r.until(F.OT_CHG, 0) == 1000 + 2000 and not b.chg_on and b.dsg_on
r.step(1000, 0, temp=420)
assert b.faults & F.OT_CHG
r.step(1000, 0, temp=400)
assert not b.faults & F.OT_CHG
r.set(temp=-10)
assert r.until(F.UT_CHG, 0) == 1000 + 2000 and not b.chg_on
r.set(temp=610)
assert r.until(F.OT_DSG, 0) == 1000 + 2000 and not b.dsg_on
r.set(temp=-210)
assert r.until(F.UT_DSG, 0) == 1000 + 2000 and not b.dsg_on and b.faults & F.UT_CHG
r.step(1000, 0, temp=250)
assert b.faults == 0 and b.max_temp_ddegC == 250
""",
        tmp_path,
    )


def test_sensor_plausibility(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"frozen_ms": 60000, "frozen_min_mA": 400, "release_delay_ms": 0})
b = r.bms
r.step(0, 0, mV=3700)
r.step(1000, 0, mV=5100)
assert b.faults & F.SENSOR_RANGE and not b.chg_on and not b.dsg_on
r.step(1000, 0, mV=3700)
assert not b.faults & F.SENSOR_RANGE
r.step(1000, 60000, mV=3700)  # beyond i_range_mA (50 A)
assert b.faults & F.SENSOR_RANGE and b.current_mA == 50000
r.step(1000, 0, mV=3700, temp=1300)
assert b.faults & F.SENSOR_RANGE
r.step(1000, 0, mV=3700, temp=250)
# frozen: bit-identical for 60 s while current flows
t = r.until(F.SENSOR_FROZEN, 1000, mV=3650)
assert t == 61000, t  # 1 s to see the new value, then 60 s unchanged
assert not b.dsg_on and not b.chg_on
r.run(30, 0, mV=3650)
assert b.faults & F.SENSOR_FROZEN  # no current: the reading is still suspect
r.step(1000, 0, mV=3651)
assert not b.faults & F.SENSOR_FROZEN
# at rest a constant reading is normal; near v_max (CV) too
r.run(200, 0, mV=3651)
r.run(200, -800, mV=4195)
assert not b.faults & F.SENSOR_FROZEN
""",
        tmp_path,
    )


def test_a_frozen_current_reading_is_convicted_only_by_the_cells(tmp_path: Path) -> None:
    """A current reading that repeats itself exactly for frozen_ms is SENSOR_FROZEN once
    the cells' mean voltage moved against it by more than frozen_i_mV plus its last step's
    relaxation; a true stop, a steady discharge, or a reading that moves never is. While
    frozen nothing is counted, and the count's interval reaches across the whole window.
    Current is positive on discharge: -1000 is a 1 A charge. While current flows the cells
    move a little each sample (a cell reading that does not is a frozen cell channel)."""
    run_rig(
        _HEAD
        + """
r = Rig({"frozen_ms": 60000, "frozen_i_mV": 30, "release_delay_ms": 0})
b = r.bms
r.step(0, 0, mV=3700)
ir = b.res.ir_mV(0, 1000)  # the relaxation a 1 A step may still bring
assert ir > 10, ir

def charge(s, mV):
    for i in range(s):
        r.step(1000, -1000, mV=mV + (i & 1))

# a charger stops (the reading steps to 0) and the cells relax down by the step's RC part
# plus 20 mV, then stay: no fault
charge(120, 3750)
for i in range(300):
    r.step(1000, 0, mV=3750 - ir - 20 + (20 * 300 // (i + 1)) // 300)
assert not b.faults & F.SENSOR_FROZEN, b.faults
# a steady discharge reading while the cells fall 200 mV: consistent
for i in range(200):
    r.step(1000, 500, mV=3730 - i)
assert not b.faults & F.SENSOR_FROZEN
# a reading that moves (noise) is no frozen channel, whatever the cells do
for i in range(200):
    r.step(1000, i & 1, mV=3600 + i)
assert not b.faults & F.SENSOR_FROZEN
# a charge the sensor stopped seeing: the reading steps to 0 and stays, the cells keep
# rising, by 31 mV within 32 s; SENSOR_FROZEN once it has held for 60 s
charge(120, 3800)
soc = b.soc_cpct
t = 0
while not b.faults & F.SENSOR_FROZEN and t < 600:
    t += 1
    r.step(1000, 0, mV=3800 + t)
assert t == 61, t  # the first sample sees the new value, then 60 s unchanged
assert not b.chg_on and not b.dsg_on
assert b.soc_cpct == soc and b.soc_unc_cpct >= 10000 - soc, (soc, b.soc_unc_cpct)
r.run(60, 3, mV=3800)  # it moved: the fault releases
assert not b.faults & F.SENSOR_FROZEN and b.dsg_on
# the reading stuck at a charge current after the charger stopped: the cells fall beyond
# 30 mV, and nothing is counted after
charge(300, 3820)
assert not b.faults & F.SENSOR_FROZEN  # a charge reading with the cells rising: consistent
r.step(1000, -1000, mV=3791)  # 30 mV below its highest (3821): allowed
assert not b.faults & F.SENSOR_FROZEN
r.step(1000, -1000, mV=3790)  # 31 mV: convicted at once, it has held for long enough
assert b.faults & F.SENSOR_FROZEN and not b.chg_on
soc = b.soc_cpct
for i in range(600):
    r.step(1000, -1000, mV=3780 - (i & 1))
assert b.soc_cpct == soc and b.faults & F.SENSOR_FROZEN
# frozen_i_mV 0: a board that measures no current reads 0 mA whatever flows; never convicted
r = Rig({"frozen_ms": 60000, "frozen_i_mV": 0, "release_delay_ms": 0})
b = r.bms
r.step(0, 0, mV=3700)
for i in range(600):
    r.step(1000, 0, mV=3700 + i // 4)
assert not b.faults & F.SENSOR_FROZEN
""",
        tmp_path,
    )


def test_link_lost_opens_both_switches_at_once(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig()
b = r.bms
r.step(0, 0, mV=3700)
b.set_link_lost(True)
assert b.faults & F.LINK_LOST and not b.chg_on and not b.dsg_on
r.step(1000, 0, mV=3700)
assert not b.chg_on
b.set_link_lost(False)
assert b.chg_on and b.dsg_on and not b.faults
""",
        tmp_path,
    )


def test_window_top_guard_band_is_k_times_the_uncertainty(tmp_path: Path) -> None:
    """Issue 9: charge stops when the count plus k x its credible half-width reaches the
    window top (k = window_k_pct / 100). Two cells counted alike, one with a 4 %
    uncertainty: that one stops 4 % x k of its capacity earlier. The rig's voltage stays
    mid-range while charging, so no voltage bound applies (the branch is discharge)."""
    run_rig(
        _HEAD
        + """
BASE = {"frozen_ms": 86400000, "ce_ppm": 1000000, "window_top_dmAhg": 15000,
        "window_hyst_dmAhg": 200, "i_offset_mA": 0, "i_offset_learned_mA": 0,
        "deadband_mA": 0, "cap_unc_cpct": 0, "i_gain_ppm": 0, "ce_unc_ppm": 0,
        "branch_switch_cpct": 5000}  # the charge never makes the charge branch known

def top_at(k_pct, unc_cpct, path):
    # the count (mAs) at which charging at 1 A opens CHG for WIN_TOP
    d = dict(BASE)
    d["window_k_pct"] = k_pct
    r = Rig(d, state_path=path)
    b = r.bms
    r.step(0, 0, mV=3700)
    e = b.est
    cap = b.learner.cap[0]
    e.set(0, cap // 10000 * 6000, cap // 10000 * unc_cpct)
    e.calibrated(1)
    e.branch = 1  # discharge; the charge makes the branch unknown: the count decides
    e.known = True
    while b.chg_on:
        r.step(1000, -1000, mV=3700)
        assert b.samples < 4000
    assert b.faults & F.WIN_TOP and b.dsg_on and b.warnings & F.W_NEAR_WINDOW_TOP
    return r, e.q[0], cap

r0, q0, cap = top_at(100, 0, "a.json")
# 2000 mAh over 1200 mg: 16667 dmAh/g at full, the top 15000 at 90 % (6480000 mAs)
assert 6478000 <= q0 <= 6482000, q0
_, q1, _ = top_at(100, 400, "b.json")
_, q2, _ = top_at(200, 400, "c.json")
g = cap // 10000 * 400  # the half-width, 4 % of capacity
assert abs((q0 - q1) - g) <= 2000 and abs((q0 - q2) - 2 * g) <= 2000, (q0, q1, q2, g)
# the top releases once the bound is back below it by the hysteresis (20 mAh/g: 86400 mAs)
b = r0.bms
r0.run(80, 1000, mV=3700)
assert b.faults & F.WIN_TOP and not b.chg_on
r0.run(10, 1000, mV=3700)
assert not b.faults & F.WIN_TOP and b.chg_on
""",
        tmp_path,
    )


def test_window_top_bound_from_the_voltage_on_the_charge_branch(tmp_path: Path) -> None:
    """While charging on the known charge branch the voltage bounds the SOC from above
    whatever the count says: the charge-branch SOC of V - I x R0/2 plus the table's and the
    hysteresis' uncertainty. The window top's bound is the lower of that and the count's:
    a count with a wide credible interval (a capacity not learned yet) charges on until the
    voltage's bound reaches the top, where the count's alone would have stopped at once."""
    run_rig(
        _HEAD
        + """
from bms.ocv import CHARGE
r = Rig({"frozen_ms": 86400000, "window_top_dmAhg": 15000, "branch_switch_cpct": 500},
        state_path="a.json")
b = r.bms
v70 = b.ocv.mV_at(CHARGE, 7000) + 20
r.step(0, 0, mV=v70)  # the same voltage before the current starts: no resistance learned
e = b.est
cap = b.learner.cap[0]
e.set(0, cap // 10000 * 6000, cap // 10000 * 3000)  # 60 % +- 30 %: its bound is the top
e.calibrated(1)
e.branch = 0
e.known = True
e.net_mAs = 0
e.hyst_hi = e.hyst_mid = 0  # a long charge already: no hysteresis left to allow for
# charging at 1 A, the voltage says 70 % (plus a 20 mV IR drop)
r.run(3, -1000, mV=v70)
assert b.chg_on and not b.faults & F.WIN_TOP and b.res.fac[0] == 10000, hex(b.faults)
# at the top's OCV the bound (V - 12.5 mV + 20 mV on the charge branch) is past it
r.step(1000, -1000, mV=b.ocv.mV_at(CHARGE, 9000))
assert b.faults & F.WIN_TOP and not b.chg_on and b.soc_cpct < 6100, b.soc_cpct
# at rest the bound cannot rise: a rested reading is no reason to open CHG
r2 = Rig({"frozen_ms": 86400000, "window_top_dmAhg": 15000, "branch_switch_cpct": 500},
         state_path="b.json")
b2 = r2.bms
r2.step(0, 0, mV=3700)
e = b2.est
e.set(0, cap // 10000 * 6000, cap // 10000 * 3000)
e.calibrated(1)
e.branch = 0
e.known = True
r2.run(5, 0, mV=b2.ocv.mV_at(CHARGE, 7000))
assert b2.chg_on
""",
        tmp_path,
    )


def test_a_window_top_at_full_is_the_voltage_limits_to_keep(tmp_path: Path) -> None:
    """The default cell's window top is its design's full point, the charge-branch OCV at
    v_max: the CV phase keeps it. Below v_max the voltage bound's table allowance (20 mV)
    would read that top early: a C/10 charge at 4.178 V (the IR drop 5 mV) read SOC 1 and
    opened CHG at 97.7 %, short of CV and of the full calibration. The bound is capped just
    below v_max, so a window top at full trips only on the count; one below full (90 %,
    4.06 V) still trips on the voltage."""
    run_rig(
        _HEAD
        + """
from bms.ocv import CHARGE

def charge(top, mV, path):
    r = Rig({"frozen_ms": 86400000, "window_top_dmAhg": top, "branch_switch_cpct": 500},
            state_path=path)
    b = r.bms
    r.step(0, 0, mV=3700)  # a boot mid-range: its branch interval is not past the top
    put(b, 9000, 1500, branch=0)  # the count's bound is past full
    r.step(1000, 0, mV=mV)  # the same voltage before the current starts: no R learned
    assert b.chg_on and not b.faults & F.WIN_TOP, hex(b.faults)
    r.run(20, -200, mV=mV)  # C/10, below the CV band (v_max - full_band_mV)
    return b

v_max = 4200
# just below the CV band (v_max - full_band_mV): 4184 - 2.5 (R0 / 2) + 20 reads past v_max
b = charge(16670, v_max - 16, "a.json")
assert b.chg_on and not b.faults & F.WIN_TOP, hex(b.faults)
assert b.lim.top < 16670, b.lim.top
# a top below full: the same bound, uncapped there, still stops the charge
b = charge(15000, b.ocv.mV_at(CHARGE, 9000) - 10, "b.json")
assert b.faults & F.WIN_TOP and not b.chg_on, hex(b.faults)
""",
        tmp_path,
    )


def test_a_rests_noise_is_no_charge_reading_for_the_window_top(tmp_path: Path) -> None:
    """The window top's voltage bound reads a charge, not a rest: a current within
    rest_current_mA after the charger stopped is noise, and the voltage relaxing then (the
    IR drop gone) must not release a top the charge reached, so a charger that ignores the
    CCL is not let in again (a probe: released 6 s after the stop, a CV hold started into a
    cell at 84 % at 3C and drove its anode to 43 mV). A real charge at that lower voltage
    still reads it: its bound falls and the top releases. And a trickle within the rest
    current still raises the bound: its reading may not lower it, but may lift it."""
    run_rig(
        _HEAD
        + """
from bms.ocv import CHARGE

def tripped(path):
    r = Rig({"frozen_ms": 86400000, "window_top_dmAhg": 15000, "branch_switch_cpct": 500,
             "deadband_mA": 0}, state_path=path)
    b = r.bms
    v70 = b.ocv.mV_at(CHARGE, 7000) + 20
    r.step(0, 0, mV=v70)
    put(b, 6000, 3000, branch=0)  # the count's bound is past the top
    r.run(3, -1000, mV=v70)
    assert b.chg_on and not b.faults & F.WIN_TOP, hex(b.faults)
    v90 = b.ocv.mV_at(CHARGE, 9000)
    r.step(1000, -1000, mV=v90)
    assert b.faults & F.WIN_TOP and not b.chg_on
    return r, b, v90

rest_mA = 40  # the default rest_current_mA
# the charger stopped: the cell relaxes 10 mV more than a reading's uncertainty, the
# sensor reads a few mA of charge
r, b, v90 = tripped("a.json")
drop = b.cfg.ocv_unc_mV + 10
for i in range(30):
    r.step(1000, -(rest_mA if i % 2 else 8), mV=v90 - drop)
    assert b.faults & F.WIN_TOP and not b.chg_on, (i, hex(b.faults))
# the same voltage under a charge above the rest current is a reading: the bound falls
r, b, v90 = tripped("b.json")
r.step(1000, -(rest_mA + 60), mV=v90 - drop)
assert not b.faults & F.WIN_TOP and b.chg_on, hex(b.faults)
# and a trickle within the rest current still raises it: the voltage climbing to the top's
# OCV under 30 mA trips the top again
for i in range(40):
    r.step(1000, -30, mV=v90 - drop + i)
    if b.faults & F.WIN_TOP:
        break
assert b.faults & F.WIN_TOP and not b.chg_on and 5 <= i < 39, (i, hex(b.faults))  # by the voltage
""",
        tmp_path,
    )


def test_window_top_hard_limit_is_refused(tmp_path: Path) -> None:
    run_rig(
        """
from bms.config import Config
c = Config()
err = c.update({"window_top_dmAhg": 23000})
assert err.startswith("window_top_dmAhg:"), err
assert c.window_top_dmAhg == 16670
""",
        tmp_path,
    )


def test_window_bottom_only_when_the_estimate_is_sure(tmp_path: Path) -> None:
    """Issue 9: discharge stops at the window bottom only when the estimate is confident:
    the count at the bottom and the credible upper end within 5 % of capacity
    above it. An unsure estimate leaves it to the voltage limits, so no cell that may still
    hold more than 5 % is cut."""
    run_rig(
        _HEAD
        + """
BASE = {"frozen_ms": 86400000, "ce_ppm": 1000000, "window_bottom_dmAhg": 1000,
        "window_hyst_dmAhg": 100, "i_offset_mA": 0, "i_offset_learned_mA": 0,
        "deadband_mA": 0, "cap_unc_cpct": 0, "i_gain_ppm": 0, "ce_unc_ppm": 0}

def rig(unc_cpct, path):
    r = Rig(BASE, state_path=path)
    b = r.bms
    r.step(0, 0, mV=3700)
    e = b.est
    cap = b.learner.cap[0]
    e.set(0, cap // 10000 * 1000, cap // 10000 * unc_cpct)  # 10 % left, 4 % above the bottom
    e.calibrated(1)
    return r, b

# sure (0.5 %): trips once the count reaches the bottom, 100 mAh/g of 1667 (6.0 %)
r, b = rig(50, "a.json")
assert r.until(F.WIN_BOTTOM, 2000, mV=3300) > 0 and not b.dsg_on and b.chg_on
assert 590 <= b.soc_cpct <= 600, b.soc_cpct
# released by a charge past the hysteresis (10 mAh/g: 0.6 %)
r.run(10, -2000, mV=3400)
assert b.faults & F.WIN_BOTTOM
r.run(15, -2000, mV=3400)
assert not b.faults & F.WIN_BOTTOM and b.dsg_on
# a little beyond the slack (6 %): trips only when the upper end is 5 % above the bottom,
# i.e. at a count 1 % below it
r3, b3 = rig(600, "c.json")
assert r3.until(F.WIN_BOTTOM, 2000, mV=3300) > 0 and not b3.dsg_on
assert 490 <= b3.soc_cpct <= 500, b3.soc_cpct
# unsure (20 %): the bound never reaches the bottom; discharge goes on to the voltage limit
r2, b2 = rig(2000, "b.json")
r2.run(300, 2000, mV=3300)
assert b2.dsg_on and b2.soc_cpct < 300 and not b2.faults & F.WIN_BOTTOM
r2.run(5, 2000, mV=2700)
assert b2.faults & F.UV and not b2.dsg_on and not b2.faults & F.WIN_BOTTOM
""",
        tmp_path,
    )


def test_missing_temperature_never_clears_a_fault_or_allows_charging(tmp_path: Path) -> None:
    """Issue 10 item 1: a sample with fewer temperature readings than configured is a
    sensor fault; it never releases a temperature fault or closes a switch."""
    out = run_rig(
        _HEAD
        + """
def alternate(r, count, first_missing):
    # 70 degC and no-temperature samples in turn; returns samples with a switch closed
    b = r.bms
    on = 0
    for k in range(count):
        missing = (k % 2 == 0) == first_missing
        r.nt = 0 if missing else r.cfg.n_temps
        r.step(1000, 0, mV=3700, temp=700)
        if b.chg_on or b.dsg_on:
            on += 1
    r.nt = r.cfg.n_temps
    return on

# the attack on a running pack: the first missing reading opens CHG (and DSG) at once
r = Rig()
b = r.bms
r.run(5, 0, mV=3700)
assert b.chg_on and b.dsg_on
r.nt = 0
r.step(1000, 0, mV=3700)
assert not b.chg_on and not b.dsg_on and b.faults & F.SENSOR_RANGE, hex(b.faults)
r.nt = 1
r.step(1000, 0, mV=3700, temp=250)
assert not b.chg_on  # the sensor fault releases only after release_delay_ms
counts = [alternate(r, 40, True)]

# from a fresh boot, the first sample hot or missing; and with no release delays at all,
# nor a sensor delay: the debounce of a sensor that keeps dropping out is not trusted
for changes in ({}, {"release_delay_ms": 0, "sensor_delay_ms": 0, "t_delay_ms": 60000}):
    for first_missing in (True, False):
        counts.append(alternate(Rig(changes, state_path="s.json"), 40, first_missing))

# an over-temperature fault in force is not cleared by samples without temperature
r = Rig({"release_delay_ms": 0, "sensor_delay_ms": 0})
b = r.bms
r.run(3, 0, mV=3700)
r.set(temp=700)
r.run(5, 0)
assert b.faults & F.OT_CHG and b.faults & F.OT_DSG and not b.chg_on and not b.dsg_on
r.nt = 0
r.run(10, 0)
assert b.faults & F.OT_CHG and b.faults & F.OT_DSG and not b.chg_on and not b.dsg_on
# two sensors configured, one reported (cool): still a sensor fault, nothing released
r2 = Rig({"n_temps": 2, "release_delay_ms": 0}, state_path="s2.json")
b2 = r2.bms
r2.set(mV=3700, temp=700)
r2.run(3, 0)
assert b2.faults & F.OT_CHG
r2.nt = 1
r2.set(temp=250)
r2.run(5, 0)
assert b2.faults & F.OT_CHG and b2.faults & F.SENSOR_RANGE and not b2.chg_on
r2.nt = 2
r2.step(1000, 0, mV=3700, temp=250)  # both readings back and cool: released
assert not b2.faults & (F.OT_CHG | F.SENSOR_RANGE) and b2.chg_on
# a board configured without a sensor runs without temperature protection, as before
r3 = Rig({"n_temps": 0}, state_path="s3.json")
r3.run(3, 0, mV=3700)
assert r3.bms.chg_on and r3.bms.dsg_on and r3.bms.faults == 0
print(counts)
""",
        tmp_path,
    )
    assert out.strip() == "[0, 0, 0, 0, 0]", out


def test_implausible_cell_readings_never_feed_a_voltage_protection(tmp_path: Path) -> None:
    """Issue 9: a sample flagged SENSOR_RANGE (a cell reading out of range) feeds no
    voltage protection, and a single glitch never latches an abuse fault."""
    run_rig(
        _HEAD
        + """
r = Rig({"release_delay_ms": 0, "ov_delay_ms": 3000})
b = r.bms
r.run(3, 0, mV=3700)
# one tap reading 0 mV or full scale (65,535 mV) once, and the pattern repeated
for glitch in (0, 65535, 0, 65535):
    r.cells[0] = glitch
    r.step(1000, 0)
    assert b.faults & F.SENSOR_RANGE and not b.chg_on and not b.dsg_on
    assert b.latched == 0 and not b.faults & (F.UV | F.OV | F.UV_ABUSE | F.OV_ABUSE), hex(b.faults)
    r.step(1000, 0, mV=3700)
    assert b.faults == 0 and b.chg_on and b.dsg_on, hex(b.faults)
# a plausible abuse reading once (a bit error the CRC missed, a spike): not latched
r.step(1000, 0, mV=4300)
assert b.latched == 0
r.step(1000, 0, mV=3700)
r.step(1000, 0, mV=2400)
assert b.latched == 0
r.run(3, 0, mV=3700)
# abuse, glitch, abuse: the pair must be consecutive plausible samples
r.step(1000, 0, mV=4300)
r.step(1000, 0, mV=65535)
assert b.latched == 0
r.step(1000, 0, mV=4300)
assert b.latched == 0
r.step(1000, 0, mV=4300)
assert b.latched == F.OV_ABUSE and not b.chg_on and not b.dsg_on
assert b.clear_latched(5, 0xFFFFFF) == F.OV_ABUSE
r.run(3, 0, mV=3700)
assert b.faults == 0
# an OV trip under way keeps running through an implausible sample, none starts on one
r.step(1000, 0, mV=4230)  # OV seen: 3 s from here
r.step(1000, 0, mV=65535)
r.step(1000, 0, mV=4230)
assert not b.faults & F.OV
r.step(1000, 0, mV=4230)
assert b.faults & F.OV
r.run(2, 0, mV=3700)
assert not b.faults & F.OV
r.run(5, 0, mV=5100)  # implausible only: no OV starts, no OV_ABUSE
assert b.faults == F.SENSOR_RANGE and b.latched == 0, hex(b.faults)
# a UV in force is not released by implausible samples
r.run(3, 0, mV=2700)
assert b.faults & F.UV
r.run(3, 0, mV=900)
assert b.faults & F.UV and b.latched == 0
r.step(1000, 0, mV=3100)
assert not b.faults & F.UV
# a longer confirmation: abuse_delay_ms of sample time from the first sample showing it
r2 = Rig({"abuse_delay_ms": 2500}, state_path="s2.json")
r2.run(2, 0, mV=3700)
assert r2.until(F.OV_ABUSE, 0, mV=4300) == 1000 + 2500 + 500
""",
        tmp_path,
    )


def test_alternating_hot_and_missing_temperatures_over_the_link(tmp_path: Path) -> None:
    """The issue's attack end to end, through the firmware's own loop: after a good sample,
    20 SAMPLE frames alternating 70 degC and no temperature reading (1 s apart). Before
    the fix, 17 of the 20 closed both switches."""
    from host.protocol.codec import FrameType, encode_frame, encode_sample
    from tests.firmware.line_script import CELLS, LineScript, run_script

    script = LineScript()
    script.probe(1000)  # 25 degC: both switches close
    t_ms = 1000
    for k in range(20):
        t_ms += 1000
        s = script.next_seq()
        temps = [] if k % 2 == 0 else [700]
        frame = encode_frame(FrameType.SAMPLE, s, encode_sample(t_ms, CELLS, 500, temps))
        script.burst(frame, 1000, (FrameType.STATE, s))
    rec = run_script(tmp_path, script)
    assert rec["done"] and rec["met"] == script.expected and rec["violations"] == 0, rec
    # one switch decision with a switch closed: the good sample's; none of the 20
    assert rec["applies"] == 21 and rec["closed"] == 1, rec

"""SOC estimator, calibrations, offset and capacity learning under MicroPython (sample time).

Current is positive on discharge. Default cell: 2000 mAh = 7,200,000 mAs. Expected values
are worked out here from the configuration's tables with numpy (the OCV branches read as
the document describes them), not with the firmware's own integer routines.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tests.firmware.bms_harness import default_config, run_rig, soc_at

_HEAD = """
from bmsrig import Rig, put
from bms import faults as F
from bms.ocv import CHARGE, DISCHARGE
CAP = 7200000
"""


def _branch_ocv_script() -> str:
    """MicroPython text defining ocv(branch, s): the default table's branch at s cpct,
    linear between its points (the rig's cell on its branch, no hysteresis left)."""
    d = default_config()
    return f"""
SOC = {[int(x) for x in d["ocv_soc_cpct"]]}
BRANCH = {{DISCHARGE: {[int(x) for x in d["ocv_dsg_mV"]]},
          CHARGE: {[int(x) for x in d["ocv_chg_mV"]]}}}
def ocv(branch, s):
    v = BRANCH[branch]
    for i in range(1, len(SOC)):
        if s <= SOC[i]:
            return v[i - 1] + (v[i] - v[i - 1]) * (s - SOC[i - 1]) / (SOC[i] - SOC[i - 1])
    return v[-1]
"""


_BRANCH_OCV = _branch_ocv_script()


def test_counting_matches_exact_integration(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"ce_ppm": 995000, "rest_current_mA": 0})
b = r.step(0, 0, mV=3700)
q0 = b.counter.q_mAs
e0 = b.est.q[0]
x = 7
exact_u = 0  # 1e-6 mA*ms: charge counted times efficiency, discharge in full
for i in range(20000):
    x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    cur = (x >> 9) % 3001 - 1500
    dt = 500 + (x & 1023)
    if -5 < cur < 5:
        cur = 0  # the deadband
    r.step(dt, cur, mV=3700)
    exact_u += -cur * dt * (995000 if cur < 0 else 1000000)
got_u = (1000 * (b.counter.q_mAs - q0) + b.counter.rem_mAms) * 1000000 - b.counter.loss_u
assert got_u == exact_u, (got_u, exact_u)
assert b.est.q[0] - e0 == b.counter.q_mAs - q0  # the cell's count is the counter's
assert b.flags & (1 << 7 | 1 << 8 | 1 << 9) == 0  # no calibration moved it
assert not b.offset.known  # no rest: no offset learned
""",
        tmp_path,
    )


def test_boot_without_state_is_the_interval_between_the_branches(tmp_path: Path) -> None:
    """Issue 9: with the branch unknown the SOC is the interval between the branch readings.
    Its SOC is the middle, unless one branch is ruled out (a completed move leaves the cell
    at least branch_switch_cpct above SOC 0 on the charge branch, below 100 % on the
    discharge branch): then the other branch's reading, the interval reaching the far end.
    The reported uncertainty always covers the whole interval."""
    d = default_config()
    du = d["ocv_unc_mV"]
    floor = d["ocv_unc_cpct"]
    sw = d["branch_switch_cpct"]
    cases = []
    for mV in (3700, 3393, 3850):
        lo, hi = soc_at(mV, "charge"), soc_at(mV, "discharge")
        u_lo = (soc_at(mV + du, "charge") - soc_at(mV - du, "charge")) / 2 + floor
        u_hi = (soc_at(mV + du, "discharge") - soc_at(mV - du, "discharge")) / 2 + floor
        c_ok, d_ok = lo + u_lo >= sw, hi - u_hi <= 10000 - sw
        if c_ok and not d_ok:
            want = lo
        elif d_ok and not c_ok:
            want = hi
        else:
            want = (lo - u_lo + hi + u_hi) / 2
        cases.append((mV, want, lo - u_lo, hi + u_hi))
    out = run_rig(
        _HEAD
        + """
for mV in (3700, 3393, 3850):
    r = Rig(state_path="none.json")
    b = r.bms
    assert b.boot_flags & 2 and not b.chg_on and not b.dsg_on and b.soc_unc_cpct == 10000
    r.step(0, 0, mV=mV)
    assert b.flags & (1 << 6) and not b.flags & (1 << 3) and b.warnings & 2
    print(mV, b.soc_cpct, b.soc_unc_cpct, b.lim.top, b.lim.util_full)
""",
        tmp_path,
    )
    for line, (mV, want, lo, hi) in zip(out.splitlines(), cases, strict=True):
        got_mV, soc, unc, top, util_full = (int(x) for x in line.split())
        assert got_mV == mV
        # (integer steps: readings floor to whole cpct, the interval's ends to whole mAs)
        assert abs(soc - want) <= 3, (mV, soc, want)
        # credible: the whole interval inside soc +- unc, and no wider than it needs
        assert soc - unc <= lo + 3 and soc + unc >= hi - 3, (mV, soc, unc, lo, hi)
        assert unc <= max(soc - lo, hi - soc) + 3, (mV, soc, unc, lo, hi)
        # the window top's bound is the fuller end (hi), never below it
        assert top >= hi * util_full / 10000 - 5, (mV, top, hi)
    # 3393 mV: the charge branch would be 4 %, ruled out; the cell reads 40 % discharged.
    # 3850 mV: the discharge branch would be 89 %, ruled out; 70 % charged.
    assert abs(int(out.splitlines()[1].split()[1]) - 4000) <= 2
    assert abs(int(out.splitlines()[2].split()[1]) - soc_at(3850, "charge")) <= 2


def test_branch_follows_the_charge_moved(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"frozen_ms": 86400000})
b = r.bms
r.step(0, 0, mV=3700)
sw = CAP * b.cfg.branch_switch_cpct // 10000  # 15 %: 1,080,000 mAs
r.run(sw // 2000 - 5, 2000, mV=3700)  # 10000 mAs short of it
assert not b.est.known
r.run(10, 2000, mV=3700)
assert b.est.known and b.est.branch == DISCHARGE and b.flags & (1 << 4)
r.run(5, -2000, mV=3700)  # 10000 mAs back: below 1/32 of the switch, still known
assert b.est.known
r.run(20, -2000, mV=3700)
assert not b.est.known and b.warnings & 2
r.run(sw // 2000, -2000, mV=3700)
assert b.est.known and b.est.branch == CHARGE and not b.flags & (1 << 4)
""",
        tmp_path,
    )


# Rest corrections from a set count and uncertainty: (count's SOC, its half-width) in cpct,
# against a rested reading of 35 % on the discharge branch.
_BLEND_CASES = [(3800, 0), (3800, 50), (3800, 190), (3300, 600), (3200, 2000), (5500, 50)]
_READING_CPCT = 3500


def test_rest_correction_is_the_posterior_of_two_gaussians(tmp_path: Path) -> None:
    """The count (mean c, half-width sc) and a rested OCV reading on a known branch (r, sr)
    are two estimates of the SOC; the correction must land on their posterior, computed
    here in floating point: mean (sr^2 c + sc^2 r) / (sc^2 + sr^2), half-width
    sc sr / sqrt(sc^2 + sr^2). Limits: a count without doubt stays, one far beyond 3
    half-widths of both is replaced by the reading (sr). The firmware works in integers
    (widths in 0.1 % steps, the gain in 1/1000): the bound allowed is what those steps can
    move the float result, worked out below, not a fitted margin. The rest is relaxed
    (rest_tau_s 0) and the branch long switched (no hysteresis left to allow for)."""
    d = default_config()
    soc = np.array(d["ocv_soc_cpct"], dtype=float)
    dsg = np.array(d["ocv_dsg_mV"], dtype=float)
    mV = round(float(np.interp(_READING_CPCT, soc, dsg)))
    r = soc_at(mV, "discharge")
    du = d["ocv_unc_mV"]
    sr = d["ocv_unc_cpct"] + (soc_at(mV + du, "discharge") - soc_at(mV - du, "discharge")) / 2
    cases = ", ".join(f"({c}, {u})" for c, u in _BLEND_CASES)
    out = run_rig(
        _HEAD
        + f"""
for c_cpct, u_cpct in ({cases},):
    r = Rig({{"rest_time_ms": 60000, "rest_window_ms": 10000, "rest_tau_s": 0,
              "i_offset_mA": 0, "i_offset_learned_mA": 0}}, state_path="none.json")
    b = r.bms
    r.step(0, 0, mV={mV})
    put(b, c_cpct, u_cpct)
    cap = b.learner.cap[0]
    for t in range(200):
        q0 = b.est.q[0]
        u0 = b.est.unc[0]
        r.step(1000, 0, mV={mV})
        if b.flags & (1 << 9):
            break
    assert b.flags & (1 << 9) and b.learner.cap[0] == cap, t
    print(cap, q0, u0, b.est.q[0], b.est.unc[0], t + 1, b.flags & (1 << 2))
""",
        tmp_path,
    )
    rows = [[int(x) for x in line.split()] for line in out.splitlines()]
    assert len(rows) == len(_BLEND_CASES)
    # the reading comes with the rest: not before rest_time_ms (60 s) of rest has passed,
    # and no later than one dV/dt window (10 s) after, with the resting flag set
    for row in rows:
        at_s, resting = row[5], row[6]
        assert 60 <= at_s <= 71 and resting, row
    rows = [row[:5] for row in rows]

    def posterior(c: float, sc: float, sr_: float) -> tuple[float, float]:
        if sc == 0:
            return c, 0.0
        if (r - c) ** 2 > 9 * (sc**2 + sr_**2):
            return r, sr_  # the reading replaces the count
        w = sc**2 / (sc**2 + sr_**2)
        return c + w * (r - c), sc * sr_ / math.hypot(sc, sr_)

    for (c_set, u_set), (cap, q0, u0, q1, u1) in zip(_BLEND_CASES, rows, strict=True):
        c, sc = 1e4 * q0 / cap, 1e4 * u0 / cap  # the count's state just before the rest
        got_mean, got_sigma = 1e4 * q1 / cap, 1e4 * u1 / cap
        want_mean, want_sigma = posterior(c, sc, sr)
        corners = [
            posterior(c, max(sc - a, 0.0), max(sr - b, 0.0)) for a in (0, 10) for b in (0, 10)
        ]
        mean_tol = max(abs(m - want_mean) for m, _ in corners) + abs(r - c) / 1000 + 3
        sigma_tol = max(abs(s - want_sigma) for _, s in corners) + 10 + 2
        assert abs(got_mean - want_mean) <= mean_tol, (c_set, u_set, got_mean, want_mean)
        assert abs(got_sigma - want_sigma) <= sigma_tol, (c_set, u_set, got_sigma, want_sigma)


def test_a_rested_reading_widens_with_the_relaxation_still_to_come(tmp_path: Path) -> None:
    """A rest whose voltage still moves (the last window's slope x rest_tau_s to come) is
    a weaker reading: the same count keeps more of its own weight."""
    out = run_rig(
        _HEAD
        + """
res = []
for tau in (0, 1000):
    r = Rig({"rest_time_ms": 60000, "rest_window_ms": 30000, "rest_dvdt_uV_s": 5000,
             "rest_tau_s": tau}, state_path="s%d.json" % tau)
    b = r.bms
    r.step(0, 0, mV=3393)
    put(b, 3000, 300)
    v = 3380
    while not b.flags & (1 << 9):
        v += 1 if b.samples % 3 == 0 else 0  # still rising: 1 mV / 3 s
        r.step(1000, 0, mV=v)
        assert b.samples < 200
    res.append(b.soc_cpct)
print(res[0], res[1])
""",
        tmp_path,
    )
    relaxed, moving = (int(x) for x in out.split())
    # the reading (~40 %) pulls the 30 % count less when the voltage is still moving
    assert 3000 < moving < relaxed, (relaxed, moving)


def test_rest_reading_far_outside_the_count_replaces_it(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"frozen_ms": 86400000})
b = r.bms
r.step(0, 0, mV=3600)
put(b, 8000, 50)  # a wrong state: the count says 80 % and claims 0.5 %
b.learner.point(b.cfg, 0, 8000, 50, True)
v = b.ocv.mV_at(DISCHARGE, 4000)  # the rested cell reads 40 %
r.run(700, 0, mV=v)
assert abs(b.soc_cpct - 4000) <= 1, b.soc_cpct
# no charge moved since the anchor, so the jump says the count was wrong, not the
# capacity: nothing is learned from it
assert b.cap_learn_count == 0 and b.learner.cap[0] == CAP, b.learner.cap[0]
assert b.soc_unc_cpct > 50
""",
        tmp_path,
    )


def test_rest_with_branch_unknown_keeps_what_both_intervals_allow(tmp_path: Path) -> None:
    """Branch unknown at a rest: the cell lies within its own credible interval and between
    its two branch readings; it keeps the common part (the count clamped into it). When they
    do not meet, the branch interval alone (the count was wrong)."""
    d = default_config()
    lo, hi = soc_at(3700, "charge"), soc_at(3700, "discharge")
    out = run_rig(
        _HEAD
        + """
r = Rig({"rest_time_ms": 120000}, state_path="a.json")
b = r.bms
r.step(0, 0, mV=3700)
put(b, 5000, 2000)  # 30 .. 70 %: overlaps the branches' 48 .. 78 % at 3700 mV
b.est.known = False
r.run(300, 0, mV=3700)
assert not b.flags & (1 << 9)  # no correction: only the interval narrows
print(b.soc_cpct, b.soc_unc_cpct)
r2 = Rig({"rest_time_ms": 120000}, state_path="b.json")
b2 = r2.bms
r2.step(0, 0, mV=3700)
put(b2, 2000, 300)  # 17 .. 23 %: nowhere near it
b2.est.known = False
r2.run(300, 0, mV=3700)
print(b2.soc_cpct, b2.soc_unc_cpct)
""",
        tmp_path,
    )
    (s1, u1), (s2, u2) = ([int(x) for x in line.split()] for line in out.splitlines())
    du, floor = d["ocv_unc_mV"], d["ocv_unc_cpct"]
    lo_edge = lo - (soc_at(3700 + du, "charge") - soc_at(3700 - du, "charge")) / 2 - floor
    hi_edge = hi + (soc_at(3700 + du, "discharge") - soc_at(3700 - du, "discharge")) / 2 + floor
    # the common part: lo_edge .. 70 %; the count (50 %) lies inside and stays
    assert s1 == 5000 and 5000 - u1 <= lo_edge + 2 and 5000 + u1 >= 7000 - 2, (s1, u1)
    assert u1 < 2000 + 50  # narrowed (plus what the rest's offset bound added)
    # no common part: the branch interval's middle, covering it
    assert abs(s2 - (lo_edge + hi_edge) / 2) <= 2 and s2 + u2 >= hi_edge - 2, (s2, u2)


def test_full_calibration_reads_each_cell_on_the_charge_branch(tmp_path: Path) -> None:
    d = default_config()
    du = d["ocv_unc_mV"]
    # cells at 4195, 4180, 4160 mV at the taper (120 mA, 55 mohm: 6.6 mV IR drop)
    want = [soc_at(v - 6.6, "charge") for v in (4195, 4180, 4160)]
    unc = [
        50 + (soc_at(v - 6.6 + 3.3 + du, "charge") - soc_at(v - 6.6 - 3.3 - du, "charge")) / 2
        for v in (4195, 4180, 4160)
    ]
    out = run_rig(
        _HEAD
        + """
r = Rig({"n_cells": 3, "n_temps": 1, "full_time_ms": 10000, "taper_mA": 150,
         "r_cell_uohm": 55000, "r_soc_pct": [100] * 13, "frozen_ms": 86400000,
         "bal_enable": 0, "t_sense_ddegC": 0})
b = r.bms
r.step(0, 0, mV=3700)
for k, v in enumerate((4195, 4180, 4160)):
    r.cells[k] = v
r.run(9, -120)
assert not b.flags & (1 << 7)
r.run(3, -120)
assert b.flags & (1 << 7) and b.est.branch == CHARGE and b.est.known
print(" ".join(str(b.cell_soc_cpct[k]) for k in range(3)))
print(" ".join(str(b.est.unc_cpct[k]) for k in range(3)))
print(b.soc_cpct, b.remaining_mAh)
""",
        tmp_path,
    )
    socs, uncs, pack = ([int(x) for x in line.split()] for line in out.splitlines())
    for k in range(3):
        # the IR drop in whole mV (6 of 6.6): 1 mV is 6.6 cpct at the charge branch's top
        assert abs(socs[k] - want[k]) <= 7, (k, socs[k], want[k])
        assert abs(uncs[k] - unc[k]) <= 7, (k, uncs[k], unc[k])
    # the pack: the mean of its cells; what it can deliver: its emptiest cell's charge
    assert abs(pack[0] - sum(socs) / 3) <= 1
    assert abs(pack[1] - min(socs) * 2000 / 10000) <= 1, pack


def test_empty_calibration_reads_on_the_discharge_branch(tmp_path: Path) -> None:
    d = default_config()
    du = d["ocv_unc_mV"]
    # 300 mA at 2915 mV with 55 mohm: 2931.5 mV IR-free, the whole IR term uncertain
    want = soc_at(2931.5, "discharge")
    run_rig(
        _HEAD
        + f"""
r = Rig({{"v_min_mV": 2900, "empty_current_mA": 400, "r_cell_uohm": 55000,
         "r_soc_pct": [100] * 13, "frozen_ms": 86400000, "t_sense_ddegC": 0}})
b = r.bms
r.step(0, 0, mV=3300)
put(b, 500, 100)
r.step(1000, 500, mV=2915)  # above empty_current_mA: no calibration
assert not b.flags & (1 << 8)
r.step(1000, 300, mV=2915)
# the IR drop in whole mV (16 of 16.5): 1 mV is 3.2 cpct at the discharge branch's foot
assert b.flags & (1 << 8) and abs(b.soc_cpct - {want:.1f}) <= 4, b.soc_cpct
assert b.est.branch == DISCHARGE
# the count follows the cell below the cut-off: the SOC goes negative (signed)
r.run(300, 300, mV=2890)
assert b.soc_cpct < 0 and b.remaining_mAh == 0, b.soc_cpct
""",
        tmp_path,
    )
    del du


def test_an_empty_calibration_past_the_tables_end_keeps_a_count_between_the_two(
    tmp_path: Path,
) -> None:
    """At the cut-off under a small current (a load kept to the DCL at v_min) the IR-free
    reading lies past the discharge table's foot: the cell is somewhere between the reading
    and SOC 0 (soc.py's read()). A count inside that span stays; one above it moves to 0,
    one below it to the reading. The interval covers the span either way; the capacity
    learner gets the span's middle (the end is where the cell is least likely to be). At
    rest the current reading is noise: no calibration there."""
    # 300 mA at 2760 mV with 55 mohm: 2776.5 mV IR-free, below the table's foot
    reading = soc_at(2776.5, "discharge")
    assert -1000 < reading < -200, reading
    out = run_rig(
        _HEAD
        + """
for count in (-200, 300, -900):
    r = Rig({"empty_current_mA": 400, "r_cell_uohm": 55000, "r_soc_pct": [100] * 13,
             "frozen_ms": 86400000, "t_sense_ddegC": 0})
    b = r.bms
    r.step(0, 0, mV=3000)
    put(b, count, 100)
    r.step(1000, 20, mV=2760)  # a rest's noise at the cut-off (below rest_current_mA)
    rest = b.flags >> 8 & 1
    r.step(1000, 300, mV=2760)
    lrn = b.learner
    print(count, rest, b.flags >> 8 & 1, b.cell_soc_cpct[0], b.soc_unc_cpct,
          lrn.anc_ok[0], lrn.anc_cpct[0], lrn.anc_unc[0])
""",
        tmp_path,
    )
    for line in out.splitlines():
        count, rest, flag, soc, unc, anchored, point, point_unc = (int(x) for x in line.split())
        assert rest == 0 and flag == 1, line  # no calibration at rest; one under the load
        want = min(max(count, reading), 0)
        # 1 mV of IR drop is about 3 cpct at the foot; the count moved 0.4 cpct in the step
        assert abs(soc - want) <= 5, (count, soc, want)
        assert soc - unc <= reading and soc + unc >= 0, (count, soc, unc)
        # the capacity learner's point: the span's middle, its interval still covering it
        assert anchored == 1 and abs(point - reading / 2) <= 5, (point, reading)
        assert point - point_unc <= reading and point + point_unc >= 0, (point, point_unc)
        assert point_unc < unc, (point_unc, unc)


def test_the_half_width_grows_by_each_bound_and_only_evidence_shrinks_it(tmp_path: Path) -> None:
    """The sigma terms: the offset bound over time (30 mA until learned, 2 mA after), the
    count's scale (capacity prior + gain bound) times the charge moved since the last
    calibration, the coulombic efficiency's bound times the charge counted in."""
    run_rig(
        _HEAD
        + """
r = Rig({"rest_current_mA": 0, "deadband_mA": 0, "ce_unc_ppm": 0, "ce_ppm": 1000000,
         "frozen_ms": 86400000})
b = r.bms
r.step(0, 0, mV=3700)
put(b, 5000, 0)
u0 = b.est.unc[0]
# 100 s of 1 mA (not a rest: rest_current_mA is 0, so no offset is learned)
r.run(100, 1, mV=3700)
assert b.est.unc[0] - u0 == 30 * 100 + 100 * 27 // 100, b.est.unc[0] - u0  # i_offset_mA x t
b.offset.known = True
u0 = b.est.unc[0]
r.run(100, 1, mV=3700)
assert b.est.unc[0] - u0 == 2 * 100 + 27, b.est.unc[0] - u0  # i_offset_learned_mA x t
# the scale: 27 % (cap_unc 25 % + gain 2 %) of the charge moved; back to where it was: gone
put(b, 5000, 0)
b.offset.known = True
r.run(360, 2000, mV=3700)  # 720 As = 10 % of capacity
moved = 2000 * 360
assert abs(b.est.unc[0] - (moved * 27 // 100 + 2 * 360)) <= 2, b.est.unc[0]
r.run(360, -2000, mV=3700)
assert b.est.unc[0] == 2 * 720, b.est.unc[0]  # only the offset's time term is left
# the efficiency's bound on the charge counted in
r2 = Rig({"rest_current_mA": 0, "deadband_mA": 0, "ce_unc_ppm": 5000, "cap_unc_cpct": 0,
          "i_gain_ppm": 0, "i_offset_mA": 0, "i_offset_learned_mA": 0,
          "frozen_ms": 86400000}, state_path="r2.json")
b2 = r2.bms
r2.step(0, 0, mV=3700)
put(b2, 5000, 0)
r2.run(100, -2000, mV=3700)
r2.run(100, 2000, mV=3700)  # charged in 200 As (x 0.998 efficiency), then out again
assert abs(b2.est.unc[0] - 199600 * 5 // 1000) <= 2, b2.est.unc[0]
""",
        tmp_path,
    )


def test_a_steady_current_bounds_a_count_divided_by_the_wrong_capacity(tmp_path: Path) -> None:
    """A cell at 80 % of the capacity the BMS assumes, discharged at 1 A from a full
    calibration: its voltage is the discharge branch at its true SOC less the IR drop. The
    count alone runs 20 % of the charge moved ahead of the truth (17 % of SOC at the end);
    the readings under load hold it within their own interval: the table's uncertainty, a
    quarter of the IR drop and the RC pairs' lag over the current's C/20 band, read on the
    table here. No reading before the RC pairs settle (3 x rest_tau_s), and the credible
    interval holds the truth at every sample."""
    d = default_config()
    r_mohm, cur_mA = 55, 1000
    ir_mV = cur_mA * r_mohm / 1000
    # in whole mV, as the firmware rounds them: 20 + 13 (a quarter of 55) + 5 (100 mA)
    dv_mV = d["ocv_unc_mV"] + int(ir_mV / 4) + int((d["capacity_mAh"] // 20) * r_mohm / 1000)
    soc = np.array(d["ocv_soc_cpct"], dtype=float)
    dsg = np.array(d["ocv_dsg_mV"], dtype=float)
    params = (
        f"R_MOHM = {r_mohm}\nCUR = {cur_mA}\nIR = {ir_mV}\n"
        f"SOC = {[int(x) for x in soc]}\nDSG = {[int(x) for x in dsg]}\n"
    )
    out = run_rig(
        _HEAD
        + params
        + """
r = Rig({"rest_current_mA": 40, "r_cell_uohm": R_MOHM * 1000, "r_soc_pct": [100] * 13,
         "frozen_ms": 86400000, "t_sense_ddegC": 0, "i_offset_mA": 0,
         "i_offset_learned_mA": 0, "ce_unc_ppm": 0, "ce_ppm": 1000000})
b = r.bms
def ocv(s):  # the discharge branch at s cpct, linear between its points
    for i in range(1, len(SOC)):
        if s <= SOC[i]:
            return DSG[i - 1] + (DSG[i] - DSG[i - 1]) * (s - SOC[i - 1]) / (SOC[i] - SOC[i - 1])
    return DSG[-1]
r.step(0, 0, mV=4007)
put(b, 10000, 50)
# a reading that misses the count's interval altogether (3,000 mV at 100 %) moves nothing:
# one of the two is not credible, and the next rest tells which
r.run(400, CUR, mV=3000)
assert b.est.q[0] == CAP - 400 * CUR and b.res.n_ev == 0
r.run(400, -CUR, mV=3000)
put(b, 10000, 50)
b.res.n_ev = 1  # learned (the factor on the design's R stays 1: the rig's cell is the design)
true_cap = CAP * 8 // 10
q_true = true_cap
for t in range(1, 5001):  # 5000 s at 1 A: the truth from 100 % to 13.2 %
    q_true -= CUR
    s_true = q_true * 10000 // true_cap
    r.step(1000, CUR, mV=int(ocv(s_true) - IR))
    e = b.est
    if t < 300:
        assert e.q[0] == CAP - CUR * t, t  # no reading before the RC pairs settle
    print(t, s_true, e.soc[0], e.unc_cpct[0], e.ext_dn[0] * 10000 // CAP,
          e.ext_up[0] * 10000 // CAP)
""",
        tmp_path,
    )
    rows = [[int(x) for x in line.split()] for line in out.splitlines()]
    worst_count_only = 0.0
    for t, s_true, s_est, unc, ext_dn, ext_up in rows:
        # the credible interval holds the truth at every sample
        assert s_est - unc - ext_dn - 2 <= s_true <= s_est + unc + ext_up + 2, (t, s_true, s_est)
        count_only = 10000 - t * cur_mA * 10000 / (7200000)
        worst_count_only = max(worst_count_only, count_only - s_true)
        if t >= 330:  # a reading 300 s in, then every 30 s: at most one interval of drift
            ocv_mV = np.interp(s_true, soc, dsg)
            half = (
                np.interp(ocv_mV + dv_mV, dsg, soc) - np.interp(ocv_mV - dv_mV, dsg, soc)
            ) / 2 + d["ocv_unc_cpct"]
            drift = 30 * cur_mA * 10000 / 7200000 * 0.25  # the count's lead over 30 s
            # the reading is exact here (the rig's voltage is the table less the IR drop)
            assert abs(s_est - s_true) <= half + drift + 20, (t, s_true, s_est, half)
            if t > 1200 and (t - 301) % 30 == 0:
                # a reading once the count is out of its interval: it sits at the top (the
                # rig's voltage is truncated to a whole mV: up to 0.2 % of SOC)
                assert abs(s_est - (s_true + half)) <= 40, (t, s_true, s_est, half)
                # and its credible interval reaches the reading's far end
                assert s_est - unc - ext_dn <= s_true - half + 40, (t, s_true, s_est, half)
    assert worst_count_only > 1700  # uncorrected, the count would be 17 % of SOC ahead


def test_before_a_step_taught_the_resistance_a_steady_current_reads_it_at_its_bound(
    tmp_path: Path,
) -> None:
    """Issue 9, a boot without a state file charged in the cold (the corner probe
    regen-top): the count's middle is 20 % of SOC low inside a wide interval, and the
    charge (400 mA, below the C/4 a step needs to teach the resistance) never teaches R. A
    steady current still reads each cell on its known branch, with R anywhere from half
    the design's (the learned factor's floor) to twice it (the limits' bound): the count
    comes to within the reading's width of the truth, for cells at 0.7, 1 and 2 times the
    design's R, and a count that was right stays right. The credible interval holds the
    truth at every sample. (Before, no reading under load came before a step: the count
    kept its 20 % error through the charge.)"""
    d = default_config()
    soc = np.array(d["ocv_soc_cpct"], dtype=float)
    chg = np.array(d["ocv_chg_mV"], dtype=float)
    cur_mA = -400  # a charge (current positive on discharge)
    # (the cell's R in mohm, the count's start): the truth starts at 6000
    cases = [(38, 4000), (55, 4000), (110, 4000), (38, 6000), (110, 6000)]
    volts = {}
    for r_mohm, _ in cases:
        s_true = 6000 - np.arange(1, 3001) * cur_mA * 10000 / 7200000
        volts[r_mohm] = [int(v) for v in np.interp(s_true, soc, chg) - cur_mA * r_mohm / 1000]
    out = run_rig(
        _HEAD
        + f"CASES = {cases}\nVOLTS = {volts}\nCUR = {cur_mA}\n"
        + """
for r_mohm, start in CASES:
    r = Rig({"rest_current_mA": 40, "r_cell_uohm": 55000, "r_soc_pct": [100] * 13,
             "frozen_ms": 86400000, "t_sense_ddegC": 0, "i_offset_mA": 0,
             "i_offset_learned_mA": 0, "ce_unc_ppm": 0, "ce_ppm": 1000000})
    b = r.bms
    r.step(0, 0, mV=3771)
    put(b, start, 2500, branch=CHARGE)  # a wide interval about a count that may be wrong
    for t in range(1, 3001):
        r.step(1000, CUR, mV=VOLTS[r_mohm][t - 1])
        e = b.est
        print(r_mohm, start, t, e.soc[0], e.unc_cpct[0], e.ext_dn[0] * 10000 // CAP,
              e.ext_up[0] * 10000 // CAP, b.res.n_ev)
""",
        tmp_path,
    )
    worst: dict[tuple[int, int], float] = {}
    for line in out.splitlines():
        r_mohm, start, t, s_est, unc, ext_dn, ext_up, n_ev = (int(x) for x in line.split())
        s_true = 6000 - t * cur_mA * 10000 / 7200000
        assert n_ev == 0  # nothing taught the resistance
        # the credible interval holds the truth at every sample (0.02 % of rounding)
        assert s_est - unc - ext_dn - 2 <= s_true <= s_est + unc + ext_up + 2, line
        if t >= 400:  # the RC pairs settled (300 s) and a reading taken
            key = (r_mohm, start)
            worst[key] = max(worst.get(key, 0.0), abs(s_est - s_true))
    assert len(worst) == len(cases), worst
    # read from the middle of R's span, a count 20 % low comes within the reading's width
    # of the truth (the table's 25 mV, R's span and a quarter of it, the lag at twice R,
    # and R's distance from the middle: 6-11 % of SOC here)
    assert all(worst[(r, 4000)] < 1200 for r in (38, 55, 110)), worst
    # and a count that was right is not moved off by an R it does not know
    assert worst[(38, 6000)] < 100 and worst[(110, 6000)] < 100, worst


def test_a_load_taken_for_the_offset_at_rest_is_withdrawn_by_the_voltage(tmp_path: Path) -> None:
    """A 15 mA key-off load (and a 15 mA trickle charge) where the BMS sees a rest: within
    the sensor's offset bound (30 mA), a minute of it becomes the offset and the count
    stops (offset.py), while the cell goes on along its branch for 16 h (12 % of SOC). Once
    the voltage has moved its way after the rest's reading (5 mV: about 1 % of SOC here),
    the offset is withdrawn: the count and the capacity learning's interval hold the charge
    that flowed, the credible interval (1.5 % at the rest, as a rest's reading leaves it)
    holds the truth at every sample, and no offset is learned again in that rest.
    A true rest beside them (nothing flows, the voltage still) keeps its offset and is read
    once: its later samples move nothing and shrink no half-width."""
    dt_s, hours = 10, 16
    out = run_rig(
        _HEAD
        + _BRANCH_OCV
        + f"""
for load, branch in ((15, DISCHARGE), (-15, CHARGE), (0, DISCHARGE)):
    r = Rig({{"frozen_ms": 86400000, "ce_ppm": 1000000, "ce_unc_ppm": 0, "max_dt_ms": 10000}},
            state_path="s%d.json" % load)
    b = r.bms
    r.step(0, 0, mV=int(ocv(branch, 5000)))
    put(b, 5000, 150, branch)  # what a rest's reading leaves (1.5-2.5 % in the matrix)
    b.learner.point(b.cfg, 0, 5000, 150, True)  # a learning anchor here
    q_true = CAP // 2
    for t in range({hours * 3600 // dt_s}):
        q_true -= load * {dt_s}
        r.step({dt_s * 1000}, load, mV=int(ocv(branch, q_true * 10000 // CAP)))
        e = b.est
        print(load, t, q_true * 10000 // CAP, e.soc[0], e.unc_cpct[0],
              e.ext_dn[0] * 10000 // CAP, e.ext_up[0] * 10000 // CAP, b.learner.anc_ok[0],
              b.learner.net[0], int(b.offset.known), b.offset.off_dmA)
""",
        tmp_path,
        timeout_s=600,
    )
    rows = [[int(x) for x in line.split()] for line in out.splitlines()]
    samples = hours * 3600 // dt_s
    for load in (15, -15):
        run = [row[1:] for row in rows if row[0] == load]
        assert len(run) == samples
        # the load was taken for the offset, early in the rest
        assert any(known and abs(off - load * 10) <= 3 for *_, known, off in run[:60]), load
        for t, s_true, s_est, unc, ext_dn, ext_up, *_ in run:
            # the truth within the credible interval (whole-mV voltages: 0.1 % of SOC)
            assert s_est - unc - ext_dn - 10 <= s_true <= s_est + unc + ext_up + 10, (load, t)
        t, s_true, s_est, unc, _, _, anchored, net, known, off = run[-1]
        assert abs(5000 - s_true) > 1100  # the load moved 12 % of SOC
        assert abs(s_est - s_true) <= 20, (load, s_est, s_true)  # the count has it all
        moved_mAs = -load * samples * dt_s
        # all but the minute before the offset was learned, counted then and put back again
        assert anchored and abs(net - moved_mAs) <= 15 * 70, (load, net, moved_mAs)
        assert not known and off == 0, (load, known, off)  # withdrawn, and not learned again
    still = [row[1:] for row in rows if row[0] == 0]
    after = [row for row in still if row[0] * dt_s >= 15 * 60]  # past the rest's reading
    assert len({row[2] for row in after}) == 1, after[0]  # the SOC stays
    widths = [row[3] for row in after]
    assert widths == sorted(widths), widths  # the half-width only grows (the offset's bound)
    assert after[-1][6] and after[-1][8], after[-1]  # anchor and offset kept


def test_a_load_that_starts_later_in_a_rest_is_counted_against_the_offset(
    tmp_path: Path,
) -> None:
    """A true 20 mA sensor offset, 15 minutes of true rest, then a 15 mA drain (or trickle
    charge) for 4 h without leaving the rest threshold. The offset is the rest's first ten
    minutes' average and is kept (offset.py), so the load is counted against it, and a
    count that moves explains the voltage that moves with it: the offset is not withdrawn.
    Averaged on, the offset drifted towards the load's reading and the load went uncounted;
    judged on the voltage alone, a counted trickle withdrew the true offset."""
    out = run_rig(
        _HEAD
        + _BRANCH_OCV
        + """
for load, branch in ((15, DISCHARGE), (-15, CHARGE)):
    r = Rig({"frozen_ms": 86400000, "ce_ppm": 1000000, "max_dt_ms": 10000},
            state_path="s%d.json" % load)
    b = r.bms
    r.step(0, 20, mV=int(ocv(branch, 5000)))
    put(b, 5000, 150, branch)
    q_true = CAP // 2
    for t in range(90 + 1440):  # 15 min of rest, then 4 h of the load, 10 s samples
        i = 0 if t < 90 else load
        q_true -= i * 10
        r.step(10000, i + 20, mV=int(ocv(branch, q_true * 10000 // CAP)))
        if t == 89:
            q0 = b.est.q[0]
    print(load, int(b.offset.known), b.offset.off_dmA, b.est.q[0] - q0, -load * 14400)
""",
        tmp_path,
        timeout_s=300,
    )
    for line in out.splitlines():
        load, known, off, counted, moved = (int(x) for x in line.split())
        assert known and off == 200, (load, known, off)
        assert abs(counted - moved) <= abs(moved) // 100, (load, counted, moved)


def test_a_bleed_at_rest_is_no_load_hidden_in_the_offset(tmp_path: Path) -> None:
    """A true 20 mA offset on a 4-cell pack at rest while the fullest cell bleeds: the bleed
    takes that cell down 48 mV in 48 minutes (counted on its own, core.py), and the pack's
    mean 10 mV after the rest's reading, more than a hidden load's drift. The lowest cell,
    never bled, is the witness: it stays still, so the offset stays learned and no other
    cell's count moves after the rest's reading."""
    run_rig(
        _HEAD
        + """
r = Rig({"n_cells": 4, "frozen_ms": 86400000, "bal_min_on_ms": 0, "max_dt_ms": 10000})
b = r.bms
r.step(0, 20, mV=3700)
put(b, 7700, 150)  # about what 3,700 mV reads on the discharge branch
r.cells[0] = 3760  # the fullest cell: it bleeds at rest
bled = False
for t in range(720):  # 2 h in 10 s samples
    r.step(10000, 20)
    if t == 90:  # 15 minutes: the rest's reading is taken
        q = [b.est.q[k] for k in range(4)]
    if b.balance & 1:
        bled = True
        r.cells[0] -= 1 if t % 6 == 0 else 0  # 1 mV a minute (its own count takes it)
    assert b.offset.known or t < 6, t
assert bled and r.cells[0] <= 3712, r.cells[0]  # down 48 mV, 38 after the rest's reading
assert b.offset.off_dmA == 200, b.offset.off_dmA
assert [b.est.q[k] for k in range(1, 4)] == q[1:], (q, list(b.est.q))
""",
        tmp_path,
        timeout_s=300,
    )


def test_a_cv_tail_below_the_rest_current_is_no_offset(tmp_path: Path) -> None:
    """A 0.2 Ah cell: its rest current is the offset bound (30 mA, host.firmware_config),
    above its charger's CV tail (C/20 = 10 mA). Held at v_max the tail reads as a rest by
    the current alone; taken for the offset it would be counted as a discharge once the
    charger stops. The sensor reads 3 mA discharge-ward where nothing flows: that is the
    offset the rest after the charge must learn, and the count must stand still through it.
    Near full but off the limit (4,190 mV, within full_band_mV), a charge-ward offset is
    still learned, and so is one whose noise reaches charge-ward within the deadband at the
    limit; at the limit with both switches open nothing can flow, so it is too."""
    run_rig(
        _HEAD
        + """
SMALL = {"capacity_mAh": 200, "anode_mass_mg": 120, "rest_current_mA": 30, "taper_mA": 15,
         "empty_current_mA": 40, "frozen_min_mA": 40, "bal_max_dsg_mA": 20,
         "frozen_ms": 86400000}
r = Rig(SMALL)
b = r.bms
r.step(0, 3, mV=4100)
put(b, 9000, 100, 0)  # on the charge branch, CC charging towards the limit
r.run(300, -97, mV=4150)
tail = 0
for t in range(900):  # CV at 4,200 mV: 28 mA tapering to 10 mA over 15 minutes
    i = 28 - 18 * t // 900
    tail += i
    r.step(1000, 3 - i, mV=4200)
assert not b.offset.known or b.offset.off_dmA == 30, b.offset.off_dmA
r.step(1000, 3, mV=4195)  # the charger stops: the cell relaxes
q = b.est.q[0]
r.run(1800, 3, mV=4192)
assert b.offset.known and b.offset.off_dmA == 30, b.offset.off_dmA
assert abs(b.est.q[0] - q) <= 2000, (q, b.est.q[0])  # within 1 mAs a second: no drift
# a charge-ward offset while resting near full, below the limit: learned
r2 = Rig(SMALL, state_path="b.json")
b2 = r2.bms
r2.step(0, -8, mV=4190)
r2.run(120, -8, mV=4190)
assert b2.offset.known and b2.offset.off_dmA == -80, b2.offset.off_dmA
# at the limit, a reading within the deadband is the sensor's noise about its offset: a
# sensor 1 mA off, noisy by 5 mA, at a full cell's 4,198 mV: learned
r4 = Rig(SMALL, state_path="d.json")
b4 = r4.bms
r4.step(0, 1, mV=4198)
for t in range(120):
    r4.step(1000, -4 if t % 2 else 6)
assert b4.offset.known and b4.offset.off_dmA == 10, b4.offset.off_dmA
# at the limit, both switches open (an implausible tap: SENSOR_RANGE): learned in 6 s
SMALL["n_cells"] = 2
r3 = Rig(SMALL, state_path="c.json")
b3 = r3.bms
r3.step(0, -8, mV=4200)
r3.cells[1] = 5100  # the second tap reads implausibly; the first stays at the limit
r3.run(8, -8)
assert not b3.chg_on and not b3.dsg_on
assert b3.offset.known and b3.offset.off_dmA == -80, b3.offset.off_dmA
""",
        tmp_path,
    )


def test_offset_is_learned_at_rest_and_with_both_switches_open(tmp_path: Path) -> None:
    """A current sensor reading 20 mA where nothing flows: after a minute at rest (a tenth
    of that with both switches open) it is the offset; the count stops drifting and its
    half-width grows by i_offset_learned_mA. A larger steady reading is a load, not an
    offset. The offset survives a restart."""
    run_rig(
        _HEAD
        + """
r = Rig({"frozen_ms": 86400000}, quiet=False)
b = r.bms
r.step(0, 20, mV=3700)
r.run(59, 20, mV=3700)
assert not b.offset.known
r.run(2, 20, mV=3700)
assert b.offset.known and b.offset.off_dmA == 200
q = b.est.q[0]
r.run(600, 20, mV=3700)
assert b.est.q[0] == q  # no drift
r.run(100, 1020, mV=3700)  # a real 1 A discharge is counted as 1 A
assert abs((q - b.est.q[0]) - 100000) <= 1, q - b.est.q[0]
b.save()
assert Rig(quiet=False).bms.offset.off_dmA == 200
# 35 mA at rest is more than the sensor's offset bound (30 mA): a load, counted
r2 = Rig(state_path="b.json")
b2 = r2.bms
r2.run(200, 35, mV=3700)
assert not b2.offset.known
# both switches open (a sensor fault here): nothing can flow, 6 s are enough
r3 = Rig(state_path="c.json")
b3 = r3.bms
r3.step(0, -15, mV=3700)
r3.step(1000, -15, mV=5100)  # an implausible tap: SENSOR_RANGE opens both switches
assert not b3.chg_on and not b3.dsg_on
r3.run(7, -15, mV=5100)
assert b3.offset.known and b3.offset.off_dmA == -150, b3.offset.off_dmA
""",
        tmp_path,
    )


def test_an_interval_past_every_soc_is_reported_whole(tmp_path: Path) -> None:
    """A cell whose credible interval reaches four capacities up, past anything the rules
    build (a reading under load's far end reaches two): its half-width is a short int (for
    the heap), so it stops at 327.67 % instead of wrapping negative, and the pack reports
    the whole window."""
    run_rig(
        _HEAD
        + """
r = Rig({"n_cells": 2, "frozen_ms": 86400000})
b = r.bms
r.step(0, 0, mV=3700)
put(b, 5000, 100)
e = b.est
c = b.learner.cap[0]
e.ext_up[0] = 4 * c
e.sum_unc(2)
assert e.tot_cpct[0] == 32767 and e.tot_cpct[1] < 500, list(e.tot_cpct)
r.step(1000, 0, mV=3700)
assert b.soc_unc_cpct == 10000, b.soc_unc_cpct
""",
        tmp_path,
    )


def test_a_run_of_gaps_keeps_the_uncertainty_a_small_int(tmp_path: Path) -> None:
    """Every clamped sample interval adds 1 % of capacity to the half-width's base. 1,600
    gaps on the largest capacity the configuration allows would take it past 2**30: a big
    int, which a heap-locked sample cannot allocate on a 32-bit port (MemoryError), so the
    sample would be lost. It stays within the capacity, and the reported half-width at
    100 %. The window bounds built on it (limits.py: k x the half-width, the SOC of the
    count plus it) stay small ints too: on unix-32 any big int here is a MemoryError."""
    run_rig(
        _HEAD
        + """
r = Rig({"capacity_mAh": 20000, "anode_mass_mg": 11990, "max_dt_ms": 100, "frozen_ms": 86400000})
b = r.bms
r.step(0, 0, mV=3700)
for i in range(1600):
    r.step(1000, 500, mV=3700)  # each interval clamped to 100 ms: a gap
cap = b.learner.cap[0]
assert b.samples == 1601, b.samples
assert b.est.base[0] <= cap < 2**30, (b.est.base[0], cap)
assert b.soc_unc_cpct == 10000, b.soc_unc_cpct
""",
        tmp_path,
    )


def test_an_implausible_reading_feeds_no_correction_calibration_or_balancing(
    tmp_path: Path,
) -> None:
    """Issue 9: a sample with a cell reading out of range (an open tap reading 0 mV) feeds
    neither the estimator's voltage steps nor balancing; the charge is still counted."""
    run_rig(
        _HEAD
        + """
# bal_r_mohm 0: the bleeds between the glitches take no charge off the count here, so an
# unchanged SOC says that no voltage step moved it
r = Rig({"n_cells": 4, "n_temps": 1, "rest_time_ms": 60000, "rest_window_ms": 10000,
         "release_delay_ms": 0, "frozen_ms": 86400000, "bal_r_mohm": 0})
b = r.bms
r.step(0, 0, mV=3600)
put(b, 3000, 2000)
for k in range(4):
    r.cells[k] = 3950 + 30 * k  # spread at the top: the high cells would bleed
s0 = 3000
# a rest of 80 s in which every fifth sample has an open tap: no correction, no bleed
for t in range(80):
    r.cells[0] = 0 if t % 5 == 4 else 3950
    r.step(1000, 0)
    if t % 5 == 4:
        assert b.faults & F.SENSOR_RANGE and b.balance == 0 and not b.flags & (1 << 9)
assert not b.flags & (1 << 9) and b.soc_cpct == s0  # the glitches kept restarting the rest
# a discharge through glitches is still counted
q = b.est.q[0]
for t in range(10):
    r.cells[0] = 0 if t % 2 else 3950
    r.step(1000, 1000)
assert q - b.est.q[0] == 10000
r.cells[0] = 3950
r.run(80, 0)
assert b.flags & (1 << 2) and b.soc_cpct != s0  # plausible again: the rest corrects
""",
        tmp_path,
    )


_LEARN = """
BASE = {"r_cell_uohm": 0, "v_min_mV": 2900,
        "ce_ppm": 1000000, "frozen_ms": 86400000, "full_time_ms": 5000, "i_offset_mA": 0,
        "i_offset_learned_mA": 0, "learn_min_dsoc_cpct": 3000}

def rig(changes, path, temp=250):
    d = dict(BASE)
    d.update(changes)
    r = Rig(d, state_path=path, temp=temp)
    r.step(0, 0, mV=3900)
    return r

def cycle(r, dsg_mAh, step_mA=2000):
    # full (the points are read with no IR term: 100 % and 0 %), then empty
    b = r.bms
    r.run(8, -100, mV=4200)
    n = dsg_mAh * 3600 // step_mA
    r.run(n, step_mA, mV=3600)
    r.step(1000, 100, mV=2914)
    return b
"""


def test_capacity_learning_moves_by_the_weight_of_the_evidence(tmp_path: Path) -> None:
    """Issue 9: the learned capacity moves towards each event's estimate by the evidence
    against its own uncertainty: the first full-to-empty event (the prior 27 %, the event
    about 1 %) nearly all the way, a later equal disagreement much less; the uncertainty
    shrinks only with events."""
    out = run_rig(
        _HEAD
        + _LEARN
        + """
r = rig({}, "a.json")
b = cycle(r, 1600)
lrn = b.learner
assert b.cap_learn_count == 1, b.cap_learn_count
first = lrn.cap[0]
d1 = lrn.dcap[0]
r.run(5760, -1000, mV=3900)  # charge 1600 mAh back
b = cycle(r, 1500)
assert b.cap_learn_count == 3, b.cap_learn_count  # the full point learns on the way up too
print(first, d1, lrn.cap[0], lrn.dcap[0], b.capacity_mAh, b.capacity_unc_cpct)
""",
        tmp_path,
        timeout_s=180,
    )
    first, d1, second, d2, cap_mAh, cap_unc = (int(x) for x in out.split())
    est = 1600 * 3600
    # nearly all the way to 1600 mAh from 2000 (within a tenth of the distance)
    assert abs(first - est) <= (2000 * 3600 - est) // 10, first
    assert d1 < 2700 // 5, d1  # the prior (27 %) replaced by the evidence's few %
    # the next events disagree by 100 mAh (6 %) and move it far less than that
    assert est - 100 * 3600 < second < first and first - second < 100 * 3600 // 2, second
    assert d2 < d1 and cap_unc == d2 and cap_mAh == second // 3600


def test_capacity_learning_gates_temperature_swing_and_bounds(tmp_path: Path) -> None:
    out = run_rig(
        _HEAD
        + _LEARN
        + """
cold = cycle(rig({}, "cold.json", temp=50), 1600)  # 5 degC: outside the 10..40 degC gate
short = rig({}, "short.json")
b = short.bms
r = short
r.run(8, -100, mV=4200)  # full
r.run(360 * 4, 2000, mV=3600)  # 800 mAh: to 60 %
r.run(700, 0, mV=b.ocv.mV_at(DISCHARGE, 7500))  # rests: reads 75 %, 25 % from full
low = cycle(rig({"learn_min_pct": 90}, "low.json"), 600)  # 600 mAh: below 90 % of design
high = cycle(rig({}, "high.json"), 2600)  # above 110 % of design
print(cold.cap_learn_count, b.cap_learn_count, low.capacity_mAh, high.capacity_mAh)
""",
        tmp_path,
        timeout_s=180,
    )
    cold, short, low, high = (int(x) for x in out.split())
    assert cold == 0 and short == 0
    assert 1800 <= low <= 1805 and 2150 <= high <= 2200, (low, high)


def test_cycle_count_by_throughput(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig()
b = r.bms
r.step(0, 0, mV=3700)
for i in range(3):
    r.run(1800, 2000, mV=3700)  # 1000 mAh out
    r.run(1800, -2000, mV=3700)
assert b.cycle_count == 1, b.cycle_count
""",
        tmp_path,
    )


def test_resistance_is_learned_from_current_steps(tmp_path: Path) -> None:
    """A cell whose voltage drops 60 mV when 1 A starts (R0 of 60 mohm less the RC pairs'
    start over the 1 s interval, 1.65 mohm, against the design's 25 mohm: a factor of 2.33)
    is learned per cell within the bounds, at mid SOC and 25 degC, and persisted."""
    out = run_rig(
        _HEAD
        + """
r = Rig({"n_cells": 2, "n_temps": 1, "frozen_ms": 86400000, "bal_enable": 0,
         "t_sense_ddegC": 0})
b = r.bms
r.step(0, 0, mV=3700)
put(b, 5000, 100)
for k in range(40):
    r.cells[0] = 3700
    r.cells[1] = 3700
    r.step(1000, 0)
    r.cells[0] = 3640  # 60 mV for 1 A
    r.cells[1] = 3670  # 30 mV
    r.step(1000, 1000)
print(b.res.fac[0], b.res.fac[1], b.r_dc_uohm)
b.save()
print(Rig({"n_cells": 2, "n_temps": 1}).bms.res.fac[0])
""",
        tmp_path,
    )
    f0, f1, r_dc, again = (int(x) for x in out.split())
    assert abs(f0 - (60 - 1.65) / 25 * 10000) <= 200, f0
    assert abs(f1 - (30 - 1.65) / 25 * 10000) <= 200, f1
    assert abs(r_dc - 55 * f0 / 10) <= 100 and again == f0, (r_dc, again)


def test_a_large_cells_few_milliohm_are_learned_as_they_are(tmp_path: Path) -> None:
    """A 20 Ah cell (the firmware's largest capacity: R0 2.5 mohm, 5.5 mohm DC, the RC pairs'
    start 165 uohm/s) at 0.92 times its design: a 20 A step drops 49 mV over a 1 s
    interval, (49 / 20 - 0.165) / 2.5 = 0.914 of the design's R0. In whole milliohm its R0
    was 2 and its DC resistance 6: the same step taught 1.14 and put R_dc 25 % high, and
    the IR-free readings under a 10 A charge of a 16-series pack of such cells 5 % of SOC
    low (Monte-Carlo probe)."""
    out = run_rig(
        _HEAD
        + """
r = Rig({"capacity_mAh": 20000, "anode_mass_mg": 12000, "r0_uohm": 2500,
         "r_cell_uohm": 5500, "r_step_uohm_s": 165, "r_soc_pct": [100] * 13,
         "frozen_ms": 86400000, "t_sense_ddegC": 0})
b = r.bms
r.step(0, 0, mV=3700)
put(b, 5000, 100)
for k in range(40):
    r.step(1000, 0, mV=3700)
    r.step(1000, 20000, mV=3651)
print(b.res.fac[0], b.r_dc_uohm, b.res.r_dc[0])
""",
        tmp_path,
    )
    fac, r_dc, r_dc_now = (int(x) for x in out.split())
    assert abs(fac - (49 / 20 - 0.165) / 2.5 * 10000) <= 50, fac
    assert abs(r_dc - 5500 * fac / 10000) <= 5, r_dc
    assert abs(r_dc_now - 5500 * fac / 10000) <= 5, r_dc_now


def test_a_step_at_the_rules_bound_stays_in_small_ints(tmp_path: Path) -> None:
    """The largest step resistance over the smallest R0 the rules allow (config_rules: 100
    mAh x 4,000 uohm at r0_temp_pct's 10 %): a 1 V drop on a C/4 step of 25 mA is 40 ohm
    over 0.4 mohm, learned at the factor's bound. Under the sample's heap lock a product
    past a small int would be a MemoryError; the drop over R0 in 0.1 mohm times 100 was
    one (4e9)."""
    out = run_rig(
        _HEAD
        + """
r = Rig({"capacity_mAh": 100, "anode_mass_mg": 60, "r0_uohm": 4000,
         "r0_temp_pct": [10] * 7, "rest_current_mA": 5, "taper_mA": 5,
         "empty_current_mA": 5, "frozen_ms": 86400000, "t_sense_ddegC": 0})
b = r.bms
r.step(0, 0, mV=3700)
put(b, 5000, 100)
r.step(1000, 0, mV=3700)
r.step(1000, 25, mV=2700)
print(b.res.n_ev, b.res.fac[0])
""",
        tmp_path,
    )
    assert out.split() == ["1", "40000"], out


def test_a_rest_without_an_anchor_anchors_capacity_learning_on_the_blend(tmp_path: Path) -> None:
    """Issue 9: capacity is learned from the charge counted between two calibration points,
    so a point must not share that count: with an anchor, a rested reading is offered
    alone. Without one (after a boot or a gap) the count owes nothing to any learning
    interval, and the blend of count and reading is the better-known SOC to anchor on.

    The count is right (50 % of 2000 mAh) and the rested reading is a table's error away
    (44 %). 1000 mAh charged to full then learns the capacity from the anchor: from the
    reading it would be 1000 / 0.56 = 1786 mAh, from the blend nearer the 2000 counted. With
    an anchor (a full point before 1000 mAh out), the rest learns from the reading alone."""
    d = default_config()
    soc = np.array(d["ocv_soc_cpct"], dtype=float)
    dsg = np.array(d["ocv_dsg_mV"], dtype=float)
    mV = round(float(np.interp(4400, soc, dsg)))
    reading = soc_at(mV, "discharge")
    out = run_rig(
        _HEAD
        + _LEARN
        + f"""
REST = {{"rest_tau_s": 1000, "rest_time_ms": 60000, "rest_window_ms": 10000}}

def rest(r, mV):
    # until the rested reading's correction (its sample flag)
    for _ in range(200):
        r.step(1000, 0, mV=mV)
        if r.bms.flags & (1 << 9):
            return
    assert False, "no rest correction"

# no anchor: a boot from voltage, then the count set at 50 % +- 3 %
r = rig(REST, "a.json")
b = r.bms
lrn = b.learner
put(b, 5000, 300)
assert not lrn.anc_ok[0]
rest(r, {mV})
print(lrn.anc_ok[0], lrn.anc_cpct[0], lrn.anc_unc[0], b.est.soc[0], b.est.unc_cpct[0])
r.run(1800, -2000, mV=3700)  # 1000 mAh in
r.run(8, -100, mV=4200)  # full
print(b.cap_learn_count, lrn.cap[0])
# an anchor: a full point, 1000 mAh out, the same rest
r = rig(REST, "b.json")
b = r.bms
lrn = b.learner
r.run(8, -100, mV=4200)
assert lrn.anc_ok[0] and lrn.anc_cpct[0] == 10000
r.run(1800, 2000, mV=3700)
rest(r, {mV})
print(lrn.anc_ok[0], lrn.anc_cpct[0], b.cap_learn_count, b.est.soc[0])
""",
        tmp_path,
        timeout_s=180,
    )
    lines = [[int(x) for x in line.split()] for line in out.splitlines()]
    ok, anc, anc_unc, blend, blend_unc = lines[0]
    # anchored on the blend: between the count and the reading, with the blend's width
    assert ok == 1 and abs(anc - blend) <= 1 and abs(anc_unc - blend_unc) <= 2, lines[0]
    assert reading + 100 < anc < 5000, (reading, anc)
    learned_count, cap_mAs = lines[1]
    from_reading = 1000 * 3600 * 10000 / (10000 - reading)
    from_blend = 1000 * 3600 * 10000 / (10000 - anc)
    assert learned_count == 1, learned_count
    # moved towards the blend's estimate (by the evidence, so not all the way), and well
    # clear of where the reading alone would have taken it
    assert from_blend - 3600 <= cap_mAs <= 2000 * 3600, (cap_mAs, from_blend)
    assert cap_mAs > (from_reading + from_blend) / 2, (cap_mAs, from_reading, from_blend)
    ok, anc, learned_count, est_soc = lines[2]
    # with an anchor the point is the reading (the count since the anchor is the evidence)
    # (learned from the reading: the full point before it is the first, with nothing to learn)
    assert ok == 1 and abs(anc - reading) <= 2 and learned_count == 1, lines[2]
    assert abs(est_soc - anc) > 10, (est_soc, anc)  # the blend lies elsewhere


def test_a_rested_reading_is_taken_back_to_the_tables_temperature(tmp_path: Path) -> None:
    """Issue 9: the OCV tables are the cell's at 25 degC and its OCV moves with temperature
    by the entropic coefficient (ocv_dudt_uV_K; the default cell's -0.3 mV/K). A cell
    resting at 2 degC on the discharge branch at 50 % reads 6.9 mV above the table; the
    reading (replacing a count far off) must be 50 %, while at 25 degC, or with no
    coefficient configured, the same voltage reads one table-step higher."""
    d = default_config()
    assert d["ocv_dudt_uV_K"] == -300
    soc = np.array(d["ocv_soc_cpct"], dtype=float)
    dsg = np.array(d["ocv_dsg_mV"], dtype=float)
    mV = round(float(np.interp(5000, soc, dsg)) - 300e-6 * (2.0 - 25.0) * 1000)
    out = run_rig(
        _HEAD
        + f"""
for temp, dudt in ((20, -300), (250, -300), (20, 0)):
    r = Rig({{"rest_time_ms": 60000, "rest_window_ms": 10000, "rest_tau_s": 0,
              "i_offset_mA": 0, "i_offset_learned_mA": 0, "ocv_dudt_uV_K": dudt}},
            state_path="none.json", temp=temp)
    b = r.bms
    r.step(0, 0, mV={mV})
    put(b, 9000, 100)  # far off: the rested reading replaces it
    for _ in range(200):
        r.step(1000, 0, mV={mV})
        if b.flags & (1 << 9):
            break
    print(b.est.soc[0])
""",
        tmp_path,
    )
    cold, warm, uncompensated = (int(x) for x in out.split())
    # 1 mV of rounding is 13 cpct on this segment (3455 -> 3530 mV over 50 -> 60 %)
    assert abs(cold - soc_at(mV - 6.9, "discharge")) <= 20, (cold, mV)
    assert abs(cold - 5000) <= 20, cold
    assert abs(warm - soc_at(mV, "discharge")) <= 20 and warm - cold > 60, (warm, cold)
    assert abs(uncompensated - warm) <= 2, (uncompensated, warm)


def test_a_cold_rest_reads_the_relaxation_to_come_the_way_it_goes(tmp_path: Path) -> None:
    """A cell at -10 degC rests after a discharge; its voltage rises towards the OCV of 50 %
    with a time constant of 450 s (the RC pairs' at that cold: several times rest_tau_s).
    The rested reading (a count of 30 +- 30 % gives it all the weight) must hold the truth
    and lie nearer it than the voltage of the moment reads. With the tail taken as
    rest_tau_s x the slope both ways, the reading at 10 minutes missed 50 % by 40 mV of
    relaxation still to come (a probe of a -25 degC drive: coverage 61 %)."""
    d = default_config()
    soc = np.array(d["ocv_soc_cpct"], dtype=float)
    dsg = np.array(d["ocv_dsg_mV"], dtype=float)
    shift_mV = d["ocv_dudt_uV_K"] * 1e-3 * (-10.0 - 25.0)  # the OCV at -10 degC, above 25's
    end_mV = float(np.interp(5000, soc, dsg)) + shift_mV
    out = run_rig(
        _HEAD
        + f"""
import math
r = Rig({{"i_offset_mA": 0, "i_offset_learned_mA": 0}}, state_path="none.json", temp=-100)
b = r.bms
r.step(0, 0, mV={round(end_mV - 150)})
put(b, 3000, 3000)
for t in range(1, 1500):
    v = round({end_mV} - 150 * math.exp(-t / 450))
    r.step(1000, t % 3 - 1, mV=v)  # a sensor's noise at rest (a constant reads as frozen)
    if b.flags & (1 << 9):
        break
print(b.soc_cpct, b.soc_unc_cpct, v, t)
""",
        tmp_path,
    )
    got, unc, v_mV, t_s = (int(x) for x in out.split())
    now = soc_at(v_mV - shift_mV, "discharge")  # what the voltage of the moment reads
    assert now < 4700, (now, t_s)  # the relaxation still to come is worth 3 % and more
    assert abs(got - 5000) <= unc, (got, unc)
    assert abs(got - 5000) < 0.75 * abs(now - 5000), (got, now)


def test_a_cell_the_bleed_discharged_is_read_between_the_branches(tmp_path: Path) -> None:
    """A bleed that outweighs the charge current discharges its cell, and on silicon a
    percent of discharge moves the OCV off the charge branch: the rest reading takes such a
    cell between the branches (its count stands where it lies inside them), while the other
    cells are read on the pack's branch. A discharge puts every cell on the discharge
    branch again."""
    out = run_rig(
        _HEAD
        + """
r = Rig({"n_cells": 2, "rest_time_ms": 60000, "rest_window_ms": 10000, "bal_min_on_ms": 0})
b = r.bms
r.step(0, 0, mV=3900)
put(b, 9000, 500, branch=CHARGE)  # both at 90 % +- 5 % on the charge branch
r.cells[0] = 4000  # reads 85 % on the charge branch
r.cells[1] = 4040  # 88 % on it: the higher cell bleeds, and its OCV has left the branch
for t in range(90):
    r.step(1000, 0)
assert b.balance == 0b10 and b.est.bled == 0b10, (b.balance, b.est.bled)
print(b.cell_soc_cpct[0], b.cell_soc_cpct[1])
r.run(600, 2000, mV=3600)  # 33 % discharged: the discharge branch
assert b.est.branch == DISCHARGE and b.est.bled == 0
""",
        tmp_path,
    )
    cell1, cell2 = (int(x) for x in out.split())
    assert cell1 < 8800  # read on the charge branch: pulled towards 85 %
    # read between the branches: the count stands, less the 90 s bleed (122 mA: 0.15 %)
    assert 8970 <= cell2 <= 8990, cell2


def test_a_bled_cell_is_read_at_rest_free_of_its_own_bleed_drop(tmp_path: Path) -> None:
    """A rest near empty at 0 degC: the fuller of two cells bleeds (about 94 mA through
    33 ohm), which drops over its resistance (steep near empty and cold) as any current
    does. Its rested reading must hold its true SOC whether the cell has the design's
    resistance or twice it (the resistance's bound until a current step teaches it), and
    lie nearer the truth than its terminal voltage reads; the other cell reads as it is.
    Read at the terminal voltage, a pack at twice the resistance bled near empty read its
    cells 1.7 % of SOC low against a reported 1.3 % (probe campaign, coverage 79 %)."""
    d = default_config()
    soc = np.array(d["ocv_soc_cpct"], dtype=float)
    dsg = np.array(d["ocv_dsg_mV"], dtype=float)
    t_degC = 0.0
    shift_mV = d["ocv_dudt_uV_K"] * 1e-3 * (t_degC - 25.0)  # the OCV at 0 degC, above 25's
    # the design's DC resistance (R0 + both pairs) of a cell at 6 % and 0 degC, from the
    # configuration's laws over SOC and temperature, in ohm
    r_design = (
        d["r_cell_uohm"]
        * 1e-6
        * np.interp(600, soc, d["r_soc_pct"])
        / 100
        * np.interp(t_degC * 10, d["r_temp_ddegC"], d["r_temp_pct"])
        / 100
    )
    ocv1 = float(np.interp(300, soc, dsg)) + shift_mV  # cell 1 at 3 %
    ocv2 = float(np.interp(600, soc, dsg)) + shift_mV  # cell 2 at 6 %: 50 mV above, it bleeds
    for factor in (1.0, 2.0):
        drop_mV = ocv2 / d["bal_r_mohm"] * r_design * factor * 1e3  # V / R_bleed x R_cell
        out = run_rig(
            _HEAD
            + f"""
r = Rig({{"n_cells": 2, "rest_time_ms": 60000, "rest_window_ms": 10000, "bal_min_on_ms": 0,
         "i_offset_mA": 0, "i_offset_learned_mA": 0}}, temp={round(t_degC * 10)})
b = r.bms
r.cells[0] = {round(ocv1)}
r.cells[1] = {round(ocv2)}
r.step(0, 0)
put(b, 1000, 3000)  # both at 10 % +- 30 %: the reading decides
for t in range(200):
    r.cells[1] = {round(ocv2)} - ({round(drop_mV)} if b.balance & 2 else 0)
    r.step(1000, t % 3 - 1)  # a sensor's noise at rest
    if b.flags & (1 << 9):
        break
assert b.balance == 2, b.balance  # cell 2 bled all along
print(b.cell_soc_cpct[0], b.est.tot_cpct[0], b.cell_soc_cpct[1], b.est.tot_cpct[1], t)
""",
            tmp_path,
        )
        got1, unc1, got2, unc2, t_s = (int(x) for x in out.split())
        assert t_s < 199, "no rested reading"
        terminal = soc_at(ocv2 - drop_mV - shift_mV, "discharge")  # what its voltage reads
        assert abs(got1 - 300) <= unc1, (factor, got1, unc1)
        assert abs(got2 - 600) <= unc2, (factor, got2, unc2, terminal)
        assert abs(got2 - 600) < abs(terminal - 600), (factor, got2, terminal)


def test_a_restart_while_a_cell_bleeds_reads_it_free_of_its_bleed_drop(tmp_path: Path) -> None:
    """A new capacity restarts the estimator from the voltages (startup.py) while the fuller
    of two cells bleeds at rest: its reading there takes the bleed's IR drop out too. Cell 2
    at 6 % on the discharge branch (25 degC, the design's resistance by the configuration's
    laws over SOC) reads 6 % again, not the terminal voltage's lower SOC."""
    d = default_config()
    soc = np.array(d["ocv_soc_cpct"], dtype=float)
    dsg = np.array(d["ocv_dsg_mV"], dtype=float)
    r_ohm = d["r_cell_uohm"] * 1e-6 * np.interp(600, soc, d["r_soc_pct"]) / 100
    ocv1 = float(np.interp(300, soc, dsg))
    ocv2 = float(np.interp(600, soc, dsg))
    drop_mV = ocv2 / d["bal_r_mohm"] * r_ohm * 1e3  # V / R_bleed x R_cell
    out = run_rig(
        _HEAD
        + f"""
r = Rig({{"n_cells": 2, "bal_min_on_ms": 0}}, state_path="none.json")
b = r.bms
r.cells[0] = {round(ocv1)}
r.cells[1] = {round(ocv2)}
for t in range(5):
    r.cells[1] = {round(ocv2)} - ({round(drop_mV)} if b.balance & 2 else 0)
    r.step(1000, 0)
assert b.balance == 2, b.balance
assert r.cfg.update({{"capacity_mAh": 2100}}) is None
r.step(1000, 0)
assert b.flags & (1 << 6), b.flags  # the SOC from the voltage again
print(b.cell_soc_cpct[1])
""",
        tmp_path,
    )
    terminal = soc_at(ocv2 - drop_mV, "discharge")
    assert 600 - terminal > 30, terminal  # the drop is worth reading
    assert abs(int(out) - 600) < 15, (out, terminal)


def _pulsed_drive(seed: int, n_blocks: int) -> list[int]:
    """A drive's current (mA, 1 s samples, positive on discharge) along the discharge
    branch: blocks of 0.5-2C discharge, each followed by a 0.25-1.5C regenerative pulse
    of 2-15 s, and now and then a pulse against the branch long enough to lose it."""
    rng = np.random.default_rng(seed)
    out: list[int] = []
    for _ in range(n_blocks):
        out += [int(rng.integers(1000, 4000))] * int(rng.integers(20, 120))
        out += [-int(rng.integers(500, 3000))] * int(rng.integers(2, 16))
        if rng.random() < 0.1:
            out += [-2000] * int(rng.integers(30, 90))  # 3-9 % of SOC back: unknown a while
    return out


def test_the_hysteresis_residual_bounds_every_rate_and_follows_the_designs(
    tmp_path: Path,
) -> None:
    """How far the cell is off its known branch, against the cell model's hysteresis state
    (dh/dq = gamma (h_branch - h), cellmodel/circuit.py) integrated here exactly at rates
    from half to twice the design's: the bound (hyst_hi) is above every one of them at every
    sample, the middle (hyst_mid) follows the design's rate within 1 % of the branch gap,
    and the bound is no looser than the worst rate allows plus what composing the slowest
    fade with the fastest pull costs (a third of the gap at most)."""
    cfg = default_config()
    sw_frac = cfg["branch_switch_cpct"] / 10000  # e**-3 of the way at the slowest rate
    gamma_design = 2 * 3 / sw_frac
    currents = _pulsed_drive(7, 60)
    out = run_rig(
        _HEAD
        + f"""
r = Rig({{"frozen_ms": 86400000}})
b = r.bms
e = b.est
r.step(0, 0, mV=3700)
put(b, 9000, 500, branch=DISCHARGE)
e.confirm(DISCHARGE)  # one switch along the discharge branch from the charge branch
for mA in {currents!r}:
    r.step(1000, mA, mV=3700)
    print(e.branch, e.hyst_hi, e.hyst_mid)
""",
        tmp_path,
        timeout_s=300,
    )
    rows = np.array([[int(x) for x in line.split()] for line in out.split("\n") if line])
    assert (rows[:, 0] == 1).all(), "the drive must keep to the discharge branch"
    hi = rows[:, 1] / 1e5
    mid = rows[:, 2] / 1e5
    cap_As = 7200.0
    factors = [0.5, 0.7, 1.0, 1.4, 2.0]
    truth = np.empty((len(factors), len(currents)))
    for j, f in enumerate(factors):
        g = gamma_design * f
        x = math.exp(-g * sw_frac)  # one switch from the other branch at this rate
        for i, mA in enumerate(currents):
            decay = math.exp(-g * abs(mA) / 1000 / cap_As)
            x = x * decay if mA > 0 else 1 - (1 - x) * decay
            truth[j, i] = x
    worst = truth.max(axis=0)
    i = int(np.argmax(worst - hi))
    # less a step under way (1/1024 of a switch, 12 / 1024 of the rest at the fastest rate)
    assert (hi >= worst - (1 - worst) * 12 / 1024 - 2e-5).all(), (i, hi[i], worst[i])
    design = truth[factors.index(1.0)]
    assert np.abs(mid - design).max() <= 0.01, np.abs(mid - design).max()
    assert (hi - worst).max() <= 1 / 3, (hi - worst).max()
    assert worst.max() > 0.2  # the drive pulls the cell well off its branch

"""SOC estimator, calibrations and capacity learning under MicroPython (sample time).

Current is positive on discharge. Default cell: 2000 mAh = 7,200,000 mAs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from tests.firmware.bms_harness import firmware_module, run_rig

_HEAD = """
from bmsrig import Rig
from bms.ocv import CHARGE, DISCHARGE
CAP = 7200000
"""


def test_counting_matches_exact_integration(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"ce_ppm": 995000})
b = r.step(0, 0, mV=3700)
q0 = b.counter.q_mAs
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
assert b.flags & (1 << 7 | 1 << 8 | 1 << 9) == 0  # no calibration moved it
""",
        tmp_path,
    )


def test_boot_from_voltage_takes_the_lower_branch_and_reports_half_the_gap(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig()
b = r.bms
assert b.boot_flags & 2 and not b.chg_on and not b.dsg_on
lo = b.ocv.soc_at(CHARGE, 3600)
hi = b.ocv.soc_at(DISCHARGE, 3600)
r.step(0, 0, mV=3600)
assert b.soc_cpct == lo, (b.soc_cpct, lo)
assert b.soc_unc_cpct == (hi - lo) // 2 + b.cfg.ocv_unc_cpct
assert b.flags & (1 << 6) and not b.flags & (1 << 3)
assert b.warnings & 1 and b.warnings & 2 and b.warnings & 4
assert b.chg_on and b.dsg_on
# under current the voltage is IR-compensated with r_cell_mohm (55): 3545 + 1000 * 55 / 1000
r2 = Rig(state_path="other.json")
r2.step(0, 1000, mV=3545)
assert r2.bms.soc_cpct == lo
""",
        tmp_path,
    )


def test_branch_follows_the_charge_moved(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig()
b = r.bms
r.step(0, 0, mV=3700)
r.run(260, 2000, mV=3700)  # 520 mAs short of 7.5 % of capacity (540000 mAs)
assert not b.est.known
r.run(20, 2000, mV=3700)
assert b.est.known and b.est.branch == DISCHARGE and b.flags & (1 << 4)
r.run(5, -2000, mV=3700)  # 10000 mAs back: below 1/32 of the switch, still known
assert b.est.known
r.run(20, -2000, mV=3700)
assert not b.est.known and b.warnings & 2
r.run(270, -2000, mV=3700)
assert b.est.known and b.est.branch == CHARGE and not b.flags & (1 << 4)
""",
        tmp_path,
    )


def test_rest_correction_on_known_branch_blends_by_uncertainty(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"rest_time_ms": 600000, "rest_window_ms": 60000})
b = r.bms
r.step(0, 0, mV=3700)
r.run(400, 2000, mV=3600)  # discharge: the branch becomes DISCHARGE
assert b.est.known and b.est.branch == DISCHARGE
before = b.soc_cpct
unc_before = b.soc_unc_cpct
v = b.ocv.mV_at(DISCHARGE, 3000)  # rest voltage says 30 %
seen = 0
t = 0
while t < 700:
    r.step(1000, 0, mV=v)
    t += 1
    if b.flags & (1 << 9):
        seen += 1
        at = t
        soc = b.soc_cpct
assert seen == 1, seen
assert 600 <= at <= 661, at
assert b.flags & (1 << 2)  # resting
# a blend: between the two estimates, and more certain than the count was
# (the weights themselves: test_rest_correction_is_the_posterior_of_two_gaussians)
assert min(before, 3000) < soc < max(before, 3000), (soc, before)
assert b.soc_unc_cpct < unc_before and b.soc_unc_cpct <= 200
""",
        tmp_path,
    )


# Rest corrections from a set count and uncertainty: (count's SOC, its sigma) in cpct,
# against a rested reading of 35 % on the discharge branch.
_BLEND_CASES = [(3800, 0), (3800, 50), (3800, 190), (3300, 600), (3200, 2000), (5500, 50)]
_READING_CPCT = 3500


def _default_ocv() -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    defaults = firmware_module("bms.config_rules").DEFAULTS
    soc = np.array(defaults["ocv_soc_cpct"], dtype=float)
    dsg = np.array(defaults["ocv_dsg_mV"], dtype=float)
    return soc, dsg, defaults


def test_rest_correction_is_the_posterior_of_two_gaussians(tmp_path: Path) -> None:
    """The count (mean c, sigma sc) and a rested OCV reading on a known branch (r, sr) are
    two Gaussian estimates of the SOC; the correction must land on their posterior, computed
    here in floating point: mean (sr^2 c + sc^2 r) / (sc^2 + sr^2), sigma
    sc sr / sqrt(sc^2 + sr^2). Limits: a count without doubt stays, one far beyond 3 sigma
    of both is replaced by the reading (sigma sr). The firmware works in integers (sigmas
    in 0.1 % steps, the gain in 1/1000): the bound allowed is what those steps can move
    the float result, worked out below, not a fitted margin.
    """
    soc, dsg, defaults = _default_ocv()
    mV = round(float(np.interp(_READING_CPCT, soc, dsg)))
    # the reading and its sigma from the configuration's meaning (bms/config_rules.py):
    # the discharge-branch SOC at the rested voltage; ocv_unc_mV is the voltage's
    # uncertainty (half the SOC span it covers) and ocv_unc_cpct the table's own
    r = float(np.interp(mV, dsg, soc))
    du = defaults["ocv_unc_mV"]
    span = float(np.interp(mV + du, dsg, soc) - np.interp(mV - du, dsg, soc))
    sr = defaults["ocv_unc_cpct"] + span / 2
    cases = ", ".join(f"({c}, {u})" for c, u in _BLEND_CASES)
    out = run_rig(
        _HEAD
        + f"""
for c_cpct, u_cpct in ({cases},):
    r = Rig({{"rest_time_ms": 60000, "rest_window_ms": 10000}}, state_path="none.json")
    b = r.bms
    r.step(0, 0, mV=3700)
    r.run(300, 2000, mV=3600)  # the branch becomes DISCHARGE
    assert b.est.known and b.est.branch == DISCHARGE
    cap = b.learner.cap_mAs
    b.counter.set_mAs(cap // 10000 * c_cpct)
    b.est.unc_mAs = cap // 10000 * u_cpct
    for t in range(200):
        q0 = b.counter.q_mAs
        u0 = b.est.unc_mAs
        r.step(1000, 0, mV={mV})
        if b.flags & (1 << 9):
            break
    assert b.flags & (1 << 9) and b.learner.cap_mAs == cap, t
    print(cap, q0, u0, b.counter.q_mAs, b.est.unc_mAs)
""",
        tmp_path,
    )
    rows = [[int(x) for x in line.split()] for line in out.splitlines()]
    assert len(rows) == len(_BLEND_CASES)

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
        # the firmware's steps: each sigma down to a 0.1 % (10 cpct) step, the gain down
        # to 1/1000 of the distance, SOC readings and results down to 1 cpct; the sigma
        # through an integer square root in 10 cpct steps, never below 10 cpct
        corners = [
            posterior(c, max(sc - a, 0.0), max(sr - b, 0.0)) for a in (0, 10) for b in (0, 10)
        ]
        mean_tol = max(abs(m - want_mean) for m, _ in corners) + abs(r - c) / 1000 + 3
        sigma_tol = max(abs(s - want_sigma) for _, s in corners) + 10 + 2
        assert abs(got_mean - want_mean) <= mean_tol, (c_set, u_set, got_mean, want_mean)
        assert abs(got_sigma - want_sigma) <= sigma_tol, (c_set, u_set, got_sigma, want_sigma)
        print(
            f"count {c:7.1f} +- {sc:6.1f}, reading {r:7.1f} +- {sr:5.1f}: firmware "
            f"{got_mean:7.1f} +- {got_sigma:5.1f}, posterior {want_mean:7.1f} +- "
            f"{want_sigma:5.1f} (bounds {mean_tol:.1f}, {sigma_tol:.1f})"
        )


def test_rest_reading_far_outside_the_count_replaces_it(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"frozen_ms": 86400000})
b = r.bms
r.step(0, 0, mV=3700)
r.run(400, 2000, mV=3600)
b.counter.set_mAs(CAP * 8 // 10)  # a wrong state: the count says 80 %
b.est.unc_mAs = CAP // 200  # and claims 0.5 %
b.learner.point(b.cfg, 8000, 50)
v = b.ocv.mV_at(DISCHARGE, 4000)  # the rested cell reads 40 %
r.run(700, 0, mV=v)
# 40 % away is far beyond 3 sigma of both: the reading wins
assert abs(b.soc_cpct - 4000) <= 1, b.soc_cpct
# no charge moved since the anchor, so the jump says the count was wrong, not the
# capacity: nothing is learned from it
assert b.cap_learn_count == 0 and b.learner.cap_mAs == CAP, b.learner.cap_mAs
assert b.soc_unc_cpct > 50
""",
        tmp_path,
    )


def test_rest_with_branch_unknown_only_clamps_between_branches(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"rest_time_ms": 120000})
b = r.bms
r.step(0, 0, mV=3300)  # boots low: ~15 % on the charge branch reading
low = b.soc_cpct
v = 3700  # now reads between 50 % (charge) and ~78 % (discharge)
r.run(300, 0, mV=v)
assert not b.flags & (1 << 9)
lo = b.ocv.soc_at(CHARGE, v)
assert b.soc_cpct == lo, (b.soc_cpct, lo, low)
""",
        tmp_path,
    )


def test_full_reset_lands_on_the_ir_free_charge_branch_not_100(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"full_time_ms": 10000, "taper_mA": 150, "r_full_mohm": 55})
b = r.bms
r.step(0, 0, mV=3900)
assert b.soc_cpct < 9000
r.run(9, -120, mV=4195)
assert not b.flags & (1 << 7)
r.run(3, -120, mV=4195)
# the cell's OCV is 4195 - 120 mA x 55 mohm = 4189 mV: 94.5 % + 65/76 of 5 % on the charge branch
s = b.ocv.soc_at(CHARGE, 4189)
assert s == 9500 + 500 * 65 // 76 and s < 10000
assert b.flags & (1 << 7) and abs(b.soc_cpct - s) <= 1, (b.soc_cpct, s)
# uncertainty: full_unc_cpct plus half the IR term (3 mV) as SOC on the charge branch
u = 50 + (b.ocv.soc_at(CHARGE, 4192) - b.ocv.soc_at(CHARGE, 4186)) // 2
assert abs(b.soc_unc_cpct - u) <= 2, (b.soc_unc_cpct, u)
assert b.est.branch == CHARGE and b.est.known
assert b.learner.anchor_ok and b.learner.anchor_cpct == s
# the taper goes on: counted from there, and held at full once the count reaches it
r.run(30, -100, mV=4198)
assert s < b.soc_cpct < 10000
r.run(600, -100, mV=4199)
assert b.soc_cpct == 10000 and b.counter.q_mAs == CAP
""",
        tmp_path,
    )


def test_empty_calibration_lands_on_the_ir_free_discharge_branch(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
# cut-off inside the table (2.90 V) so the reading is not clamped
r = Rig({"v_min_mV": 2900, "empty_current_mA": 400, "r_empty_mohm": 55})
b = r.bms
r.step(0, 0, mV=3500)
r.run(10, 2000, mV=3500)
r.step(1000, 500, mV=2915)  # above empty_current_mA: no calibration
assert not b.flags & (1 << 8)
r.step(1000, 300, mV=2915)
# OCV = 2915 + 300 mA x 55 mohm = 2931 mV on the discharge branch: 17/158 of 5 %
s = b.ocv.soc_at(DISCHARGE, 2931)
assert s == 500 * 17 // 158 and s > 0
assert b.flags & (1 << 8) and abs(b.soc_cpct - s) <= 1, (b.soc_cpct, s)
# uncertainty: empty_unc_cpct plus the whole IR term (16 mV) as SOC
u = 50 + (b.ocv.soc_ext(DISCHARGE, 2947) - b.ocv.soc_ext(DISCHARGE, 2915)) // 2
assert abs(b.soc_unc_cpct - u) <= 2, (b.soc_unc_cpct, u)
assert b.est.branch == DISCHARGE

# the default cut-off (2.75 V) lies below SOC 0: the SOC is clamped to 0 and the
# distance past the table's end counts as uncertainty
r2 = Rig(state_path="other.json")
b2 = r2.bms
r2.step(0, 0, mV=3500)
r2.run(10, 2000, mV=3500)
r2.step(1000, 300, mV=2765)
ext = b2.ocv.soc_ext(DISCHARGE, 2765 + 16)
assert ext < 0
assert b2.flags & (1 << 8) and b2.soc_cpct == 0 and b2.remaining_mAh == 0
assert b2.soc_unc_cpct >= 50 - ext, (b2.soc_unc_cpct, ext)
assert b2.est.branch == DISCHARGE
# the count follows the cell below the cut-off (no hold at 0); the output stays at 0
r2.run(5, 300, mV=2740)
assert b2.counter.q_mAs < 0 and b2.soc_cpct == 0
""",
        tmp_path,
    )


def test_learning_from_a_full_reset_to_a_rest_corrected_low_point(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig({"ce_ppm": 1000000, "learn_step_cpct": 1000, "frozen_ms": 86400000})
b = r.bms
r.step(0, 0, mV=3900)
r.run(15, -100, mV=4200)  # full reset at 4200 - 5 mV
full = b.learner.anchor_cpct
assert b.flags & (1 << 7) and b.learner.anchor_ok and 9900 < full < 10000
r.run(3400, 2000, mV=3500)  # 1888.9 mAh out: the count says 5.2 %
assert b.dsg_on and b.est.known and b.est.branch == DISCHARGE
lo_v = b.ocv.mV_at(DISCHARGE, 300)  # the rested cell reads 3 % on the discharge branch
t = 0
while not b.flags & (1 << 9):
    r.step(1000, 0, mV=lo_v)
    t += 1
    assert t < 800
assert b.cap_learn_count == 1, b.cap_learn_count
sv = b.ocv.soc_at(DISCHARGE, lo_v)
assert b.learner.anchor_cpct == sv and b.learner.anchor_unc_cpct <= b.cfg.learn_unc_max_cpct
# learned: the counted charge between the two points over their SOC difference
net = 3400 * 2000 * 1000 // 1000 - 5 * 100  # discharge minus the taper counted after full
exp = net * 10000 // (full - sv)
assert abs(b.learner.cap_mAs - exp) <= 3600, (b.learner.cap_mAs, exp)
assert b.capacity_mAh < 2000
""",
        tmp_path,
    )


def test_capacity_learning_is_bounded_and_rate_limited(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
def cycle(r, dsg_mAh, step_mA=2000):
    b = r.bms
    r.run(15, -100, mV=4200)  # full (no IR term: the points are 100 % and 0 %)
    n = dsg_mAh * 3600 // step_mA
    r.run(n, step_mA, mV=3600)
    r.step(1000, 100, mV=2914)  # empty (adds 100 mAs)
    return b

BASE = {"r_cell_mohm": 0, "r_full_mohm": 0, "r_empty_mohm": 0, "v_min_mV": 2900, "ce_ppm": 1000000}

def rig(changes, path="bms_state.json"):
    d = dict(BASE)
    d.update(changes)
    return Rig(d, state_path=path)

r = rig({"learn_step_cpct": 500})
r.step(0, 0, mV=3900)
b = cycle(r, 1900)
# the boot estimate anchors nothing; full -> empty counted 1900 mAh + 100 mAs: learned
assert b.cap_learn_count == 1, b.cap_learn_count
# (the taper charge after the full point, a few hundred mAs, is in the count too)
assert 1900 * 3600 - 1000 <= b.learner.cap_mAs <= 1900 * 3600 + 100, b.learner.cap_mAs
r.run(6840, -1000, mV=3900)  # charge back 1900 mAh; the full point after it learns again
b = cycle(r, 1700)
assert b.cap_learn_count == 3, b.cap_learn_count
# 1700 mAh measured, but one event moves at most 5 % of the value in force
assert 1804 <= b.capacity_mAh <= 1805, b.capacity_mAh

r2 = rig({"learn_step_cpct": 2000}, "s2.json")
r2.step(0, 0, mV=3900)
b2 = cycle(r2, 600)
assert b2.capacity_mAh == 1600, b2.capacity_mAh  # 20 % step from 2000
r4 = rig({"learn_step_cpct": 2000, "learn_min_pct": 90}, "s4.json")
r4.step(0, 0, mV=3900)
b4 = cycle(r4, 600)
assert b4.capacity_mAh == 1800, b4.capacity_mAh  # never below learn_min_pct of design
r3 = rig({"learn_step_cpct": 2000}, "s3.json")
r3.step(0, 0, mV=3900)
b3 = cycle(r3, 2600)
assert b3.capacity_mAh == 2200, b3.capacity_mAh  # never above 110 % of design
assert b3.cycle_count == 1
""",
        tmp_path,
        timeout_s=180,
    )


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

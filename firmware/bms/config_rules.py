"""Configuration defaults, hard limits and validation: needed only while loading or changing it.

bms.config imports this module for boot, CONFIG_WRITE and Config() and drops it
from sys.modules afterwards, so these tables take no heap while the BMS runs.

Every value is an int with its unit in the key (mV, mA, ms, ddegC = 0.1 degC, mAh,
mg, dmAhg = 0.1 mAh/g, cpct = 0.01 %, ppm, uV_s = uV/s, mohm). Current is positive
on discharge. The hard limits do two jobs: they refuse unsafe settings (e.g. an
anode window above 2,200 mAh/g), and they bound the inputs of the integer
arithmetic in the per-sample step so every intermediate stays below 2**30
(see the bound notes in coulomb.py, soc.py and protection.py).
"""

import json

# Defaults: the sisn-lco-2ah cell (shared reference sisn-cell.md), one cell, one sensor.
DEFAULTS = {
    "n_cells": 1,
    "n_temps": 1,
    # estimation
    "capacity_mAh": 2000,  # design capacity; the learned one starts here
    "anode_mass_mg": 1200,  # anode active-layer mass per cell
    "ce_ppm": 998000,  # coulombic efficiency applied to charge
    "deadband_mA": 5,  # |current| below this counts as zero
    "max_dt_ms": 5000,  # a longer sample interval is clamped and flagged as a gap
    "ocv_soc_cpct": [0, 500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 9500, 10000],
    "ocv_chg_mV": [3222, 3425, 3523, 3601, 3631, 3662, 3710, 3771, 3847, 3941, 4059, 4124, 4200],
    "ocv_dsg_mV": [2914, 3072, 3161, 3269, 3337, 3393, 3455, 3530, 3622, 3733, 3864, 3931, 4007],
    "rest_current_mA": 40,  # C/50: above a plausible current-sensor offset
    "rest_time_ms": 600000,
    "rest_window_ms": 60000,
    "rest_dvdt_uV_s": 100,
    "rest_tau_s": 100,  # the slowest relaxation at 25 degC, mid SOC (scaled as R: tau_pct)
    "boot_check_cpct": 1000,  # a restored SOC this far from the boot voltage is replaced
    "branch_switch_cpct": 1500,  # charge moved one way that switches the hysteresis branch
    "ocv_unc_cpct": 50,  # SOC uncertainty of any OCV table reading (table, ageing)
    # an OCV reading's voltage uncertainty: the table against the cell (20 mV) plus the
    # cell-voltage sensor (v_sense_mV): a table 20 mV off behind a sensor 5 mV off
    "ocv_unc_mV": 25,
    "ocv_dudt_uV_K": -300,  # the OCV's temperature coefficient (entropic); the tables are at 25 C
    # sensor error bounds (shared reference sisn-cell.md section 6: a shunt + 16-bit ADC
    # front end): what the credible SOC uncertainty is built from
    "i_offset_mA": 30,  # current-sensor offset bound (+-20 mA typical, with margin) until learned
    "i_offset_learned_mA": 2,  # the offset's bound once learned at rest or with both switches open
    "i_gain_ppm": 20000,  # current-sensor gain bound (until capacity learning absorbs it)
    "t_sense_ddegC": 20,  # temperature-sensor bound: limits read the colder/hotter side
    "v_sense_mV": 5,  # cell-voltage sensor bound: the voltage limits of CCL/DCL allow it
    "cap_unc_cpct": 2500,  # capacity bound before it is learned: a cell down to 80 % of design
    "ce_unc_ppm": 1000,  # coulombic-efficiency bound, on charged charge
    # DC resistance incl. both RC pairs at 25 degC, mid SOC: OCV = V + I R. In uohm: a large
    # cell's few milliohm in whole milliohm were 9-20 % off (5.5 as 6, R0 2.5 as 2)
    "r_cell_uohm": 55000,
    # its shape over SOC at ocv_soc_cpct (R1, R2 rise steeply near empty), % of r_cell_uohm
    "r_soc_pct": [174, 145, 128, 112, 104, 101, 100, 101, 103, 107, 113, 116, 120],
    "full_band_mV": 15,
    "taper_mA": 100,  # end of CV: |charge current| at or below this
    "full_time_ms": 10000,
    "full_unc_cpct": 50,  # plus the SOC span of half the IR term
    "empty_band_mV": 20,
    "empty_current_mA": 400,
    "empty_unc_cpct": 50,  # plus the SOC span of the whole IR term
    "learn_min_pct": 50,  # learned capacity bounds, % of capacity_mAh
    "learn_max_pct": 110,
    "learn_min_dsoc_cpct": 3000,  # SOC span between two calibration points to learn from
    "learn_unc_max_cpct": 1000,  # a point less certain is none (the rate is by the evidence)
    "learn_t_min_ddegC": 100,  # capacity and resistance learn only between these temperatures
    "learn_t_max_ddegC": 400,
    # resistance: R0 at 25 degC mid SOC (for learning from current steps), the DC resistance's
    # temperature factors, and the lower bound a voltage reading under charge may assume
    "r0_uohm": 25000,
    "r_temp_ddegC": [-200, -100, 0, 100, 250, 450, 600],
    "r_temp_pct": [724, 428, 267, 175, 100, 54, 36],  # R0 + R1 + R2, percent of 25 degC
    "r0_temp_pct": [338, 249, 187, 144, 100, 65, 49],  # R0 alone
    "r_step_uohm_s": 1650,  # the RC pairs' start after a step, per second (1/C1 + 1/C2)
    # capacity window (anode utilization)
    "window_top_dmAhg": 16670,
    "window_bottom_dmAhg": 0,  # DSG opens when the counted utilization falls to this (SOC 0)
    "window_hyst_dmAhg": 100,
    "window_k_pct": 100,  # guard band: k x the credible SOC half-width, percent
    # anode potential (plating above anode_min_mV + anode_margin_mV): the silicon curves
    # against utilization, and the anode's share of the cell overpotential
    "anode_util_dmAhg": [0, 1191, 3572, 8335, 13098, 17861, 21433],
    "anode_lith_mV": [532, 376, 282, 221, 162, 83, 59],
    "anode_delith_mV": [840, 737, 608, 475, 372, 278, 205],
    "anode_share_pct": 50,
    "anode_min_mV": 50,
    "anode_margin_mV": 15,
    # current limits (CCL/DCL, magnitudes): derating by temperature, row i from its
    # temperature up to the next (below the first: 0), and the over-limit protection
    "ccl_temp_ddegC": [0, 100, 200, 450],
    "ccl_temp_mA": [400, 1000, 2000, 0],
    "dcl_temp_ddegC": [-200, 600],
    "dcl_temp_mA": [4000, 0],
    "cl_margin_mA": 50,  # ... plus this ...
    "cl_delay_ms": 2000,  # ... for this long opens the switch
    # protections
    "v_max_mV": 4200,  # charge target (CV); full-charge detection
    "v_min_mV": 2750,  # discharge cut-off; empty calibration
    "ov_mV": 4220,
    "ov_release_mV": 4150,
    "ov_delay_ms": 1000,
    "uv_mV": 2730,  # below the DCL's aim (v_min_mV - v_sense_mV), as ov_mV is above the CCL's
    "uv_release_mV": 3000,
    "uv_delay_ms": 2000,
    "uv_ir_mohm": 0,  # UV compensated by current x this resistance (0: off)
    "v_abuse_max_mV": 4250,
    "v_abuse_min_mV": 2500,
    "abuse_delay_ms": 0,  # abuse latches on a 2nd plausible sample in a row, >= this after the 1st
    "oc_chg_mA": 2500,
    "oc_chg_delay_ms": 2000,
    "oc_dsg_mA": 5000,
    "oc_dsg_delay_ms": 1000,
    "oc_release_ms": 10000,
    "sc_mA": 20000,
    "t_chg_min_ddegC": 0,
    "t_chg_max_ddegC": 450,
    "t_dsg_min_ddegC": -200,
    "t_dsg_max_ddegC": 600,
    "t_hyst_ddegC": 50,
    "t_delay_ms": 2000,
    "cell_valid_min_mV": 1000,
    "cell_valid_max_mV": 5000,
    "temp_valid_min_ddegC": -400,
    "temp_valid_max_ddegC": 1250,
    "i_range_mA": 50000,
    "sensor_delay_ms": 0,
    "frozen_ms": 300000,
    "frozen_min_mA": 400,
    # a current reading frozen for frozen_ms is implausible once the cells' voltage moved this
    # much against it (beyond the last step's relaxation): protection.py. 0: off (a board
    # that measures no current reads 0 mA, which convicts nothing)
    "frozen_i_mV": 30,
    "release_delay_ms": 2000,
    "link_timeout_ms": 3000,
    # balancing
    "bal_enable": 1,
    "bal_threshold_mV": 15,
    "bal_hyst_mV": 5,
    "bal_start_mV": 3900,
    "bal_max_dsg_mA": 200,
    "bal_min_on_ms": 60000,  # a started bleed holds this long: no chatter from its own IR drop
    # each cell's bleed resistor with its switch: the charge it draws past the current sensor
    # (V / R) is counted off that cell. 0: not counted (no bleed hardware)
    "bal_r_mohm": 33000,
    # persistence
    "persist_interval_ms": 600000,
    "persist_min_ms": 60000,
    "persist_dsoc_cpct": 500,
    "fault_log_len": 16,
}

# Hard limits (inclusive). The bounds marked * also keep the integer arithmetic in range.
LIMITS = {
    "n_cells": (1, 16),
    "n_temps": (0, 8),
    "capacity_mAh": (100, 20000),  # * mAs counts below 2**30 / 10 (intmath.ratio_1e4)
    "anode_mass_mg": (10, 1000000),  # *
    "ce_ppm": (900000, 1000000),  # *
    "deadband_mA": (0, 1000),
    "max_dt_ms": (100, 10000),  # * |I| * dt <= 1e5 mA * 1e4 ms = 1e9
    "rest_current_mA": (0, 5000),
    "rest_time_ms": (0, 86400000),
    "rest_window_ms": (1000, 100000),  # * window * dvdt <= 1e9
    "rest_dvdt_uV_s": (1, 5000),  # * dv <= 1000 mV: dv * 1e6 <= 1e9
    "rest_tau_s": (0, 1000),  # * dv <= 1000 mV: dv * tau * 1000 <= 1e9
    "branch_switch_cpct": (10, 5000),
    "ocv_unc_cpct": (10, 5000),
    "ocv_unc_mV": (0, 500),
    "ocv_dudt_uV_K": (-10000, 10000),
    "i_offset_mA": (0, 5000),
    "i_offset_learned_mA": (0, 5000),
    "i_gain_ppm": (0, 100000),
    "t_sense_ddegC": (0, 200),
    "v_sense_mV": (0, 100),
    "cap_unc_cpct": (0, 5000),
    "ce_unc_ppm": (0, 100000),
    "r_cell_uohm": (0, 1000000),
    "boot_check_cpct": (0, 10000),
    "full_band_mV": (0, 500),
    "taper_mA": (1, 20000),
    "full_time_ms": (0, 3600000),
    "full_unc_cpct": (0, 5000),
    "empty_band_mV": (0, 500),
    "empty_current_mA": (1, 20000),
    "empty_unc_cpct": (0, 5000),
    "learn_min_pct": (50, 100),
    "learn_max_pct": (100, 110),
    "learn_min_dsoc_cpct": (2000, 10000),
    "learn_unc_max_cpct": (0, 10000),
    "learn_t_min_ddegC": (-400, 1000),
    "learn_t_max_ddegC": (-400, 1000),
    # 1 ohm x the factors stays below 2**30; R0 at r0_temp_pct's 2000 %, in 10 uohm, x 1000
    # too (resistance.py learn), and is at least one such unit at its 10 %
    "r0_uohm": (100, 500000),
    "r_step_uohm_s": (0, 100000),  # * x dt <= 1e4 ms
    "window_top_dmAhg": (1, 22000),  # never above 2,200 mAh/g
    "window_bottom_dmAhg": (0, 22000),
    "window_hyst_dmAhg": (0, 5000),
    "window_k_pct": (0, 500),
    "anode_share_pct": (1, 100),
    "anode_min_mV": (0, 1000),
    "anode_margin_mV": (0, 1000),
    "cl_margin_mA": (0, 100000),
    "cl_delay_ms": (0, 600000),
    "v_max_mV": (3000, 4500),
    "v_min_mV": (1500, 4000),
    "ov_mV": (3000, 4600),
    "ov_release_mV": (2500, 4600),
    "ov_delay_ms": (0, 600000),
    "uv_mV": (1500, 4000),
    "uv_release_mV": (1500, 4500),
    "uv_delay_ms": (0, 600000),
    "uv_ir_mohm": (0, 1000),  # * 1e5 mA x 1e3 mohm = 1e8
    "v_abuse_max_mV": (3000, 5000),
    "v_abuse_min_mV": (1000, 4000),
    "abuse_delay_ms": (0, 10000),
    "oc_chg_mA": (1, 100000),
    "oc_chg_delay_ms": (0, 600000),
    "oc_dsg_mA": (1, 100000),
    "oc_dsg_delay_ms": (0, 600000),
    "oc_release_ms": (0, 3600000),
    "sc_mA": (1, 100000),
    "t_chg_min_ddegC": (-400, 1000),
    "t_chg_max_ddegC": (-400, 1000),
    "t_dsg_min_ddegC": (-400, 1000),
    "t_dsg_max_ddegC": (-400, 1000),
    "t_hyst_ddegC": (0, 200),
    "t_delay_ms": (0, 600000),
    "cell_valid_min_mV": (0, 5000),
    "cell_valid_max_mV": (1000, 65535),
    "temp_valid_min_ddegC": (-1000, 0),
    "temp_valid_max_ddegC": (0, 2000),
    "i_range_mA": (100, 100000),  # * clamps |current| before any product
    "sensor_delay_ms": (0, 600000),
    "frozen_ms": (1000, 86400000),
    "frozen_min_mA": (1, 100000),
    "frozen_i_mV": (0, 1000),
    "release_delay_ms": (0, 600000),
    "link_timeout_ms": (100, 600000),
    "bal_enable": (0, 1),
    "bal_threshold_mV": (1, 1000),
    "bal_hyst_mV": (0, 1000),
    "bal_start_mV": (2000, 4500),
    "bal_max_dsg_mA": (0, 100000),
    "bal_min_on_ms": (0, 3600000),
    "bal_r_mohm": (0, 1000000),
    "persist_interval_ms": (1000, 86400000),
    "persist_min_ms": (0, 86400000),
    "persist_dsoc_cpct": (10, 10000),
    "fault_log_len": (0, 64),
}

# Tables: (sizes lo..hi, then (key, entries lo..hi, order) per column; the first column is the
# table's axis). Order 1: strictly increasing, -1: strictly decreasing, 0: any. Every column of
# a table has the axis's length. The bounds keep the per-sample products below 2**30.
_TABLE_GROUPS = (
    (
        (2, 32),
        ("ocv_soc_cpct", 0, 10000, 1),
        ("ocv_chg_mV", 0, 5000, 1),
        ("ocv_dsg_mV", 0, 5000, 1),
        ("r_soc_pct", 10, 2000, 0),
    ),
    (
        (2, 12),
        ("anode_util_dmAhg", 0, 30000, 1),
        ("anode_lith_mV", 0, 3000, -1),
        ("anode_delith_mV", 0, 3000, -1),
    ),
    ((1, 6), ("ccl_temp_ddegC", -400, 1000, 1), ("ccl_temp_mA", 0, 100000, 0)),
    ((1, 6), ("dcl_temp_ddegC", -400, 1000, 1), ("dcl_temp_mA", 0, 100000, 0)),
    (
        (2, 8),
        ("r_temp_ddegC", -400, 1000, 1),
        ("r_temp_pct", 10, 2000, 0),
        ("r0_temp_pct", 10, 2000, 0),
    ),
)
_TABLES = tuple(col[0] for g in _TABLE_GROUPS for col in g[1:])
# (lower, upper): entry by entry, the lower table's value must not exceed the upper's
_BELOW = (("ocv_dsg_mV", "ocv_chg_mV"), ("anode_lith_mV", "anode_delith_mV"))

_UTIL_FULL_MAX = 35790  # dmAhg: silicon's theoretical capacity (Li15Si4)

# (key, must be <= key): orderings between limits
_ORDER = (
    ("v_abuse_min_mV", "uv_mV"),
    ("uv_mV", "uv_release_mV"),
    ("v_min_mV", "v_max_mV"),
    ("v_max_mV", "ov_mV"),
    ("ov_release_mV", "ov_mV"),
    ("ov_mV", "v_abuse_max_mV"),
    ("uv_release_mV", "ov_release_mV"),
    ("t_chg_min_ddegC", "t_chg_max_ddegC"),
    ("t_dsg_min_ddegC", "t_dsg_max_ddegC"),
    ("cell_valid_min_mV", "cell_valid_max_mV"),
    ("oc_dsg_mA", "sc_mA"),
    ("window_bottom_dmAhg", "window_top_dmAhg"),
    ("oc_dsg_mA", "i_range_mA"),
    ("oc_chg_mA", "i_range_mA"),
    ("learn_t_min_ddegC", "learn_t_max_ddegC"),
    ("i_offset_learned_mA", "i_offset_mA"),
)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_table(d, group):
    """One table group: lists of integers of one length within their bounds and order."""
    nmin, nmax = group[0]
    n = -1
    for k, lo, hi, order in group[1:]:
        t = d.get(k)
        if not isinstance(t, list) or not nmin <= len(t) <= nmax:
            return f"{k}: needs a list of {nmin}..{nmax} integers"
        if n >= 0 and len(t) != n:
            return f"{k}: length differs from {group[1][0]}"
        n = len(t)
        prev = None
        for v in t:
            if not _is_int(v) or v < lo or v > hi:
                return f"{k}: entries must be integers in {lo}..{hi}"
            if prev is not None and order and (v - prev) * order <= 0:
                return k + (": must increase strictly" if order > 0 else ": must decrease strictly")
            prev = v
    return None


def validate(d):
    """Check a complete configuration dict; return "field: reason" or None."""
    for k in d:
        if k not in LIMITS and k not in _TABLES:
            return k + ": unknown key"
    for k in LIMITS:
        if k not in d:
            return k + ": missing"
        v = d[k]
        if not _is_int(v):
            return k + ": not an integer"
        lo, hi = LIMITS[k]
        if v < lo or v > hi:
            return f"{k}: {v} outside the hard limits {lo}..{hi}"
    for group in _TABLE_GROUPS:
        err = _check_table(d, group)
        if err:
            return err
    soc = d["ocv_soc_cpct"]
    if soc[0] != 0 or soc[-1] != 10000:
        return "ocv_soc_cpct: must run from 0 to 10000"
    for lo_k, hi_k in _BELOW:
        lo_t = d[lo_k]
        hi_t = d[hi_k]
        for i in range(len(lo_t)):
            if lo_t[i] > hi_t[i]:
                return f"{lo_k}: above {hi_k}"
    for lo_k, hi_k in _ORDER:
        if d[lo_k] > d[hi_k]:
            return f"{lo_k}: must not exceed {hi_k} ({d[lo_k]} > {d[hi_k]})"
    # the design's utilization at full: no anode holds more than silicon's 3,579 mAh/g
    # (Li15Si4), and the window bounds' products (limits.py, SOC x it) stay small ints only
    # up to there; a capacity changed without its anode mass would run past both
    full = d["capacity_mAh"] * 10000 // d["anode_mass_mg"]  # <= 2e4 x 1e4 / 10
    if full > _UTIL_FULL_MAX:
        return (
            f"capacity_mAh: {full // 10} mAh/g at full over anode_mass_mg "
            f"{d['anode_mass_mg']} mg, above silicon's 3,579 mAh/g"
        )
    # a step's R (resistance.py learn: up to 1 V over C/4, in uohm) over R0 at its coldest
    # 10 %, in 10 uohm, times 1000 stays a small int only for cells whose R0 is not far
    # below any real one of their capacity (a 2 Ah cell's 25 mohm: 2000 x 25000 mAh x uohm;
    # the bound inline: as a module-level name it took 16 B more of the heap in operation)
    if d["capacity_mAh"] * d["r0_uohm"] < 400000:
        return (
            f"r0_uohm: {d['r0_uohm']} uohm at capacity_mAh {d['capacity_mAh']} mAh, below "
            "400000 mAh x uohm"
        )
    return None


def read(path):
    """Read and validate the configuration file; return (dict or None, flags, error). Never raises.

    The dict is the file merged over the defaults. No file (nor a .tmp left by a save cut
    between remove and rename, see config.write_json_atomic): None, flag bit3.
    Unreadable or rejected: None, flag bit4 and why.
    """
    from bms import forget
    from bms.storage import read_text  # the state file's reader, for both files

    try:
        text = read_text(path)
        if text is None:
            return None, 8, None
        d = json.loads(text)
        if not isinstance(d, dict):
            raise ValueError("not an object")
    except (ValueError, TypeError, MemoryError, RuntimeError) as e:
        # (too deep for the heap: MemoryError; for the stack: RuntimeError)
        return None, 16, f"config: unreadable JSON ({e or type(e).__name__})"
    finally:
        forget("storage")  # the Bms loads it again for the state file, and drops it after
    merged = dict(DEFAULTS)
    for k in d:
        merged[k] = d[k]
    err = validate(merged)
    if err:
        return None, 16, err
    return merged, 0, None

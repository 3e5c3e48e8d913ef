"""The firmware configuration (bms_config.json) made from a cell design and a board.

Maps a cellmodel CellDesign to the integer keys of the firmware's configuration
(units in the key names; current positive on discharge). The defaults, the hard
limits and the validation are the firmware's own (firmware/bms/config_rules.py,
pure Python that runs under CPython too), loaded here so there is one source of
truth: a design outside the limits fails on the host with the cell file's
field named, before anything is written to a board, and the firmware checks
the file again on boot.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from cellmodel.design import dc_resistance_ohm
from cellmodel.errors import InputError
from host.resources import firmware_dir

if TYPE_CHECKING:
    from cellmodel import CellDesign
    from host.boards import Board


@cache
def firmware_rules() -> ModuleType:
    """firmware/bms/config_rules.py: DEFAULTS, LIMITS and validate() as the firmware has them."""
    path = firmware_dir() / "bms" / "config_rules.py"
    spec = importlib.util.spec_from_file_location("sisnbms_firmware_config_rules", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load the firmware's configuration rules from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The claims' top of the anode capacity window; the firmware's limit on window_top_dmAhg.
WINDOW_TOP_MAX_MAH_G = firmware_rules().LIMITS["window_top_dmAhg"][1] / 10.0
MAX_TEMPS = firmware_rules().LIMITS["n_temps"][1]
CURRENT_MAX_MA = firmware_rules().LIMITS["i_range_mA"][1]
# The longest interval the firmware counts in one sample (max_dt_ms's limit keeps |I| x dt
# in range): samples further apart would each be a gap, so no board or scenario samples slower.
SAMPLE_PERIOD_MAX_MS = firmware_rules().LIMITS["max_dt_ms"][1]


def _mV(v: float) -> int:
    return round(v * 1000.0)


def _ddegC(t: float) -> int:
    return round(t * 10.0)


# An integer with more digits than this is shown in scientific notation in a message: a
# value derived from an absurd cell field (1e-300 s) must not print 300 digits.
_MAX_DIGITS = 12
_LONG_INT = re.compile(rf"-?\d{{{_MAX_DIGITS + 1},}}")


def _fmt(value: float) -> str:
    """`value` for a message: as it is, or as 1.5e+302 when it has too many digits."""
    if isinstance(value, int) and len(str(abs(value))) <= _MAX_DIGITS:
        return str(value)
    return f"{float(value):.4g}"


def _tidy(message: str) -> str:
    """`message` with every integer of more than _MAX_DIGITS digits in scientific notation
    (the firmware's validate() prints the values it refuses as they are)."""
    return _LONG_INT.sub(lambda m: _fmt(int(m.group())), message)


def _check(source: str, key: str, field: str, value: int) -> int:
    lo, hi = firmware_rules().LIMITS[key]
    if not lo <= value <= hi:
        raise InputError(
            source, field, f"gives {key}={_fmt(value)}, outside the firmware's {lo}..{hi}"
        )
    return value


def build_config(design: CellDesign, board: Board | None = None) -> dict[str, Any]:
    """The bms_config.json dict for `design` (n_series cells) on `board`.

    Raises InputError (naming the cell file's field) when the design lies outside
    what the firmware accepts, e.g. a window top above 2,200 mAh/g.
    """
    src = str(design.source or design.name)
    cap_mAh = design.capacity_Ah * 1000.0
    # Settings that do not come from the cell keep the firmware's defaults.
    cfg: dict[str, Any] = dict(firmware_rules().DEFAULTS)
    cfg.update(_cell_keys(design, src))
    cfg.update(_ocv_keys(design))
    cfg.update(_estimator_keys(design, cap_mAh))
    cfg.update(_voltage_keys(design))
    cfg.update(_current_and_temperature_keys(design, src, cap_mAh))
    cfg.update(_anode_keys(design))
    cfg.update(_resistance_temperature_keys(design))
    cfg.update(_derating_keys(design, cap_mAh))
    cfg.update(_board_keys(board, cfg["n_cells"], src))
    # The offset is learned only at a rest (a current within rest_current_mA) or with both
    # switches open: an offset within its bound must not hide a rest. A 0.5 Ah cell's C/50
    # is 10 mA: with a 20 mA offset it never rested, the offset was never learned, and its
    # partial cycles ran 13.7-21.3 % of SOC off.
    cfg["rest_current_mA"] = max(cfg["rest_current_mA"], cfg["i_offset_mA"])
    error = firmware_rules().validate(cfg)
    if error:
        # "key: reason": named after the cell file's field the key is made from, where one is
        # ("ocv.soc", not "derived firmware configuration", for a 40-point OCV table).
        field = _FIELD_OF_KEY.get(error.split(":", 1)[0], "derived firmware configuration")
        reason = _tidy(error)
        if field != "derived firmware configuration":
            reason = f"the firmware's configuration refuses it: {reason}"
        raise InputError(src, field, reason)
    return cfg


# The firmware keys made from one field of the cell file each.
_FIELD_OF_KEY = {
    "ocv_soc_cpct": "ocv.soc",
    "ocv_chg_mV": "ocv.charge_V",
    "ocv_dsg_mV": "ocv.discharge_V",
    "ocv_dudt_uV_K": "circuit.dUdT_V_K",
    "branch_switch_cpct": "circuit.hysteresis_gamma",
    "anode_util_dmAhg": "anode_potential.li_fraction",
    "anode_lith_mV": "anode_potential.lithiation_V",
    "anode_delith_mV": "anode_potential.delithiation_V",
    "anode_min_mV": "limits.anode_potential_min_V",
    "v_max_mV": "limits.v_max_V",
    "v_min_mV": "limits.v_min_V",
    "v_abuse_max_mV": "limits.v_abuse_max_V",
    "v_abuse_min_mV": "limits.v_abuse_min_V",
    "t_chg_min_ddegC": "limits.charge_temp_min_degC",
    "t_chg_max_ddegC": "limits.charge_temp_max_degC",
    "t_dsg_min_ddegC": "limits.discharge_temp_min_degC",
    "t_dsg_max_ddegC": "limits.discharge_temp_max_degC",
    "oc_chg_mA": "limits.max_charge_C",
    "oc_dsg_mA": "limits.max_discharge_C",
    "taper_mA": "limits.cv_cutoff_C",
}


def _cell_keys(design: CellDesign, src: str) -> dict[str, int]:
    """The cell's size: capacity, anode mass, coulombic efficiency, anode window, count."""
    lim = design.limits
    if lim.window_top_mAh_g > WINDOW_TOP_MAX_MAH_G:
        raise InputError(
            src,
            "limits.window_top_mAh_g",
            f"{lim.window_top_mAh_g:g} mAh/g is above the firmware's {WINDOW_TOP_MAX_MAH_G:g}",
        )
    ce = design.circuit.coulombic_efficiency
    return {
        "n_cells": _check(src, "n_cells", "n_series", int(design.n_series)),
        "capacity_mAh": _check(
            src, "capacity_mAh", "capacity_Ah", round(design.capacity_Ah * 1000)
        ),
        "anode_mass_mg": _check(
            src, "anode_mass_mg", "anode_mass_g", round(design.anode_mass_g * 1000)
        ),
        "ce_ppm": _check(src, "ce_ppm", "circuit.coulombic_efficiency", round(ce * 1e6)),
        "window_top_dmAhg": _check(
            src, "window_top_dmAhg", "limits.window_top_mAh_g", round(lim.window_top_mAh_g * 10)
        ),
    }


# The slowest hysteresis rate the firmware allows for, as a share of the design's gamma.
HYSTERESIS_RATE_MARGIN = 0.5


def _ocv_keys(design: CellDesign) -> dict[str, Any]:
    """The OCV branch tables, their temperature coefficient and how fast the hysteresis
    state changes branch."""
    return {
        "ocv_soc_cpct": [round(s * 10000) for s in design.ocv.soc],
        "ocv_chg_mV": [_mV(v) for v in design.ocv.charge_V],
        "ocv_dsg_mV": [_mV(v) for v in design.ocv.discharge_V],
        # the tables are at 25 degC; the OCV moves by the entropic coefficient off it
        "ocv_dudt_uV_K": round(design.circuit.dUdT_V_K * 1e6),
        "branch_switch_cpct": _branch_switch_cpct(design.circuit.hysteresis_gamma),
    }


def _branch_switch_cpct(gamma: float) -> int:
    """The charge moved one way (0.01 % of capacity) after which the firmware reads the OCV
    off that direction's branch.

    gamma moves the hysteresis state ~95 % of the way in 3/gamma of capacity; gamma is
    assumed (sisn-cell.md section 3), so the firmware takes a cell twice as slow, within
    its limits. gamma = 0 is a cell whose hysteresis state never moves (cellmodel.circuit:
    "0 when hysteresis is off"): it stays between the branches whatever the charge, so no
    charge switches the branch. That is the limit of 3/gamma as gamma -> 0, and the firmware
    gets its slowest switch (the top of its limit), as for any gamma too small to reach it:
    a valid cell, not an error (and no division by zero).
    """
    lo, hi = firmware_rules().LIMITS["branch_switch_cpct"]
    # 3/(margin gamma) x 1e4 >= hi, asked without dividing by a gamma of 0 (or 5e-324)
    if gamma * HYSTERESIS_RATE_MARGIN * hi <= 3.0e4:
        return hi
    return max(lo, round(3.0 / (HYSTERESIS_RATE_MARGIN * gamma) * 1e4))


def _estimator_keys(design: CellDesign, cap_mAh: float) -> dict[str, Any]:
    """Resistances and current thresholds the SOC estimator reads the cell with."""
    # The DC resistance (R0 + both RC pairs, 25 degC) the firmware takes the IR drop off a
    # reading with, at mid SOC and its shape over SOC. Colder cells have more (the
    # temperature table); the firmware counts part of the IR term as uncertainty.
    c = design.circuit
    r_mid_ohm = dc_resistance_ohm(design, 0.5)
    return {
        # the RC pairs' capacitances (C = tau / R, constant with temperature and ageing): a
        # step's voltage starts moving at I (1/C1 + 1/C2) per second after the R0 jump
        "r_step_uohm_s": round((c.r1_ohm / c.tau1_s + c.r2_ohm / c.tau2_s) * 1e6),
        # a rested reading still relaxes with the slower pair's time constant
        "rest_tau_s": max(0, min(1000, round(max(c.tau1_s, c.tau2_s)))),
        "r_cell_uohm": max(1, round(r_mid_ohm * 1e6)),
        # the shape over SOC, on the OCV tables' SOCs (dense near empty, where R1 and R2
        # rise steeply): the IR-free readings under load (full, empty, a steady current) are
        # only as good as it
        "r_soc_pct": [
            max(10, min(2000, round(100.0 * dc_resistance_ohm(design, s) / r_mid_ohm)))
            for s in design.ocv.soc
        ],
        # the host's CV step ends at cv_cutoff_C: detect the taper a little above it
        "taper_mA": max(1, round(1.5 * design.limits.cv_cutoff_C * cap_mAh)),
        "empty_current_mA": max(1, round(0.2 * cap_mAh)),
        # C/50, and never below the offset bound (build_config)
        "rest_current_mA": max(1, round(cap_mAh / 50)),
    }


def _anode_keys(design: CellDesign) -> dict[str, Any]:
    """The silicon anode's potential curves against utilization, and the plating limit.

    The cell file gives them against the anode's lithium fraction x, with SOC 0..1 of the
    design mapped to li_fraction_empty..li_fraction_full, i.e. utilization 0..C_N mAh/g:
    utilization = (x - x_empty) / (x_full - x_empty) x C_N. Points below x_empty fall
    below zero utilization and are dropped (the firmware's table starts at 0: the point
    at 0 is interpolated there).
    """
    ap = design.anode_potential
    span = ap.li_fraction_full - ap.li_fraction_empty
    util = (np.asarray(ap.li_fraction) - ap.li_fraction_empty) / span * design.c_n_mAh_g
    lith = np.asarray(ap.lithiation_V)
    delith = np.asarray(ap.delithiation_V)
    grid = np.concatenate(([0.0], util[util > 0.0]))
    return {
        "anode_util_dmAhg": [round(u * 10.0) for u in grid],
        "anode_lith_mV": [_mV(v) for v in np.interp(grid, util, lith)],
        "anode_delith_mV": [_mV(v) for v in np.interp(grid, util, delith)],
        "anode_share_pct": max(1, round(design.circuit.anode_polarization_share * 100.0)),
        "anode_min_mV": _mV(design.limits.anode_potential_min_V),
    }


# Temperatures of the firmware's resistance tables (degC): the design's range and beyond.
R_TABLE_DEGC = (-20.0, -10.0, 0.0, 10.0, 25.0, 45.0, 60.0)


def _resistance_temperature_keys(design: CellDesign) -> dict[str, Any]:
    """R0 at 25 degC and mid SOC, and the temperature factors (Arrhenius, cell file's
    activation energies) of R0 and of the DC resistance R0 + R1 + R2, percent of 25 degC."""
    c = design.circuit
    ref = 1.0 / 298.15
    r0_pct, rdc_pct = [], []
    for t in R_TABLE_DEGC:
        u = (1.0 / (t + 273.15) - ref) / 8.314462618
        f0, f1, f2 = (float(np.exp(ea * u)) for ea in (c.ea_r0_J_mol, c.ea_r1_J_mol, c.ea_r2_J_mol))
        r0_pct.append(round(100.0 * f0))
        rdc = (c.r0_ohm * f0 + c.r1_ohm * f1 + c.r2_ohm * f2) / (c.r0_ohm + c.r1_ohm + c.r2_ohm)
        rdc_pct.append(round(100.0 * rdc))
    return {
        "r0_uohm": round(c.r0_ohm * 1e6),
        "r_temp_ddegC": [_ddegC(t) for t in R_TABLE_DEGC],
        "r_temp_pct": rdc_pct,
        "r0_temp_pct": r0_pct,
    }


# Charge derating (shared reference sisn-cell.md section 6, JEITA-style, assumed): from each
# temperature up to the next, this C-rate (never above the cell's max_charge_C); none below
# the cell's charge_temp_min_degC or above its charge_temp_max_degC.
CHARGE_DERATING = ((0.0, 0.2), (10.0, 0.5), (20.0, 1.0))


def _derating_keys(design: CellDesign, cap_mAh: float) -> dict[str, Any]:
    """CCL and DCL against temperature; current as magnitudes in mA."""
    lim = design.limits
    t_lo, t_hi = lim.charge_temp_min_degC, lim.charge_temp_max_degC
    rows: dict[float, float] = {}
    for t, rate in CHARGE_DERATING:
        t = max(t, t_lo)  # a row below the charge range starts where the range does
        if t < t_hi:
            rows[t] = min(rate, lim.max_charge_C)
    rows[t_hi] = 0.0
    ccl_t = sorted(rows)
    return {
        "ccl_temp_ddegC": [_ddegC(t) for t in ccl_t],
        "ccl_temp_mA": [round(rows[t] * cap_mAh) for t in ccl_t],
        "dcl_temp_ddegC": [
            _ddegC(lim.discharge_temp_min_degC),
            _ddegC(lim.discharge_temp_max_degC),
        ],
        "dcl_temp_mA": [round(lim.max_discharge_C * cap_mAh), 0],
    }


def _voltage_keys(design: CellDesign) -> dict[str, int]:
    """Cell voltage limits, protection thresholds and their releases."""
    lim = design.limits
    v_max = _mV(lim.v_max_V)
    v_min = _mV(lim.v_min_V)
    dsg_empty_mV = _mV(design.ocv.discharge_V[0])
    return {
        "v_max_mV": v_max,
        "v_min_mV": v_min,
        "ov_mV": min(v_max + 20, _mV(lim.v_abuse_max_V)),
        "ov_release_mV": v_max - 50,
        # UV mirrors OV: 20 mV beyond the limit that the current limits aim at (v_min less
        # v_sense_mV), so a load that keeps to the DCL is held at v_min and never trips it;
        # UV opens DSG under a load that does not.
        "uv_mV": max(v_min - 20, _mV(lim.v_abuse_min_V)),
        "uv_release_mV": max(v_min, min(dsg_empty_mV + 100, v_max - 100)),
        "v_abuse_max_mV": _mV(lim.v_abuse_max_V),
        "v_abuse_min_mV": _mV(lim.v_abuse_min_V),
    }


def _current_and_temperature_keys(design: CellDesign, src: str, cap_mAh: float) -> dict[str, int]:
    """Over-current, short-circuit and sensor range; temperature windows; balancing drain."""
    lim = design.limits
    oc_chg_mA = round(round(lim.max_charge_C * cap_mAh) * 1.25)
    oc_dsg_mA = round(round(lim.max_discharge_C * cap_mAh) * 1.25)
    sc_mA = max(oc_dsg_mA * 2, round(5 * cap_mAh))
    i_range_mA = _check(src, "i_range_mA", "limits.max_discharge_C", min(CURRENT_MAX_MA, sc_mA * 2))
    return {
        "oc_chg_mA": oc_chg_mA,
        "oc_dsg_mA": oc_dsg_mA,
        "sc_mA": sc_mA,
        "i_range_mA": i_range_mA,
        "frozen_min_mA": max(1, round(0.2 * cap_mAh)),
        "bal_max_dsg_mA": max(1, round(0.1 * cap_mAh)),
        "t_chg_min_ddegC": _ddegC(lim.charge_temp_min_degC),
        "t_chg_max_ddegC": _ddegC(lim.charge_temp_max_degC),
        "t_dsg_min_ddegC": _ddegC(lim.discharge_temp_min_degC),
        "t_dsg_max_ddegC": _ddegC(lim.discharge_temp_max_degC),
    }


def _board_keys(board: Board | None, n_cells: int, src: str) -> dict[str, int]:
    """Temperature sensor count and the timing that follows the board's sample period."""
    if board is not None and board.mode == "standalone":
        n_temps = len(board.pins.adc_temps)
    else:
        n_temps = min(n_cells, MAX_TEMPS)  # the emulator reports one sensor per cell
    keys = {"n_temps": _check(getattr(board, "source", src), "n_temps", "pins.adc_temps", n_temps)}
    if board is not None and board.mode == "standalone" and board.current_sensor == "none":
        # the board measures no current: its reading is 0 mA whatever flows, so the cells'
        # voltage moving must not convict it (SENSOR_FROZEN would open both switches)
        keys["frozen_i_mV"] = 0
    if board is not None:
        period = int(board.sample_period_ms)
        # a sample may come late by several periods before it counts as a gap
        keys["max_dt_ms"] = max(100, min(SAMPLE_PERIOD_MAX_MS, 5 * period))
        keys["link_timeout_ms"] = max(100, min(600000, 3 * period))
        # the bled charge is counted off each cell where something bleeds: the host's
        # emulated resistors in link mode, the board's own switches in standalone mode
        bleeds = board.mode == "link" or bool(board.pins.bleed)
        keys["bal_r_mohm"] = board.bleed_mohm if bleeds else 0
    return keys

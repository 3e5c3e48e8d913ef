"""The firmware configuration (bms_config.json) made from a cell design and a board.

Maps a cellmodel CellDesign to the integer keys of firmware/bms/config.py
(units in the key names; current positive on discharge). The firmware validates
the result again on boot against its own hard limits; HARD_LIMITS below repeats
the ones a cell file can reach, so a bad design fails here with the cell file's
field named instead of on the board, and tests/host/test_firmware_config.py
checks they agree with the firmware's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cellmodel.errors import InputError

if TYPE_CHECKING:
    from cellmodel import CellDesign
    from host.boards import Board

# Limits the firmware refuses to exceed (firmware/bms/config.py LIMITS), in host units.
WINDOW_TOP_MAX_MAH_G = 2200.0  # never above 2,200 mAh/g (claims 1 and 5)
CAPACITY_MAX_MAH = 20000  # keeps the firmware's mAs counts in small-int range
CAPACITY_MIN_MAH = 100
ANODE_MASS_MIN_MG = 10
ANODE_MASS_MAX_MG = 1_000_000
MAX_CELLS = 16
MAX_TEMPS = 8
CURRENT_MAX_MA = 100_000
CE_MIN_PPM = 900_000

HARD_LIMITS: dict[str, tuple[int, int]] = {
    "n_cells": (1, MAX_CELLS),
    "n_temps": (0, MAX_TEMPS),
    "capacity_mAh": (CAPACITY_MIN_MAH, CAPACITY_MAX_MAH),
    "anode_mass_mg": (ANODE_MASS_MIN_MG, ANODE_MASS_MAX_MG),
    "ce_ppm": (CE_MIN_PPM, 1_000_000),
    "window_top_dmAhg": (1, round(WINDOW_TOP_MAX_MAH_G * 10)),
    "i_range_mA": (100, CURRENT_MAX_MA),
}

# Settings that do not come from the cell (the firmware's defaults, repeated so the
# generated file is complete and self-describing).
_FIXED: dict[str, Any] = {
    "deadband_mA": 5,
    "max_dt_ms": 5000,
    "rest_current_mA": 20,
    "rest_time_ms": 600000,
    "rest_window_ms": 60000,
    "rest_dvdt_uV_s": 100,
    "ocv_unc_cpct": 50,
    "ocv_unc_mV": 8,
    "unc_gain_ppm": 5000,
    "full_band_mV": 15,
    "full_time_ms": 10000,
    "full_unc_cpct": 50,
    "empty_band_mV": 20,
    "empty_unc_cpct": 50,
    "learn_min_pct": 50,
    "learn_max_pct": 110,
    "learn_step_cpct": 500,
    "learn_min_dsoc_cpct": 6000,
    "learn_unc_max_cpct": 150,
    "window_bottom_dmAhg": 0,
    "window_hyst_dmAhg": 100,
    "ov_delay_ms": 1000,
    "uv_delay_ms": 2000,
    "uv_ir_mohm": 0,
    "abuse_delay_ms": 0,
    "oc_chg_delay_ms": 2000,
    "oc_dsg_delay_ms": 1000,
    "oc_release_ms": 10000,
    "t_hyst_ddegC": 50,
    "t_delay_ms": 2000,
    "cell_valid_min_mV": 1000,
    "cell_valid_max_mV": 5000,
    "temp_valid_min_ddegC": -400,
    "temp_valid_max_ddegC": 1250,
    "sensor_delay_ms": 0,
    "frozen_ms": 300000,
    "release_delay_ms": 2000,
    "link_timeout_ms": 3000,
    "bal_enable": 1,
    "bal_threshold_mV": 15,
    "bal_hyst_mV": 5,
    "bal_start_mV": 3900,
    "persist_interval_ms": 600000,
    "persist_min_ms": 60000,
    "persist_dsoc_cpct": 500,
    "fault_log_len": 16,
}


def _mV(v: float) -> int:
    return round(v * 1000.0)


def _ddegC(t: float) -> int:
    return round(t * 10.0)


def _check(source: str, key: str, field: str, value: int) -> int:
    lo, hi = HARD_LIMITS[key]
    if not lo <= value <= hi:
        raise InputError(source, field, f"gives {key}={value}, outside the firmware's {lo}..{hi}")
    return value


def build_config(design: CellDesign, board: Board | None = None) -> dict[str, Any]:
    """The bms_config.json dict for `design` (n_series cells) on `board`.

    Raises InputError (naming the cell file's field) when the design lies outside
    what the firmware accepts, e.g. a window top above 2,200 mAh/g.
    """
    src = str(design.source or design.name)
    lim = design.limits
    cap_mAh = design.capacity_Ah * 1000.0
    capacity_mAh = _check(src, "capacity_mAh", "capacity_Ah", round(cap_mAh))
    anode_mass_mg = _check(src, "anode_mass_mg", "anode_mass_g", round(design.anode_mass_g * 1000))
    if lim.window_top_mAh_g > WINDOW_TOP_MAX_MAH_G:
        raise InputError(
            src,
            "limits.window_top_mAh_g",
            f"{lim.window_top_mAh_g:g} mAh/g is above the firmware's {WINDOW_TOP_MAX_MAH_G:g}",
        )
    window_top = _check(
        src, "window_top_dmAhg", "limits.window_top_mAh_g", round(lim.window_top_mAh_g * 10)
    )
    n_cells = _check(src, "n_cells", "n_series", int(design.n_series))
    ce_ppm = _check(
        src,
        "ce_ppm",
        "circuit.coulombic_efficiency",
        round(design.circuit.coulombic_efficiency * 1e6),
    )
    if board is not None and board.mode == "standalone":
        n_temps = len(board.pins.adc_temps)
    else:
        n_temps = min(n_cells, MAX_TEMPS)  # the emulator reports one sensor per cell
    n_temps = _check(getattr(board, "source", src), "n_temps", "pins.adc_temps", n_temps)

    soc = [round(s * 10000) for s in design.ocv.soc]
    chg = [_mV(v) for v in design.ocv.charge_V]
    dsg = [_mV(v) for v in design.ocv.discharge_V]
    max_chg_mA = round(lim.max_charge_C * cap_mAh)
    max_dsg_mA = round(lim.max_discharge_C * cap_mAh)
    oc_chg_mA = round(max_chg_mA * 1.25)
    oc_dsg_mA = round(max_dsg_mA * 1.25)
    sc_mA = max(oc_dsg_mA * 2, round(5 * cap_mAh))
    i_range_mA = _check(src, "i_range_mA", "limits.max_discharge_C", min(CURRENT_MAX_MA, sc_mA * 2))
    v_max = _mV(lim.v_max_V)
    v_min = _mV(lim.v_min_V)
    # DC resistance incl. both RC pairs at 25 degC and 50 % SOC (the circuit's reference
    # point): the firmware's OCV = V + I R for the boot estimate and the full/empty
    # calibrations. It is higher near empty and in the cold; the firmware counts the
    # whole IR term as uncertainty at the empty calibration and keeps that to low current.
    r_dc_ohm = design.circuit.r0_ohm + design.circuit.r1_ohm + design.circuit.r2_ohm

    cfg: dict[str, Any] = dict(_FIXED)
    cfg.update(
        {
            "n_cells": n_cells,
            "n_temps": n_temps,
            "capacity_mAh": capacity_mAh,
            "anode_mass_mg": anode_mass_mg,
            "ce_ppm": ce_ppm,
            "ocv_soc_cpct": soc,
            "ocv_chg_mV": chg,
            "ocv_dsg_mV": dsg,
            # gamma moves the hysteresis state ~95 % of the way in 3/gamma of capacity
            "branch_switch_cpct": max(
                10, min(5000, round(3.0 / design.circuit.hysteresis_gamma * 1e4))
            ),
            "r_cell_mohm": round(r_dc_ohm * 1000),
            # the host's CV step ends at cv_cutoff_C: detect the taper a little above it
            "taper_mA": max(1, round(1.5 * lim.cv_cutoff_C * cap_mAh)),
            "empty_current_mA": max(1, round(0.2 * cap_mAh)),
            "window_top_dmAhg": window_top,
            "v_max_mV": v_max,
            "v_min_mV": v_min,
            "ov_mV": min(v_max + 20, _mV(lim.v_abuse_max_V)),
            "ov_release_mV": v_max - 50,
            "uv_mV": v_min,
            "uv_release_mV": max(v_min, min(dsg[0] + 100, v_max - 100)),
            "v_abuse_max_mV": _mV(lim.v_abuse_max_V),
            "v_abuse_min_mV": _mV(lim.v_abuse_min_V),
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
    )
    if board is not None:
        period = int(board.sample_period_ms)
        cfg["max_dt_ms"] = max(100, min(10000, 5 * period))
        cfg["link_timeout_ms"] = max(100, min(600000, 3 * period))
    return cfg

"""host.firmware_config: the generated bms_config.json is what the real firmware accepts."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from cellmodel import PackModel, load_cell
from cellmodel.errors import InputError
from host.firmware_config import build_config, firmware_rules
from tests.firmware.bms_harness import firmware_module
from tests.firmware.mpy import run_mpy

# The design-space probes' 20 Ah cell: a tenth of the default cell's resistance
CELL_20AH = Path(__file__).parents[2] / "examples" / "design-space" / "cells" / "cell-20ah.toml"

_LOAD = """
from bms import config
c, f = config.load("bms_config.json")
print(f, c.error)
"""


def _firmware_verdict(tmp_path: Path, cfg: dict[str, object]) -> str:
    (tmp_path / "bms_config.json").write_text(json.dumps(cfg))
    return run_mpy(_LOAD, cwd=tmp_path).strip()


@pytest.mark.parametrize(("cell", "n_cells"), [("sisn-lco-2ah", 1), ("sisn-lco-2ah-4s", 4)])
def test_firmware_accepts_the_generated_config(tmp_path: Path, cell: str, n_cells: int) -> None:
    cfg = build_config(load_cell(cell))
    # The preset's numbers (cellmodel/cells/sisn-lco-2ah.toml, `sisnbms design`): a 1.998 Ah
    # cell, anode window top 1667.0 mAh/g, 13-point OCV tables from 3.222 / 2.914 V at SOC 0.
    assert cfg["n_cells"] == n_cells
    assert cfg["capacity_mAh"] == 1998
    assert cfg["window_top_dmAhg"] == 16670
    assert cfg["ocv_chg_mV"][0] == 3222 and cfg["ocv_dsg_mV"][0] == 2914
    assert cfg["ocv_chg_mV"][-1] == 4200 and len(cfg["ocv_soc_cpct"]) == 13
    assert _firmware_verdict(tmp_path, cfg) == "0 None"


# What the cell determines; every other key is a firmware setting that keeps its default.
_CELL_KEYS = {
    "n_cells",
    "n_temps",
    "capacity_mAh",
    "anode_mass_mg",
    "ce_ppm",
    "window_top_dmAhg",
    "ocv_soc_cpct",
    "ocv_chg_mV",
    "ocv_dsg_mV",
    "ocv_dudt_uV_K",
    "branch_switch_cpct",
    "r_cell_uohm",
    "r_soc_pct",
    "taper_mA",
    "empty_current_mA",
    "rest_current_mA",
    "v_max_mV",
    "v_min_mV",
    "ov_mV",
    "ov_release_mV",
    "uv_mV",
    "uv_release_mV",
    "v_abuse_max_mV",
    "v_abuse_min_mV",
    "oc_chg_mA",
    "oc_dsg_mA",
    "sc_mA",
    "i_range_mA",
    "frozen_min_mA",
    "bal_max_dsg_mA",
    "t_chg_min_ddegC",
    "t_chg_max_ddegC",
    "t_dsg_min_ddegC",
    "t_dsg_max_ddegC",
    # the resistance and current-limit tables (docs/internals.md)
    "r0_uohm",
    "r_temp_pct",
    "ccl_temp_ddegC",
    "ccl_temp_mA",
    "dcl_temp_ddegC",
    "dcl_temp_mA",
}

# A cell unlike the preset in every property the configuration is made from.
_OTHER_CELL = """
extends = "sisn-lco-2ah"
[cell]
name = "other"
n_series = 3
facing_area_cm2 = 500.0
[ocv]
soc = [0.0, 0.25, 0.5, 0.75, 1.0]
charge_V = [3.30, 3.65, 3.75, 3.95, 4.15]
discharge_V = [3.00, 3.30, 3.50, 3.75, 3.95]
[limits]
v_max_V = 4.15
v_min_V = 2.80
v_abuse_max_V = 4.22
v_abuse_min_V = 2.60
window_top_mAh_g = 1500.0
charge_temp_min_degC = 5.0
charge_temp_max_degC = 40.0
discharge_temp_min_degC = -10.0
discharge_temp_max_degC = 55.0
cv_cutoff_C = 0.1
max_charge_C = 0.7
max_discharge_C = 1.5
[circuit]
r0_ohm = 0.040
hysteresis_gamma = 20.0
coulombic_efficiency = 0.995
dUdT_V_K = 0.0002
"""


def test_exactly_the_cell_keys_follow_the_cell(tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text(_OTHER_CELL)
    a = build_config(load_cell("sisn-lco-2ah"))
    b = build_config(load_cell(other))
    assert {k for k in a if a[k] != b[k]} == _CELL_KEYS
    defaults = firmware_rules().DEFAULTS
    assert {k for k in a if a[k] != defaults[k]} <= _CELL_KEYS
    assert b["n_cells"] == 3 and b["v_max_mV"] == 4150 and b["ce_ppm"] == 995000
    assert b["ocv_dudt_uV_K"] == 200  # the OCV tables' temperature coefficient


@pytest.mark.parametrize("cell", ["sisn-lco-2ah", str(CELL_20AH)])
def test_dc_resistances_are_what_the_simulated_cell_shows(cell: str) -> None:
    """r_cell_uohm x r_soc_pct (the firmware's resistance over SOC, interpolated as it does)
    against the model's own voltage response to a small 2000 s current step at 25 degC,
    read as (OCV - V) / I: long enough for both RC pairs to settle (their time constants
    stretch to about 220 s near empty), small enough to move the SOC by 0.14 %. Between the
    table's points too: 0.07 and 0.4 are none of them. A 20 Ah cell's few milliohm too: in
    whole milliohm its 5.5 were 6 (9 % high) and its R0 of 2.5 were 2."""
    design = load_cell(cell)
    cfg = build_config(design)
    assert cfg["r0_uohm"] == pytest.approx(design.circuit.r0_ohm * 1e6, rel=1e-3)
    scale = design.capacity_Ah / 2.0  # the 2 Ah cell's current, in C
    for soc0, c_current_A in (
        (0.5007, 0.005),
        (0.9985, -0.005),
        (0.0, -0.005),
        (0.07, -0.005),
        (0.4, 0.005),
    ):
        current_A = c_current_A * scale
        model = PackModel(design, isothermal=True, hysteresis=False, initial_soc=soc0)
        for _ in range(200):
            model.step(current_A, 10.0)
        step_mohm = float((model.ocv_V[0] - model.v_V[0]) / current_A) * 1000
        soc_mid = 10000 * (soc0 + (0.5 * 2000 * current_A / 3600) / (design.capacity_Ah))
        pct = np.interp(soc_mid, cfg["ocv_soc_cpct"], cfg["r_soc_pct"])
        firmware_mohm = cfg["r_cell_uohm"] / 1000 * pct / 100
        assert step_mohm == pytest.approx(firmware_mohm, rel=0.04), soc0


def test_host_uses_the_limits_the_firmware_runs_with(tmp_path: Path) -> None:
    # The host loads the firmware's own rules file; check it against what MicroPython
    # reports from the firmware itself.
    out = run_mpy(
        "from bms import config_rules as r\nimport json\n"
        "print(json.dumps({'limits': r.LIMITS, 'defaults': r.DEFAULTS}))",
        cwd=tmp_path,
    )
    on_chip = json.loads(out)
    rules = firmware_rules()
    assert {k: list(v) for k, v in rules.LIMITS.items()} == on_chip["limits"]
    assert on_chip["defaults"] == rules.DEFAULTS


def test_window_top_above_2200_is_refused_by_host_and_firmware(tmp_path: Path) -> None:
    design = load_cell("sisn-lco-2ah")
    bad = dataclasses.replace(
        design, limits=dataclasses.replace(design.limits, window_top_mAh_g=2300.0)
    )
    with pytest.raises(InputError) as err:
        build_config(bad)
    assert err.value.field == "limits.window_top_mAh_g"
    cfg = build_config(design)
    cfg["window_top_dmAhg"] = 23000
    verdict = _firmware_verdict(tmp_path, cfg)
    assert verdict.startswith("16 window_top_dmAhg:"), verdict


def test_a_resistance_the_firmware_cannot_hold_is_refused_not_rounded() -> None:
    """An R0 below the firmware's 100 uohm is an error naming the key, not a belief 2x off
    (the configuration is the BMS's belief about the cell: a clamp would hide it)."""
    design = load_cell("sisn-lco-2ah")
    tiny = dataclasses.replace(design, circuit=dataclasses.replace(design.circuit, r0_ohm=5e-5))
    with pytest.raises(InputError) as err:
        build_config(tiny)
    assert "r0_uohm: 50 outside the hard limits 100..500000" in str(err.value)


def test_board_sets_timing_and_sensor_count() -> None:
    from host.boards import load_board

    board = load_board("virtual")  # samples every 1000 ms
    cfg = build_config(load_cell("sisn-lco-2ah-4s"), board)
    # docs: a sample interval over 5 s is clamped; the link watchdog opens after 3 s.
    assert cfg["max_dt_ms"] == 5000
    assert cfg["link_timeout_ms"] == 3000
    assert cfg["n_temps"] == 4  # the emulator reports one sensor per cell
    limits = firmware_rules().LIMITS
    for period_ms in (20, 50, 250, 1000, 4000, 10000):  # board files: 10..10000 ms
        cfg = build_config(load_cell(), dataclasses.replace(board, sample_period_ms=period_ms))
        lo, hi = limits["max_dt_ms"]
        # One lost sample is still integrated whole, within what the firmware accepts.
        assert lo <= cfg["max_dt_ms"] <= hi
        assert cfg["max_dt_ms"] >= min(2 * period_ms, hi)
        # One lost sample does not open the switches.
        assert cfg["link_timeout_ms"] >= 2 * period_ms


def test_a_board_that_measures_no_current_turns_the_frozen_current_check_off() -> None:
    """A standalone board without a current sensor reads 0 mA whatever flows: the frozen
    current check (SENSOR_FROZEN) would open its switches whenever the cells moved. The
    virtual board has no sensor either, but the host sends it the current: check on."""
    from host.boards import load_board

    pico = dataclasses.replace(load_board("pico"), mode="standalone")  # it measures itself
    assert pico.current_sensor != "none"
    default = firmware_rules().DEFAULTS["frozen_i_mV"]
    assert build_config(load_cell(), pico).get("frozen_i_mV", default) > 0
    bare = dataclasses.replace(pico, current_sensor="none")
    assert build_config(load_cell(), bare)["frozen_i_mV"] == 0
    virtual = load_board("virtual")
    assert virtual.current_sensor == "none"
    assert build_config(load_cell(), virtual).get("frozen_i_mV", default) > 0


def test_the_bleed_is_counted_where_a_resistor_bleeds() -> None:
    """bal_r_mohm: the board's bleed resistors where something bleeds (the host's emulated
    ones in link mode, the board's switches in standalone mode), 0 where nothing can."""
    from host.boards import load_board

    virtual = load_board("virtual")
    assert build_config(load_cell(), virtual)["bal_r_mohm"] == 33000
    cheap = dataclasses.replace(virtual, bleed_mohm=47000)
    assert build_config(load_cell(), cheap)["bal_r_mohm"] == 47000
    pico = dataclasses.replace(load_board("pico"), mode="standalone")
    assert pico.pins.bleed and build_config(load_cell(), pico)["bal_r_mohm"] == 33000
    no_bleed = dataclasses.replace(pico, pins=dataclasses.replace(pico.pins, bleed=()))
    assert build_config(load_cell(), no_bleed)["bal_r_mohm"] == 0


SMALL_CELL_TOML = """
extends = "sisn-lco-2ah"
[cell]
name = "small"
facing_area_cm2 = 83.25
"""


def test_no_offset_within_its_bound_hides_a_rest(tmp_path: Path) -> None:
    """A rest is a current within rest_current_mA, and the offset is learned only at one
    (or with both switches open): the rest threshold is C/50, but never below the current
    sensor's offset bound, or an offset within it would never be learned."""
    small = tmp_path / "small.toml"
    small.write_text(SMALL_CELL_TOML)
    assert build_config(load_cell())["rest_current_mA"] == 40  # 2 Ah: C/50
    cfg = build_config(load_cell(small))
    assert cfg["capacity_mAh"] == 500 and cfg["rest_current_mA"] >= cfg["i_offset_mA"] > 500 / 50


def test_the_largest_configuration_fits_the_firmware_frame_buffer() -> None:
    """CONFIG replies and CONFIG_WRITE requests carry the whole configuration as JSON.

    Worst case: every key at the limit with the most characters and every table at its
    longest with the widest values, in MicroPython's json.dumps layout (", " and ": ", as
    CPython's). A new configuration key must keep this within the firmware's buffer
    (docs/protocol.md).
    """
    rules = firmware_rules()

    def widest(lo: int, hi: int) -> int:
        return lo if len(str(lo)) > len(str(hi)) else hi

    worst: dict[str, object] = {k: widest(lo, hi) for k, (lo, hi) in rules.LIMITS.items()}
    for (_, longest), *columns in rules._TABLE_GROUPS:
        for key, lo, hi, _order in columns:
            worst[key] = [widest(lo, hi)] * longest
    size = len(json.dumps(worst))
    max_payload = firmware_module("bms.codec").MAX_PAYLOAD
    print(f"largest CONFIG payload {size} B of {max_payload} B")
    assert size <= max_payload


@pytest.mark.parametrize("gamma", [0.0, 5e-324])
def test_a_cell_without_hysteresis_dynamics_gets_the_slowest_branch_switch(gamma: float) -> None:
    """hysteresis_gamma 0 (the cell schema's bottom: the hysteresis state never moves) is a
    valid cell: no charge switches its branch, so the firmware gets its slowest switch, as
    for any gamma too small to reach it; not a ZeroDivisionError (nor an OverflowError)."""
    design = load_cell("sisn-lco-2ah")
    flat = dataclasses.replace(
        design, circuit=dataclasses.replace(design.circuit, hysteresis_gamma=gamma)
    )
    cfg = build_config(flat)
    assert cfg["branch_switch_cpct"] == firmware_rules().LIMITS["branch_switch_cpct"][1]
    assert firmware_rules().validate(cfg) is None


def test_a_refused_configuration_never_prints_an_absurd_integer() -> None:
    """A value derived from an absurd field (tau1_s 1e-300: r_step_uohm_s ~ 1.5e302) is named
    in a readable form, not as 300 digits."""
    design = load_cell("sisn-lco-2ah")
    absurd = dataclasses.replace(design, circuit=dataclasses.replace(design.circuit, tau1_s=1e-300))
    with pytest.raises(InputError) as err:
        build_config(absurd)
    message = str(err.value)
    assert "r_step_uohm_s" in message and "e+30" in message, message
    assert not re.search(r"\d{13}", message), message


def test_every_cell_field_a_firmware_refusal_names_is_a_field_of_both_files() -> None:
    """A refused firmware key is reported under the cell-file field it is made from
    (firmware_config._FIELD_OF_KEY): a key renamed on either side must not leave an error
    naming a field the user cannot find."""
    from cellmodel.cellfile import _SCHEMA
    from host.firmware_config import _FIELD_OF_KEY

    rules = firmware_rules()
    firmware_keys = set(rules.DEFAULTS) | set(rules.LIMITS)
    assert set(_FIELD_OF_KEY) <= firmware_keys
    for key, field in _FIELD_OF_KEY.items():
        section, name = field.split(".")
        assert name in _SCHEMA.get(section, {}), (key, field)

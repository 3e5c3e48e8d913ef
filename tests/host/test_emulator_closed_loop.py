"""The closed loop against the real MicroPython firmware on a virtual board (real pty).

Short scenarios keep the suite fast; each starts a fresh virtual board.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from cellmodel import load_cell
from cellmodel.errors import InputError
from host.emulator import RunResult, run_scenario
from host.emulator.loop import check_scenario
from host.emulator.run import check_run
from host.scenarios import load_scenario
from tests.host.test_firmware_config import SMALL_CELL_TOML


def _toml(v: object) -> str:
    return f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else repr(v)


def scenario_file(tmp_path: Path, name: str, steps: list[str], **top: object) -> Path:
    initial = top.pop("initial", {"soc": 0.5, "branch": "discharge"})
    lines = [f'name = "{name}"', f"seed = {top.pop('seed', 3)}"]
    lines += [f"{k} = {_toml(v)}" for k, v in top.items()]
    lines.append("steps = [" + ", ".join(f'"{s}"' for s in steps) + "]")
    lines.append("[initial]")
    for k, v in initial.items():  # type: ignore[union-attr]
        lines.append(f"{k} = {_toml(v)}")
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# the 1,500 mAh/g window cell: its anode window ends a charge before 4.2 V does
WINDOW_1500 = Path(__file__).parents[2] / "examples/robustness/cells/window-1500.toml"
# cells across the claims' design space (examples/campaign-design-space.toml)
DESIGN_SPACE_CELLS = Path(__file__).parents[2] / "examples/design-space/cells"


def charge_on_the_window(tmp_path: Path, name: str, rest: str, **top: object) -> Path:
    """CC-CV to full on the window cell at 0.5C (2 s samples), then `rest`."""
    steps = ["Charge at 0.5C until 4.2 V", "Hold at 4.2 V until C/20", rest]
    return scenario_file(tmp_path, name, steps, sample_period_s=2.0, cell=str(WINDOW_1500), **top)


def read_rows(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def safe_and_met(result: RunResult) -> dict[str, Any]:
    """The run's summary, once it is known that no limit was passed and every expectation met."""
    s = result.summary
    assert s["violations"] == [], s["violations"]
    assert all(e["passed"] for e in s["expectations"]), s["expectations"]
    return s


async def run(tmp_path: Path, path: Path, **kw: object) -> RunResult:
    return await run_scenario(load_scenario(path), out_dir=tmp_path / "out", **kw)  # type: ignore[arg-type]


async def test_a_load_that_ignores_the_dcl_is_cut_by_uv(tmp_path: Path) -> None:
    # At 2C the IR drop brings the cell to the 2.75 V cut-off before the anode window's
    # bottom (SOC 0); at low rates the window bottom comes first (below). A load that does
    # not keep to the DCL runs on until UV opens DSG.
    path = scenario_file(
        tmp_path,
        "uv",
        ["Discharge at 2C for 30 minutes", "Expect DSG off", "Expect fault UV"],
        sample_period_s=2.0,
        honour_bms_limits=False,
        initial={"soc": 0.12, "branch": "discharge"},
    )
    result = await run(tmp_path, path)
    s = safe_and_met(result)
    rows = read_rows(s["outputs"]["log"])
    v_min = min(float(r["Cell 1 Voltage / V"]) for r in rows)
    limits = load_cell().limits
    assert v_min >= limits.v_min_V - s["tolerances"]["v_under_V"]
    assert rows[-1]["DSG On / 1"] == "0"
    assert result.exit_code == 0


async def test_a_load_that_keeps_to_the_dcl_is_held_at_the_cut_off(tmp_path: Path) -> None:
    """The same 2C load, keeping to the DCL as an inverter does: the DCL tapers it at the
    voltage limit, UV never trips and DSG stays closed until the window bottom ends the
    discharge. The cell stays above UV's threshold (20 mV below v_min, docs/internals.md)."""
    path = scenario_file(
        tmp_path,
        "dcl",
        ["Discharge at 2C for 30 minutes", "Expect DSG off", "Expect fault WIN_BOTTOM"],
        sample_period_s=2.0,
        initial={"soc": 0.12, "branch": "discharge"},
    )
    result = await run(tmp_path, path)
    s = safe_and_met(result)
    assert s["discharge_limited_s"] > 60.0, s["discharge_limited_s"]
    rows = read_rows(s["outputs"]["log"])
    uv_bit = 1 << 1  # docs/protocol.md fault bits
    assert not any(int(r["Faults / 1"]) & uv_bit for r in rows)
    held = [r for r in rows if r["DSG On / 1"] == "1"]
    assert min(float(r["Cell 1 Voltage / V"]) for r in held) >= load_cell().limits.v_min_V - 0.020
    # DSG opened only once the cell was empty (the window bottom is SOC 0)
    first_off = next(r for r in rows if r["DSG On / 1"] == "0")
    assert float(first_off["True SOC / %"]) < 1.0, first_off["True SOC / %"]
    assert result.exit_code == 0


async def test_a_cold_cell_at_twice_the_resistance_keeps_above_the_cut_off_under_pulses(
    tmp_path: Path,
) -> None:
    """2C pulses near empty at -5 degC on a cell at twice the design's resistance, from a
    load that keeps to the DCL. Resistance learning is gated to 10-40 degC, so the DCL's
    voltage term must take the interval resistance at its bound (twice the design's) until
    a step has taught it. With the design's own, the DCL swung between 4 A and 1 A from one
    sample to the next and each 4 A pulse took the cell 175 mV below v_min, past the
    scorer's 150 mV (a probe city drive at -5 degC at b682d10: 12 under-voltage
    violations; here 2.59 V). With the bound, 2.73 V at worst."""
    pulses = ["Discharge at 0.5C for 20 s", "Discharge at 2C for 10 s"] * 6
    path = scenario_file(
        tmp_path,
        "cold-pulses",
        ["Rest for 2 minutes", *pulses],
        sample_period_s=1.0,
        ambient_degC=-5.0,
        initial={"soc": 0.09, "branch": "discharge", "temp_degC": -5.0},
    )
    path.write_text(path.read_text() + "[mismatch]\nresistance_factor = 2.0\n")
    s = safe_and_met(await run(tmp_path, path))
    assert s["discharge_limited_s"] > 10.0, s["discharge_limited_s"]  # the pulses were held
    rows = read_rows(s["outputs"]["log"])
    uv_bit = 1 << 1  # docs/protocol.md fault bits
    # held by the DCL, never cut: DSG stays closed and UV (20 mV below v_min, debounced)
    # never trips, as for a steady load (test_a_load_that_keeps_to_the_dcl_is_held_...)
    assert all(r["DSG On / 1"] == "1" for r in rows)
    assert not any(int(r["Faults / 1"]) & uv_bit for r in rows)


async def test_discharge_cutoff_at_the_anode_window_bottom(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        "bottom",
        ["Discharge at 0.2C for 60 minutes", "Expect DSG off", "Expect fault WIN_BOTTOM"],
        sample_period_s=2.0,
        initial={"soc": 0.08, "branch": "discharge"},
    )
    result = await run(tmp_path, path)
    s = safe_and_met(result)
    rows = read_rows(s["outputs"]["log"])
    # The window bottom is 0 mAh/g: the true anode never goes far below it.
    c_n = load_cell().c_n_mAh_g
    assert min(float(r["True Anode Utilization / mAh/g"]) for r in rows) >= -0.02 * c_n
    assert rows[-1]["DSG On / 1"] == "0"


async def test_charge_cutoff_at_capacity_window(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        "top",
        ["Charge at 0.5C for 40 minutes", "Expect CHG off"],
        sample_period_s=2.0,
        initial={"soc": 0.93, "branch": "charge"},
    )
    result = await run(tmp_path, path)
    s = result.summary
    assert s["violations"] == [], s["violations"]
    rows = read_rows(s["outputs"]["log"])
    top = load_cell().limits.window_top_mAh_g
    util = max(float(r["True Anode Utilization / mAh/g"]) for r in rows)
    assert util <= top * (1 + s["tolerances"]["anode_util_pct"] / 100)
    assert max(float(r["Cell 1 Voltage / V"]) for r in rows) <= 4.2 + s["tolerances"]["v_over_V"]
    assert rows[-1]["CHG On / 1"] == "0"
    assert all(e["passed"] for e in s["expectations"]), s["expectations"]


async def test_a_slow_charge_reaches_full_at_the_voltage_limit(tmp_path: Path) -> None:
    """A C/10 CC-CV charge of the default cell, whose window top is its full point (the
    charge-branch OCV at 4.2 V): the CV phase keeps that top, so the charge runs through CV
    to the taper and the full calibration, and the window top never opens CHG. Before the
    voltage bound was capped at v_max, the table's 20 mV allowance read the top at 4.178 V
    and CHG opened at 97.7 %."""
    path = scenario_file(
        tmp_path,
        "slow",
        [
            "Charge at 0.1C until 4.2 V",
            "Hold at 4.2 V until C/20",
            "Expect CHG on",
            "Expect no fault WIN_TOP",
            "Expect SOC error below 1%",
        ],
        sample_period_s=2.0,
        initial={"soc": 0.9, "branch": "charge"},
    )
    s = safe_and_met(await run(tmp_path, path))
    rows = read_rows(s["outputs"]["log"])
    win_top_bit = 1 << 11  # docs/protocol.md fault bits
    assert not any(int(r["Faults / 1"]) & win_top_bit for r in rows)
    assert max(float(r["Voltage / V"]) for r in rows) >= 4.2 - 0.001  # CV was reached
    # the taper ended it: within C/20 of full (a CV taper to C/20 leaves the cell ~0.5 % short)
    assert float(rows[-1]["True SOC / %"]) >= 99.0, rows[-1]["True SOC / %"]
    top = load_cell().limits.window_top_mAh_g
    util = max(float(r["True Anode Utilization / mAh/g"]) for r in rows)
    assert util <= top * (1 + s["tolerances"]["anode_util_pct"] / 100)


async def test_a_charger_that_ignores_the_ccl_is_not_let_in_again_at_the_window_top(
    tmp_path: Path,
) -> None:
    """A CC-CV charger that ignores the CCL on a cell whose anode window ends before 4.2 V
    (1,500 mAh/g): the window top opens CHG, and a charge current of a few mA at rest (the
    sensor's noise) must not release it on the relaxed voltage. Released 6 s after the stop
    (a probe at ae8c453), the CV hold that followed went into the cell at 4.02 V with 5.9 A
    (3C) and drove the anode to 43 mV: lithium plating."""
    path = charge_on_the_window(
        tmp_path,
        "ignore",
        "Rest for 5 minutes",
        honour_bms_limits=False,
        initial={"soc": 0.75, "branch": "charge"},
    )
    s = safe_and_met(await run(tmp_path, path))
    rows = read_rows(s["outputs"]["log"])
    assert min(float(r["True Anode Potential / V"]) for r in rows) >= 0.050
    assert max(float(r["Current / A"]) for r in rows) <= 1.0  # 0.5C at most: no CV inrush
    win_top_bit = 1 << 11  # docs/protocol.md fault bits
    first = next(i for i, r in enumerate(rows) if int(r["Faults / 1"]) & win_top_bit)
    assert all(r["CHG On / 1"] == "0" for r in rows[first:]), "CHG closed again"


async def test_a_state_restored_on_the_branch_the_cell_left_keeps_the_window_top(
    tmp_path: Path,
) -> None:
    """The BMS last saw the cell at 62 % on its charge branch; while it was off the cell was
    charged and discharged to 80 % on its discharge branch, where it reads 54 % on the
    charge branch: within the boot check's margin, so the state is kept. Taken as still on
    the charge branch, its interval did not reach the truth and the charge that followed
    passed the 1,500 mAh/g window top by 10 % (1,655 mAh/g, 1,694 samples). No fresh state
    reads so: the file is stale, each cell read on the branch it names with its interval
    reaching the other branch's reading, whose fuller end the window top's bound takes."""
    path = charge_on_the_window(
        tmp_path,
        "other-branch",
        "Rest for 10 minutes",
        initial={"soc": 0.8, "branch": "discharge", "firmware_soc": 0.62,
                 "firmware_branch": "charge"},
    )  # fmt: skip
    s = safe_and_met(await run(tmp_path, path))
    assert s["anode_util_margin_pct"] > 0, s["anode_util_max_mAh_g"]
    assert s["uncertainty_coverage_pct"] >= 95.0, s["uncertainty_coverage_pct"]


async def test_an_aged_cell_charged_before_its_resistance_is_learned_does_not_plate(
    tmp_path: Path,
) -> None:
    """An aged cell (80 % capacity, twice the resistance) charged at 1C from 15 %: the
    charge starts below the resistance learner's SOC gate and its current never steps, so
    the firmware never learns the resistance. The anode limit must then take it at its
    bound (twice the design's): with the design's, the CCL held 2 A to 4.2 V and the anode
    reached 45 mV (a probe at c98826e)."""
    path = scenario_file(
        tmp_path,
        "aged-1c",
        ["Rest for 30 minutes", "Charge at 1C until 4.2 V"],
        sample_period_s=2.0,
        initial={"soc": 0.15, "branch": "discharge"},
    )
    path.write_text(
        path.read_text() + "[mismatch]\ncapacity_factor = 0.8\nresistance_factor = 2.0\n"
    )
    s = safe_and_met(await run(tmp_path, path))
    rows = read_rows(s["outputs"]["log"])
    assert min(float(r["True Anode Potential / V"]) for r in rows) >= 0.050
    assert s["charge_limited_s"] > 60.0, s["charge_limited_s"]


@pytest.mark.parametrize("r_factor", [1.0, 2.0])
async def test_a_boot_without_state_charged_below_the_learning_gate_is_read_under_load(
    tmp_path: Path, r_factor: float
) -> None:
    """A boot without a state file at 70 % on the discharge branch, where the branch gap is
    about 44 % of SOC: the boot reads the interval between the branches, its middle 24 %
    low. A 0.2C charge at 8 degC then never teaches the resistance (below the learning
    gate's 10 degC and the C/4 a step needs), so the readings under load take it anywhere
    from half the design's to twice it, read from the middle. Over the charge's last half
    hour the error stays within such a reading's width (measured at de24ae2: 10.1 % at the
    design's R, 5.6 % at twice it); with no reading before a step (to 61a1ac8) it stayed
    24.4 % for both."""
    path = scenario_file(
        tmp_path,
        "cold-noboot",
        ["Rest for 30 minutes", "Charge at 0.2C for 90 minutes", "Rest for 10 minutes"],
        sample_period_s=2.0,
        ambient_degC=8.0,
        initial={"soc": 0.7, "branch": "discharge", "temp_degC": 8.0, "state_file": False},
    )
    path.write_text(path.read_text() + f"[mismatch]\nresistance_factor = {r_factor}\n")
    s = safe_and_met(await run(tmp_path, path))
    rows = read_rows(s["outputs"]["log"])
    first = [abs(float(r["SOC Error / %"])) for r in rows if float(r["Test Time / s"]) < 1800]
    assert min(first) > 20.0  # the boot could not tell the branch
    late = [
        abs(float(r["SOC Error / %"]))
        for r in rows
        if r["Step Count / 1"] == "2" and float(r["Test Time / s"]) >= 1800 + 3600
    ]
    assert late and max(late) < 12.0, max(late)
    assert s["uncertainty_coverage_pct"] >= 95.0


async def test_a_deep_cv_stops_at_the_bms_full_point(tmp_path: Path) -> None:
    """A CC-CV charger that would hold 4.2 V down to C/50, on a cell whose OCV lies 20 mV
    below the design's (so it holds 1.3 % more at 4.2 V): the BMS ends the charge at its own
    full point (C/20), and the anode stays within its window top's tolerance. Held to C/50
    it reached 1,684 mAh/g against 1,667 and the scorer's 1 % (a probe at c98826e)."""
    path = scenario_file(
        tmp_path,
        "deep-cv",
        ["Charge at 0.3C until 4.2 V", "Hold at 4.2 V until C/50", "Rest for 5 minutes"],
        sample_period_s=2.0,
        initial={"soc": 0.8, "branch": "charge"},
    )
    path.write_text(
        path.read_text()
        + "[mismatch]\nocv_offset_mV = -20.0\nhysteresis_rate_factor = 0.5\n"
        + "[sensors]\ncurrent_bias_mA = 20.0\n"
    )
    s = safe_and_met(await run(tmp_path, path))
    rows = read_rows(s["outputs"]["log"])
    top = load_cell().limits.window_top_mAh_g
    util = max(float(r["True Anode Utilization / mAh/g"]) for r in rows)
    assert util <= top * (1 + s["tolerances"]["anode_util_pct"] / 100), util
    assert all(r["CHG On / 1"] == "1" for r in rows)  # ended by the CCL, not the switch


async def test_failed_expectation_gives_exit_code_1(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        "fail",
        ["Rest for 20 s", "Expect CHG on", "Expect DSG off within 4 s", "Rest for 10 s"],
        sample_period_s=1.0,
    )
    result = await run(tmp_path, path)
    exp = result.summary["expectations"]
    assert [e["passed"] for e in exp] == [True, False]
    assert result.exit_code == 1 and not result.summary["passed"]


async def test_sensor_faults_and_corrupted_frames(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        "faults",
        [
            "Inject current offset 20 mA",
            "Set sensor noise 5 mV",
            "Corrupt 10% of frames",
            "Discharge at 0.5C for 60 s",
            "Corrupt 0% of frames",
            "Set ambient 40 degC",
            "Freeze cell 1 voltage",
            "Discharge at 0.5C for 5 minutes",
            "Expect fault SENSOR_FROZEN",
        ],
        sample_period_s=1.0,
    )
    result = await run(tmp_path, path)
    s = result.summary
    assert s["link"]["crc_rejects"] > 0
    assert s["link"]["retries"] > 0
    rows = read_rows(s["outputs"]["log"])
    frozen = [r["Cell 1 Voltage / V"] for r in rows[-100:]]
    assert len(set(frozen)) > 1  # the true voltage keeps moving...
    meas = [  # the log's currents are BDF's, positive on charge
        round(float(r["Current / A"]) * 1000) - round(float(r["Measured Current / mA"]))
        for r in rows
    ]
    assert sum(meas[5:]) / len(meas[5:]) > 10  # ...the 20 mA offset shows in the readings
    assert s["expectations"][0]["passed"], s["expectations"]


async def test_link_drop_trips_the_watchdog(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        "drop",
        [
            "Discharge at 0.5C for 10 s",
            "Drop link for 4 s",
            "Expect fault LINK_LOST within 5 s",
            "Expect DSG off within 5 s",
            "Discharge at 0.5C for 10 s",
            "Expect no fault LINK_LOST",
        ],
        sample_period_s=1.0,
    )
    result = await run(tmp_path, path)
    assert [e["passed"] for e in result.summary["expectations"]] == [True, True, True]
    rows = read_rows(result.summary["outputs"]["log"])
    assert sum(r["Link OK / 1"] == "0" for r in rows) >= 3
    assert result.summary["wall_s"] >= 4.0  # the drop paused real time even in lockstep


async def test_reset_and_power_cut_restart_from_state(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        "power",
        [
            "Discharge at 1C for 3 minutes",
            "Reset board",
            "Discharge at 1C for 1 minute",
            "Cut board power",
            "Discharge at 1C for 1 minute",
            "Expect SOC error below 5%",
            "Expect DSG on",
        ],
        sample_period_s=2.0,
        initial={"soc": 0.8, "branch": "charge"},
    )
    result = await run(tmp_path, path)
    s = result.summary
    assert s["link"]["boots"] >= 2
    assert all(e["passed"] for e in s["expectations"]), s["expectations"]


async def test_power_cuts_under_the_save_step_keep_the_window_top(tmp_path: Path) -> None:
    """The board loses power every 4.6 % of SOC through a charge (the state is saved every
    5 %), on the cell whose anode window ends before 4.2 V: each boot restores a file that
    missed a save step of counting, and says so in its interval, so the window top still
    holds and the reported interval still holds the truth. Before (a probe at cb41a1c)
    every boot came back to the first file: the count ran 37 % behind the truth while
    claiming 4.3 %, covered it in 35 % of the samples, and the anode passed the top
    (1,515 mAh/g against 1,500)."""
    chunks = ["Charge at 0.5C for 5.5 minutes", "Cut power"] * 8
    path = scenario_file(
        tmp_path,
        "cuts",
        ["Rest for 30 minutes", *chunks, "Charge at 0.5C until 4.2 V", "Hold at 4.2 V until C/20"],
        sample_period_s=2.0,
        cell=str(WINDOW_1500),
        initial={"soc": 0.35, "branch": "discharge"},
    )
    s = safe_and_met(await run(tmp_path, path))
    assert s["link"]["boots"] >= 9
    assert s["uncertainty_coverage_pct"] >= 95.0, s["uncertainty_coverage_pct"]


async def test_a_cold_drive_and_a_warming_rest_keep_the_truth_in_the_interval(
    tmp_path: Path,
) -> None:
    """Discharge at -10 degC, the ambient falling to -25 degC (past the discharge limit),
    then a rest as it warms to 3 degC: the cold cell relaxes for many times rest_tau_s and
    the rested reading must allow for the tail to come, the way it goes. Before (a probe
    at efc3562) the reading missed the truth by 2.1 % against 2.0 % and the interval held
    it in 90.5 % of the samples (61 % on a boot without state with the table 20 mV low)."""
    path = scenario_file(
        tmp_path,
        "freeze",
        [
            "Rest for 30 minutes",
            "Discharge at 1C for 10 minutes",
            "Set ambient to -25 degC",
            "Discharge at 0.5C for 60 minutes",
            "Set ambient to 3 degC",
            "Rest for 60 minutes",
        ],
        sample_period_s=2.0,
        seed=72,  # the probe's sensor draws
        ambient_degC=-10.0,
        initial={"soc": 0.6, "branch": "discharge", "temp_degC": -10.0},
    )
    s = safe_and_met(await run(tmp_path, path))
    assert s["uncertainty_coverage_pct"] >= 95.0, s["uncertainty_coverage_pct"]


def test_power_cut_needs_a_virtual_board(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "cut", ["Rest for 1 s", "Cut board power"])
    with pytest.raises(InputError) as info:
        check_scenario(load_scenario(path), load_cell(), can_cut_power=False)
    assert info.value.field == "steps[1]"
    assert "virtual board" in info.value.reason


def test_a_runs_check_allows_a_power_cut_on_the_boards_it_runs_itself(tmp_path: Path) -> None:
    """check_run (emulate's and every campaign run's check before anything starts) asks the
    board's kind: a virtual or QEMU board this host runs can have its power cut, a board at
    a serial port cannot, and that is refused before the port is opened."""
    scenario = load_scenario(scenario_file(tmp_path, "cut", ["Rest for 1 s", "Cut board power"]))
    check_run(scenario)
    check_run(scenario, target="qemu-cortex-m0")
    with pytest.raises(InputError) as info:
        check_run(scenario, port=str(tmp_path / "no-such-port"))
    assert info.value.field == "steps[1]" and "virtual board" in info.value.reason


def test_freeze_of_missing_cell_is_bad_input(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "frz", ["Freeze cell 3 voltage", "Rest for 1 s"])
    with pytest.raises(InputError, match="steps\\[0\\]"):
        check_scenario(load_scenario(path), load_cell(), can_cut_power=True)


def test_missing_profile_is_bad_input(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "prof", ["Run nowhere.csv"])
    with pytest.raises(InputError) as info:
        check_scenario(load_scenario(path), load_cell(), can_cut_power=True)
    assert info.value.source == str(path) and info.value.field == "steps[0]"


def spread_4s_charge(tmp_path: Path, name: str, rest: str) -> Path:
    """A 4S pack with 3 % SOC spread at 80 % on the charge branch, charged at 0.5C through CV
    to C/20, then `rest`: its high cells bleed at the top."""
    cell = tmp_path / "spread-4s.toml"
    cell.write_text(
        'extends = "sisn-lco-2ah-4s"\n[cell]\nname = "spread-4s"\n[pack]\nsoc_spread = 0.03\n'
    )
    steps = ["Rest for 2 minutes", "Charge at 0.5C until 4.2 V", "Hold at 4.2 V until C/20", rest]
    initial = {"soc": 0.8, "branch": "charge"}
    return scenario_file(
        tmp_path, name, steps, cell=str(cell), sample_period_s=5.0, initial=initial
    )


async def test_pack_balancing_bleed_narrows_the_spread(tmp_path: Path) -> None:
    """4S pack with cell-to-cell spread: the firmware sees every cell, bleeds the high ones."""
    path = spread_4s_charge(tmp_path, "balance", "Rest for 2 hours")
    result = await run(tmp_path, path)
    s = result.summary
    assert s["n_cells"] == 4 and s["violations"] == [], s["violations"]
    rows = read_rows(s["outputs"]["log"])
    bits = {int(r["Balancing / 1"]) for r in rows}
    assert bits - {0}, "the firmware never asked for a bleed"

    def spread_mV(row: dict[str, str]) -> float:
        volts = [float(row[f"Cell {i} Voltage / V"]) for i in range(1, 5)]
        return (max(volts) - min(volts)) * 1000

    # At rest on the same (charge) branch before the charge and two hours after it:
    # the bleed took the spread down towards the firmware's threshold.
    before = max(i for i, r in enumerate(rows) if r["Step Count / 1"] == "1")
    assert spread_mV(rows[before]) > 30
    assert spread_mV(rows[-1]) < 0.6 * spread_mV(rows[before])


async def test_a_charge_with_the_high_cells_bled_keeps_each_cells_soc(tmp_path: Path) -> None:
    """The bleed draws its charge past the current sensor; the firmware counts it off each
    bled cell (V / R, bal_r_mohm), and a cell the bleed discharged is read at rest between
    the branches (on silicon it has left the charge branch). A 4S pack with spread charged
    through CV, then a rest with a reading while a cell bleeds: uncounted, the bled cells
    were believed 2.1-2.4 % fuller than they were at the end of the CV; counted but read on
    the charge branch, the cell bleeding at the rest's reading 2.5 % emptier."""
    path = spread_4s_charge(tmp_path, "bled", "Rest for 30 minutes")
    result = await run(tmp_path, path)
    s = safe_and_met(result)
    rows = read_rows(s["outputs"]["log"])
    assert sum(int(r["Balancing / 1"]) != 0 for r in rows) * 5 > 1200  # 20 minutes of bleed
    assert result.outcome is not None
    true_pct = 100.0 * result.outcome.log.cells("soc")[-1]
    bms_pct = s["firmware"]["final_state"]["cell_soc_pct"]
    errors = [b - t for t, b in zip(true_pct, bms_pct, strict=True)]
    assert max(abs(e) for e in errors) < 1.0, errors


async def test_a_pack_bled_at_rest_near_empty_keeps_its_cells_inside_their_intervals(
    tmp_path: Path,
) -> None:
    """2C pulses on a 4S pack at 0 degC to the cut-off, then a rest in which the fuller
    cells bleed (the cells spread apart near empty): the bleed current drops over each bled
    cell's resistance, cold and near empty many times the design's mid-SOC value, so the
    rested reading must take it out as it does the series current's. Read at the terminal
    voltage, with the table 20 mV low, the rest read the pack 0.59 +- 1.34 % against a true
    2.18 %: the interval held the truth in 72 % of the samples."""
    probe = Path(__file__).parents[2] / "examples" / "probes" / "pack-pulses-freezing.toml"
    path = tmp_path / "bled-near-empty.toml"
    path.write_text(probe.read_text() + "\n[mismatch]\nocv_offset_mV = -20.0\n")
    result = await run(tmp_path, path)
    s = safe_and_met(result)
    rows = read_rows(s["outputs"]["log"])
    end = max(i for i, r in enumerate(rows) if float(r["Current / A"]) != 0.0)
    assert sum(int(r["Balancing / 1"]) != 0 for r in rows[end:]) >= 600, "no bleed at rest"
    assert s["uncertainty_coverage_pct"] >= 95.0, s["uncertainty_coverage_pct"]
    assert s["soc_max_error_after_calibration_pct"] < 3.0


async def test_realtime_mode_paces_samples_to_the_wall_clock(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path, "rt", ["Rest for 4 seconds", "Expect no faults"], sample_period_s=1.0
    )
    result = await run(tmp_path, path, realtime=True)
    s = result.summary
    assert s["mode"] == "realtime" and s["passed"]
    # Cannot run ahead of the wall clock (a lower bound: robust on a loaded machine).
    assert s["wall_s"] >= 0.9 * s["sim_time_s"] >= 3.5


async def test_broken_sensors_are_flagged_and_open_the_switches(tmp_path: Path) -> None:
    """An open cell tap and an open thermistor read rails: the firmware sees a sensor fault,
    opens both switches, and the cycler's load stops; repaired, the pack comes back."""
    path = scenario_file(
        tmp_path,
        "broken",
        [
            "Discharge at 0.2C for 1 minute",
            "Open cell 1 tap",
            "Discharge at 0.2C for 30 seconds",
            "Expect fault SENSOR_RANGE within 5 s",
            "Expect DSG off",
            "Repair sensors",
            "Open thermistor 1",
            "Rest for 30 seconds",
            "Expect fault SENSOR_RANGE within 5 s",
            "Expect CHG off",
            "Repair sensors",
            "Rest for 30 seconds",
            "Expect no fault SENSOR_RANGE within 10 s",
        ],
        sample_period_s=1.0,
    )
    result = await run(tmp_path, path)
    safe_and_met(result)


async def test_a_current_sensor_stuck_under_a_charger_stops_the_charge(tmp_path: Path) -> None:
    """The current sensor sticks at 0 mA while a charger goes on: the count stops, and on a
    cell whose anode window ends before 4.2 V nothing but the firmware stops the charge.
    The cells' rising voltage convicts the frozen reading (SENSOR_FROZEN), both switches
    open before the anode passes its window, and the SOC's reported uncertainty still
    covers the truth. Repaired, the reading moves again and the fault releases. Before the
    check (443055f) this charge ran on past the window's top (1,515 mAh/g at 2,108 s, the
    scorer's tolerance). A discharge asked for at once after the repair waits out the
    release delay: the scorer counts that wait as the fault's, not as discharge blocked
    without a reason (it counted 4 s before the sensors said they were broken)."""
    path = scenario_file(
        tmp_path,
        "stuck-current",
        [
            "Rest for 10 minutes",
            "Charge at 0.5C for 5 minutes",
            "Stick current sensor at 0 mA",
            "Charge at 0.5C until 4.2 V",
            "Expect fault SENSOR_FROZEN",
            "Expect CHG off",
            "Expect DSG off",
            "Repair sensors",
            "Discharge at 0.5C for 1 minute",
            "Expect no fault SENSOR_FROZEN within 10 s",
        ],
        sample_period_s=2.0,
        cell=str(WINDOW_1500),
        initial={"soc": 0.7, "branch": "discharge"},
    )
    s = safe_and_met(await run(tmp_path, path))
    assert s["uncertainty_coverage_pct"] >= 95.0, s["uncertainty_coverage_pct"]
    rows = read_rows(s["outputs"]["log"])
    top = max(float(r["True Anode Utilization / mAh/g"]) for r in rows)
    assert top <= 1500.0, top
    last = rows[-30:]  # the minute's discharge
    assert any(r["DSG On / 1"] == "0" for r in last) and last[-1]["DSG On / 1"] == "1"
    assert s["discharge_blocked_s"] == 0.0, s["discharge_blocked_s"]


async def test_truth_and_belief_reach_the_summary_and_the_board(tmp_path: Path) -> None:
    """The firmware's configuration comes from the nominal design while the cell is perturbed;
    the summary says which is which and scores the whole run."""
    path = scenario_file(
        tmp_path,
        "mismatch",
        ["Discharge at 0.5C for 10 minutes", "Expect SOC error below 5% throughout"],
        sample_period_s=2.0,
        cell="sisn-lco-2ah-aged",
        initial={"soc": 0.7, "branch": "discharge", "state_file": False},
    )
    path.write_text(path.read_text() + "[mismatch]\nhysteresis_rate_factor = 0.5\n")
    result = await run(tmp_path, path)
    s = result.summary
    assert s["cell"] == "sisn-lco-2ah-aged+mismatch" and s["bms_cell"] == "sisn-lco-2ah-aged"
    assert s["mismatch"]["hysteresis_rate_factor"] == 0.5
    flashed = (tmp_path / "out" / "flash" / "bms_config.json").read_text()
    from cellmodel.design import nominal
    from host.boards import load_board
    from host.firmware_config import build_config

    # the virtual board flashed for the scenario's sample period
    board = dataclasses.replace(load_board("virtual"), sample_period_ms=2000)
    expected = build_config(nominal(load_cell("sisn-lco-2ah-aged")), board)
    assert json.loads(flashed) == expected
    assert not (tmp_path / "out" / "flash" / "bms_state.json.tmp").exists()
    for key in ("uncertainty_coverage_pct", "soc_max_error_pct", "soc_max_error_t_s"):
        assert s[key] is not None, key


async def test_a_state_a_little_stale_behind_a_table_offset_stays_covered(tmp_path: Path) -> None:
    """Issue 9: the pack was charged by 6 % while the BMS was off, and the OCV table is 20 mV
    low, so the boot reading agrees with the stale state and the boot check keeps it. The
    firmware must not claim the restored 0.5 %: its reported uncertainty covers the true
    error in at least 95 % of the samples over the whole run (two calibrations and the
    capacity learned between them), with no safety limit passed. Taken at its word, the
    state held the truth in 83 % of the samples here, and learned a capacity 7 % low."""
    path = scenario_file(
        tmp_path,
        "stale-near",
        [
            "Rest for 30 minutes",
            "Charge at 0.5C until 4.2 V",
            "Hold at 4.2 V until C/20",
            "Rest for 30 minutes",
            "Discharge at 0.5C until 2.75 V",
        ],
        sample_period_s=2.0,
        initial={"soc": 0.5, "branch": "discharge", "firmware_soc_error": -0.06},
    )
    path.write_text(path.read_text() + "[mismatch]\nocv_offset_mV = -20.0\n")
    s = (await run(tmp_path, path)).summary
    assert s["violations"] == [], s["violations"]
    assert s["completed"], s["events"]
    assert s["uncertainty_coverage_pct"] >= 95.0, s["uncertainty_coverage_pct"]


async def test_a_board_the_run_provisions_counts_at_the_scenarios_sample_period(
    tmp_path: Path,
) -> None:
    # A board samples as it was flashed to (its timing keys follow its board file's
    # sample_period_ms); the virtual board a run provisions is flashed for the scenario's
    # period. Provisioned for 1 s instead, a sample every 8 s was a gap each time: 3 s of
    # every 8 went uncounted and the SOC's interval widened to the whole window.
    path = scenario_file(
        tmp_path,
        "slow-samples",
        [
            "Rest for 2 minutes",
            "Discharge at 0.5C for 30 minutes",
            "Rest for 2 minutes",
            "Expect SOC error below 2% throughout",
        ],
        sample_period_s=8.0,
        initial={"soc": 0.8, "branch": "discharge"},
    )
    s = safe_and_met(await run(tmp_path, path))
    state = s["firmware"]["final_state"]
    assert "TIME_GAP" not in state["flag_names"], state
    config = json.loads((tmp_path / "out" / "flash" / "bms_config.json").read_text())
    assert config["max_dt_ms"] >= 8000 and config["link_timeout_ms"] > 8000, config


async def test_a_16_series_pack_of_large_cells_charges_to_full_and_learns_its_capacity(
    tmp_path: Path,
) -> None:
    # Sixteen 20 Ah cells with a spread, at twice the design's resistance, after a boot
    # without state: two full cycles. The anode limit took the RC pairs as settled at the
    # present current, so with R_dc well above R_int its CCL swung between full and 0
    # through the charge (196 samples at 0); the CV hold began at a 0 and ended at once
    # (its "C/20" judged on the held-back current), the pack never reached full, and the
    # weakest cell never learned its capacity: 3.07 % off after two cycles.
    (tmp_path / "cells16.toml").write_text(
        """extends = "sisn-lco-2ah"
[cell]
name = "pack16"
facing_area_cm2 = 3330.0
n_series = 16
[circuit]
r0_ohm = 0.0025
r1_ohm = 0.0015
r2_ohm = 0.0015
thermal_mass_J_K = 400.0
h_W_K = 0.19
[pack]
capacity_spread = 0.03
resistance_spread = 0.1
soc_spread = 0.03
seed = 7
"""
    )
    cycle = ["Charge at 0.5C until 4.2 V", "Hold at 4.2 V until C/20", "Rest for 30 minutes"]
    cycle += ["Discharge at 0.5C until 2.75 V", "Rest for 30 minutes"]
    path = scenario_file(
        tmp_path,
        "pack16",
        ["Rest for 30 minutes", *cycle, *cycle, "Expect capacity error below 3%"],
        sample_period_s=2.0,
        cell="cells16.toml",
        initial={"soc": 0.5, "branch": "discharge", "state_file": False},
    )
    with path.open("a") as fh:
        fh.write("[mismatch]\nresistance_factor = 2.0\n")
    result = await run(tmp_path, path)
    s = safe_and_met(result)
    assert s["n_cells"] == 16 and abs(s["capacity_error_pct"]) < 3.0, s["capacity_error_pct"]
    rows = read_rows(s["outputs"]["log"])
    # a charger that keeps to the CCL is held at 0 only where the BMS's full point ends
    # each hold (until it gives up: 5 s, 3 samples)
    held = [
        r for r in rows
        if float(r["Demanded Current / A"]) > 0 and float(r["Current / A"]) == 0.0
    ]  # fmt: skip
    assert len(held) <= 6, [r["Test Time / s"] for r in held]


@pytest.mark.parametrize("rate_factor", [0.5, 1.0, 2.0])
async def test_a_drive_with_regenerative_braking_is_read_off_its_branch(
    tmp_path: Path, rate_factor: float
) -> None:
    # Every regenerative pulse of a city drive pulls a discharging cell's OCV towards the
    # charge branch and the discharge between pulses lets it back: at 40 degC (no CCL to
    # cut the pulses) the cell sits about a quarter of the branch gap off its discharge
    # branch. A boot without state leaves nothing but the rest after the drive to read the
    # SOC from. Read on the branch (+- an allowance that summed every pulse), it came
    # 4.1 % high at the cell's own hysteresis rate, 3.6 % and 5.3 % at half and twice it;
    # read at the residual the firmware tracks, 0.1, 1.1 and 2.1 %.
    drive = Path(__file__).parents[2] / "examples" / "robustness" / "city-drive.csv"
    (tmp_path / "city-drive.csv").write_bytes(drive.read_bytes())
    path = tmp_path / "regen.toml"
    path.write_text(
        f"""name = "regen"
seed = 41
sample_period_s = 1.0
ambient_degC = 40.0
steps = [
    "Rest for 30 minutes",
    "Run city-drive.csv",
    "Run city-drive.csv",
    "Rest for 30 minutes",
    "Expect SOC error below 3% after the first rest",
]

[initial]
soc = 0.95
branch = "charge"
temp_degC = 40.0
state_file = false

[mismatch]
hysteresis_rate_factor = {rate_factor}
"""
    )
    s = safe_and_met(await run(tmp_path, path))
    assert s["uncertainty_coverage_pct"] >= 95.0, s["uncertainty_coverage_pct"]


@pytest.mark.parametrize("offset_mA", [-20.0, 20.0])
async def test_a_small_cells_current_offset_is_learned_at_rest(
    tmp_path: Path, offset_mA: float
) -> None:
    # A 0.5 Ah cell's C/50 is 10 mA: with rests read as currents within it, a 20 mA offset
    # (within the sensor's bound, 30 mA) hid every rest, the offset was never learned and
    # counted C/25 into the SOC for good (partial cycles: 13.7-21.3 % of SOC off). The rest
    # threshold is never below the offset bound (host/firmware_config.py).
    (tmp_path / "small.toml").write_text(SMALL_CELL_TOML)
    path = scenario_file(
        tmp_path,
        "small-offset",
        [
            "Rest for 30 minutes",
            "Discharge at 0.2C for 2 hours",
            "Charge at 0.2C for 1 hour",
            "Rest for 30 minutes",
            "Expect SOC error below 3% after the first rest",
        ],
        cell="small.toml",
        sample_period_s=2.0,
        initial={"soc": 0.7, "branch": "discharge"},
    )
    path.write_text(path.read_text() + f"[sensors]\ncurrent_bias_mA = {offset_mA}\n")
    s = safe_and_met(await run(tmp_path, path))
    # learned: the offset and the sensor's other errors (noise, a resolution of its own)
    assert s["firmware"]["final_state"]["current_offset_mA"] == pytest.approx(offset_mA, abs=3.0)


async def test_a_small_cells_cv_tail_is_not_taken_for_the_offset(tmp_path: Path) -> None:
    # A 0.2 Ah cell's rest current is the offset bound (30 mA), above its charger's CV tail
    # (C/20, 10 mA): the tail read as a rest, was learned as the offset, and counted as a
    # discharge through the rest and the discharge after (10.9 % of SOC off, capacity
    # learned 6.6 % high). Held at the voltage limit, a charge is a CV tail (offset.py).
    path = scenario_file(
        tmp_path,
        "small-cv-tail",
        [
            "Rest for 30 minutes",
            "Charge at 0.5C until 4.2 V",
            "Hold at 4.2 V until C/20",
            "Rest for 30 minutes",
            "Discharge at 0.5C until 2.75 V",
            "Rest for 30 minutes",
            "Expect SOC error below 3% after the first rest",
        ],
        cell=str(DESIGN_SPACE_CELLS / "cell-0ah2.toml"),
        sample_period_s=2.0,
    )
    s = safe_and_met(await run(tmp_path, path))
    assert s["uncertainty_coverage_pct"] >= 95.0, s["uncertainty_coverage_pct"]
    assert s["capacity_true_Ah"] == pytest.approx(0.2, abs=0.001)


@pytest.mark.parametrize("load", ["Discharge at 15 mA", "Charge at 15 mA"])
async def test_a_load_below_the_rest_threshold_is_not_taken_for_the_offset(
    tmp_path: Path, load: str
) -> None:
    # A key-off drain or a trickle charge of 15 mA reads as a rest (C/50 is 40 mA) and lies
    # within the offset's bound (30 mA): a minute of it was learned as the sensor's offset,
    # and over 16 h a drain left the SOC 11 % high against a reported 6 % (54 % coverage)
    # and the capacity learned across it 9 % low. The cells' voltage moving on after the
    # rest's reading withdraws the offset (core.py): the requirements hold.
    path = scenario_file(
        tmp_path,
        "hidden-load",
        [
            "Rest for 30 minutes",
            "Charge at 0.5C until 4.2 V",
            "Hold at 4.2 V until C/20",
            "Rest for 30 minutes",
            "Discharge at 0.5C for 1 hour",
            "Rest for 30 minutes",
            f"{load} for 8 hours",
            "Discharge at 0.5C until 2.75 V",
            "Rest for 30 minutes",
            "Expect SOC error below 3% after the first rest",
            "Expect capacity error below 3%",
        ],
        sample_period_s=2.0,
    )
    s = safe_and_met(await run(tmp_path, path))
    assert s["uncertainty_coverage_pct"] >= 95.0
    assert s["capacity_learned_count"] >= 1  # learned across the load
    assert s["firmware"]["final_state"]["current_offset_mA"] == pytest.approx(0.0, abs=6.0)

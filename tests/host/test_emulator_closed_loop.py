"""The closed loop against the real MicroPython firmware on a virtual board (real pty).

Short scenarios keep the suite fast; each starts a fresh virtual board.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cellmodel import load_cell
from cellmodel.errors import InputError
from host.emulator import RunResult, run_scenario
from host.emulator.loop import ClosedLoop
from host.scenarios import load_scenario


def scenario_file(tmp_path: Path, name: str, steps: list[str], **top: object) -> Path:
    initial = top.pop("initial", {"soc": 0.5, "branch": "discharge"})
    lines = [f'name = "{name}"', "seed = 3"]
    lines += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in top.items()]
    lines.append("steps = [" + ", ".join(f'"{s}"' for s in steps) + "]")
    lines.append("[initial]")
    for k, v in initial.items():  # type: ignore[union-attr]
        val = f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else v
        lines.append(f"{k} = {val}")
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def read_rows(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


async def run(tmp_path: Path, path: Path, **kw: object) -> RunResult:
    return await run_scenario(load_scenario(path), out_dir=tmp_path / "out", **kw)  # type: ignore[arg-type]


async def test_discharge_cutoff_at_voltage_limit(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        "uv",
        ["Discharge at 1C for 30 minutes", "Expect DSG off", "Expect fault UV"],
        sample_period_s=2.0,
        initial={"soc": 0.12, "branch": "discharge"},
    )
    result = await run(tmp_path, path)
    s = result.summary
    assert s["violations"] == [], s["violations"]
    assert all(e["passed"] for e in s["expectations"]), s["expectations"]
    rows = read_rows(s["outputs"]["log"])
    v_min = min(float(r["Cell 1 Voltage / V"]) for r in rows)
    limits = load_cell().limits
    assert v_min >= limits.v_min_V - s["tolerances"]["v_under_V"]
    assert rows[-1]["DSG On"] == "0"
    assert result.exit_code == 0


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
    assert rows[-1]["CHG On"] == "0"
    assert all(e["passed"] for e in s["expectations"]), s["expectations"]


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
    meas = [int(r["Measured Current / mA"]) - round(float(r["Current / A"]) * 1000) for r in rows]
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
    assert sum(r["Link OK"] == "0" for r in rows) >= 3
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


def test_power_cut_needs_a_virtual_board(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "cut", ["Rest for 1 s", "Cut board power"])
    with pytest.raises(InputError) as info:
        ClosedLoop(load_scenario(path), load_cell(), client=None, power=None)
    assert info.value.field == "steps[1]"
    assert "virtual board" in info.value.reason


def test_freeze_of_missing_cell_is_bad_input(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "frz", ["Freeze cell 3 voltage", "Rest for 1 s"])
    with pytest.raises(InputError, match="steps\\[0\\]"):
        ClosedLoop(load_scenario(path), load_cell(), client=None, power=None)


def test_missing_profile_is_bad_input(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "prof", ["Run nowhere.csv"])
    with pytest.raises(InputError) as info:
        ClosedLoop(load_scenario(path), load_cell(), client=None, power=None)
    assert info.value.source == str(path) and info.value.field == "steps[0]"

"""Experiment step parsing, its errors, and the step controller/runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cellmodel import CellDesign, InputError, PackModel, load_cell
from cellmodel.experiment import StepController, parse_experiment, parse_step
from cellmodel.simulation import run_experiment


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        (
            "Discharge at 1C until 2.75 V",
            dict(kind="discharge", drive=1.0, drive_unit="C", voltage_cutoff_V=2.75),
        ),
        (
            "Discharge at 2 A for 10 minutes or until 3.0 V",
            dict(drive=2.0, drive_unit="A", duration_s=600.0, voltage_cutoff_V=3.0),
        ),
        ("Charge at 0.5C until 4.2 V", dict(kind="charge", drive=0.5, voltage_cutoff_V=4.2)),
        (
            "Charge at C/2 until 4200 mV (10 second period)",
            dict(drive=0.5, drive_unit="C", voltage_cutoff_V=4.2, period_s=10.0),
        ),
        (
            "Hold at 4.2 V until C/20",
            dict(
                kind="hold", drive=4.2, drive_unit="V", current_cutoff=0.05, current_cutoff_unit="C"
            ),
        ),
        (
            "Hold at 4.2 V until 50 mA or for 2 hours",
            dict(current_cutoff=0.05, current_cutoff_unit="A", duration_s=7200.0),
        ),
        ("Rest for 30 minutes", dict(kind="rest", duration_s=1800.0)),
        ("rest for 1 hour (1 second period)", dict(kind="rest", duration_s=3600.0, period_s=1.0)),
        ("Discharge at 500 mA for 90 s", dict(drive=0.5, drive_unit="A", duration_s=90.0)),
        ("Discharge at 5 W for 1 hour", dict(drive=5.0, drive_unit="W")),
        ("Run PROFILE.csv", dict(kind="run", profile_path="PROFILE.csv")),
    ],
)
def test_parse_good_steps(text: str, expect: dict) -> None:
    step = parse_step(text)
    assert step.text == text
    for key, value in expect.items():
        got = getattr(step, key)
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, key


def test_charge_current_is_negative() -> None:
    assert parse_step("Charge at 1C until 4.2 V").current_A(2.0) == -2.0
    assert parse_step("Discharge at C/2 until 3 V").current_A(2.0) == 1.0


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("Discharge at 1X until 2.75 V", 14, "current or power"),
        ("Dance at 1C until 3 V", 1, "Discharge, Charge, Hold, Rest or Run"),
        ("Charge at 1C", 13, "needs an end"),
        ("Rest until 3 V", 6, "Rest step ends by time only"),
        ("Hold at 4.2 V until 3 V", 21, "ends on current or time"),
        ("Discharge at 1C until C/20", 23, "Hold steps only"),
        ("Discharge at 1C for 10 fortnights", 21, "duration"),
        ("Discharge at 1C until 2.75 V and then", 30, "'or'"),
        ("Charge at C/0 until 4.2 V", 13, "zero"),
        ("Rest for 10 minutes (1 fortnight period)", 21, "period"),
    ],
)
def test_bad_steps_point_at_the_text(text: str, column: int, words: str) -> None:
    with pytest.raises(InputError) as info:
        parse_step(text, source="--experiment", field="step 3")
    err = info.value
    assert err.source == "--experiment" and err.field == "step 3"
    assert words in err.reason
    assert f"column {column}" in err.reason
    lines = err.reason.splitlines()
    assert lines[1].strip() == text
    assert lines[2].index("^") - lines[1].index(text[0]) == column - 1


def test_parse_experiment_numbers_steps() -> None:
    steps = parse_experiment(["Rest for 1 s", "Charge at 1C until 4.2 V"])
    assert [s.kind for s in steps] == ["rest", "charge"]
    with pytest.raises(InputError) as info:
        parse_experiment(["Rest for 1 s", "Charge at 1C"])
    assert info.value.field == "step 2"
    with pytest.raises(InputError):
        parse_experiment([])


def test_cccv_discharge_cycle(default_design: CellDesign) -> None:
    model = PackModel(default_design, initial_soc=1.0)
    steps = parse_experiment(
        [
            "Discharge at 1C until 2.75 V",
            "Rest for 30 minutes",
            "Charge at 0.5C until 4.2 V",
            "Hold at 4.2 V until C/20",
        ]
    )
    res = run_experiment(model, steps)
    q = default_design.capacity_Ah
    assert res.discharged_Ah[-1] == pytest.approx(q, rel=0.05)
    assert res.v_V.min() >= 2.75 - 0.01
    hold = res.step_index == 3
    assert np.allclose(res.v_V[hold, 0], 4.2, atol=1e-6)
    assert res.current_A[hold][-1] > -0.05 * q - 1e-9
    assert "current fell" in res.step_reasons[3]
    assert res.soc[-1, 0] > 0.95
    assert res.t_s[0] == 0 and np.all(np.diff(res.t_s) > 0)


def test_duration_and_period(default_design: CellDesign) -> None:
    model = PackModel(default_design, initial_soc=0.8)
    res = run_experiment(model, parse_experiment(["Discharge at 2 A for 95 s (10 second period)"]))
    assert res.t_s[-1] == pytest.approx(95.0)
    assert list(np.diff(res.t_s)) == [10.0] * 9 + [5.0]
    assert res.discharged_Ah[-1] == pytest.approx(2.0 * 95 / 3600)


def test_power_step_delivers_power(default_design: CellDesign) -> None:
    model = PackModel(default_design, initial_soc=0.8)
    res = run_experiment(model, parse_experiment(["Discharge at 5 W for 10 minutes"]))
    power = res.current_A[1:] * res.pack_v_V[:-1]
    assert np.allclose(power, 5.0, rtol=1e-9)


def test_run_step_uses_profile(tmp_path: Path, default_design: CellDesign) -> None:
    (tmp_path / "p.csv").write_text("time_s,current_A\n0,1.0\n10,-1.0\n25,0\n")
    model = PackModel(default_design, initial_soc=0.5)
    res = run_experiment(model, parse_experiment(["Run p.csv"]), base_dir=tmp_path)
    assert list(res.t_s) == [0.0, 10.0, 25.0]
    assert list(res.current_A) == [0.0, 1.0, -1.0]


def test_controller_for_an_outside_loop() -> None:
    design = load_cell("sisn-lco-2ah-4s")
    model = PackModel(design, initial_soc=0.5)
    ctl = StepController(parse_step("Charge at 1C until 4.0 V"), design.capacity_Ah)
    n = 0
    while True:
        dt = ctl.next_dt_s()
        i = ctl.demand_current_A(model, dt)
        res = model.step(i, dt)
        ctl.advance(dt)
        n += 1
        if ctl.finished(res.v_V, i):
            break
    assert res.v_V.max() >= 4.0 and ctl.reason == "voltage reached 4 V"
    assert ctl.elapsed_s == n


def test_until_only_step_has_a_time_limit(default_design: CellDesign) -> None:
    model = PackModel(default_design, initial_soc=0.5)
    res = run_experiment(model, parse_experiment(["Discharge at 0 A until 2.0 V (60 s period)"]))
    assert "time limit" in res.step_reasons[0]

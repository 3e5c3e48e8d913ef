"""Experiment step parsing, its errors, and the step controller/runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cellmodel import CellDesign, InputError, PackModel, experiment, load_cell
from cellmodel.errors import StepError
from cellmodel.experiment import (
    MAX_STEP_PERIODS,
    CycleStep,
    StepController,
    Termination,
    expand_cycles,
    parse_experiment,
    parse_step,
    parse_termination,
)
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
        ("Run PROFILE.csv", dict(kind="run", profile_path="PROFILE.csv", profile_kind="A")),
        # PyBaMM's forms
        ("Discharge at 1 Ohm until 3 V", dict(drive=1.0, drive_unit="Ohm", voltage_cutoff_V=3.0)),
        ("Discharge at 500 mOhm for 1 h", dict(drive=0.5, drive_unit="Ohm")),
        (
            "Discharge at 1C for 1 hour at 25oC",
            dict(drive=1.0, duration_s=3600.0, ambient_degC=25.0),
        ),
        (
            "Charge at 200 mA for 45 minutes at -5.5oC (1 minute period)",
            dict(drive=0.2, ambient_degC=-5.5, period_s=60.0),
        ),
        ("Rest for 1 h at 273.15 K", dict(ambient_degC=0.0)),
        ("Discharge at C/3 for 2 hours or until 2.5 V at 26oC", dict(ambient_degC=26.0)),
        ("Run US06 (A)", dict(profile_path="US06", profile_kind="A")),
        ("Run US06 (V) for 45 minutes", dict(profile_kind="V", duration_s=2700.0)),
        ("Run US06 (W) at -5oC (2 second period)", dict(profile_kind="W", period_s=2.0)),
        ("Run 'my cycle.csv' (A)", dict(profile_path="my cycle.csv")),
        ("Rest for 2 days", dict(duration_s=172800.0)),
        ("Rest for 10 m", dict(duration_s=600.0)),
        # numbers as Python and TOML write them
        ("Discharge at 2.5e-3 A for 1E2 s", dict(drive=0.0025, duration_s=100.0)),
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
        ("Discharge at 1X until 2.75 V", 14, "current, power or load"),
        ("Dance at 1C until 3 V", 1, "Discharge, Charge, Hold, Rest or Run"),
        ("Charge at 1C", 13, "needs an end"),
        ("Rest until 3 V", 6, "Rest step ends by time only"),
        ("Hold at 4.2 V until 3 V", 21, "ends on current or time"),
        ("Discharge at 1C until C/20", 23, "Hold steps only"),
        ("Discharge at 1C for 10 fortnights", 21, "duration"),
        ("Discharge at 1C until 2.75 V and then", 30, "'or'"),
        ("Charge at C/0 until 4.2 V", 13, "zero"),
        ("Rest for 10 minutes (1 fortnight period)", 21, "period"),
        # Issue 10: implausible quantities name what is wrong
        ("Discharge at 0C for 1 hour", 14, "C-rate above 0"),
        ("Discharge at 0 A for 1 hour", 14, "current above 0"),
        ("Discharge at 60C until 2.75 V", 14, "outside (0, 50] C"),
        ("Discharge at 2000 A for 1 s", 14, "outside (0, 1000] A"),
        ("Rest for 100000000 hours", 10, "duration"),
        ("Rest for 0 s", 10, "duration 0 s"),
        ("Rest for 1 h (0 s period)", 15, "period 0 s"),
        ("Rest for 1 h (-5 s period)", 15, "period -5 s"),
        ("Hold at 100 V until C/20", 9, "hold voltage"),
        ("Charge at 1 Ohm until 4.2 V", 11, "only discharges"),
        ("Discharge at 1C for 1 hour at 900oC", 31, "ambient 900 degC"),
        ("Run US06 (A) until 3 V", 14, "Run step ends by time only"),
        ("Run", 4, "profile file"),
        # an empty quoted name would name the experiment's own folder
        ("Run ''", 5, "drive-cycle name after 'Run', found ''"),
        ('Run " " (V)', 5, 'found " "'),
        # an exponent is a number: refused by the power's range, not as an unreadable word
        ("Discharge at 1e6 W for 10 minutes", 14, "power 1e+06 W is outside"),
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
    exp = parse_experiment(["Rest for 1 s", "Charge at 1C until 4.2 V"])
    assert [s.kind for s in exp.steps] == ["rest", "charge"]
    assert exp.cycles == (1, 2)  # as in PyBaMM, each string is a cycle of its own
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
    # Current times the mean voltage of each one-second period (after the first, which
    # starts from the resting voltage): 5 W within 0.05 %.
    v_mean = 0.5 * (res.pack_v_V[2:] + res.pack_v_V[1:-1])
    assert np.allclose(res.current_A[2:] * v_mean, 5.0, rtol=5e-4)
    # The first period's current is solved with the voltage after switching (the R0
    # step), not the resting voltage before it: it is larger than 5 W / V_rest.
    assert res.current_A[1] * res.pack_v_V[0] > 5.0 * (1 + 1e-3)


def test_charging_power_and_voltage_of_a_profile(
    tmp_path: Path, default_design: CellDesign
) -> None:
    (tmp_path / "w.csv").write_text("time_s,power_W\n0,-4\n100,-4\n")
    model = PackModel(default_design, initial_soc=0.5)
    res = run_experiment(model, parse_experiment(["Run w.csv (W)"]), base_dir=tmp_path)
    v_mean = 0.5 * (res.pack_v_V[2:] + res.pack_v_V[1:-1])
    assert np.allclose(res.current_A[2:] * v_mean, -4.0, rtol=5e-4)


def test_run_step_samples_profile_rows_at_the_period(
    tmp_path: Path, default_design: CellDesign
) -> None:
    (tmp_path / "p.csv").write_text("time_s,current_A\n0,1.0\n10,-1.0\n25,0\n")
    model = PackModel(default_design, initial_soc=0.5)
    res = run_experiment(
        model, parse_experiment(["Run p.csv (4 second period)"]), base_dir=tmp_path
    )
    # Never longer than the period, and a row boundary is always a sample.
    assert list(res.t_s) == [0.0, 4.0, 8.0, 10.0, 14.0, 18.0, 22.0, 25.0]
    assert list(res.current_A) == [0.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0]


def test_long_profile_rows_are_integrated_at_the_period(
    tmp_path: Path, default_design: CellDesign
) -> None:
    """Issue 10 item 7: a one-hour 1 A load written as two rows is sampled every period."""
    (tmp_path / "hour.csv").write_text("time_s,current_A\n0,1.0\n3600,1.0\n")
    model = PackModel(default_design, initial_soc=0.9)
    res = run_experiment(model, parse_experiment(["Run hour.csv"]), period_s=2.0, base_dir=tmp_path)
    assert np.all(np.diff(res.t_s) == 2.0) and res.t_s[-1] == 3600.0
    assert res.discharged_Ah[-1] == pytest.approx(1.0, rel=1e-12)


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
    exp = parse_experiment(["Discharge at 0.01 W until 2.0 V (1 hour period)"])
    res = run_experiment(model, exp)
    # The reason says the step ended on its limit, and which condition it never reached.
    assert "time limit of 24 h, 2 V not reached" in res.step_reasons[0]
    assert res.t_s[-1] == 24 * 3600.0


def test_a_step_that_ends_on_its_duration_names_the_condition_it_did_not_reach(
    default_design: CellDesign,
) -> None:
    model = PackModel(default_design, initial_soc=0.5)
    exp = parse_experiment(
        ["Charge at 0.5C for 1 minute or until 5 V", "Charge at 0.5C for 1 minute or until 3 V"]
    )
    res = run_experiment(model, exp)
    assert "duration elapsed, 5 V not reached" in res.step_reasons[0]
    # a charge from 50 % until 3 V: reached at once, nothing to report
    assert "voltage reached 3 V" in res.step_reasons[1] and "not reached" not in res.step_reasons[1]


def test_cycles_repeat_as_in_pybamm() -> None:
    cycle = ("Discharge at 1C until 2.75 V", "Charge at 0.5C until 4.2 V")
    exp = parse_experiment(["Rest for 1 s", *([cycle] * 3)])
    assert len(exp.steps) == 7
    assert exp.cycles == (1, 2, 2, 3, 3, 4, 4)
    # The TOML form: a table with steps and repeat; lists are cycles too.
    toml_like = [{"steps": list(cycle), "repeat": 3}, ["Rest for 1 s"]]
    assert parse_experiment(toml_like).cycles == (1, 1, 2, 2, 3, 3, 4)
    flat = expand_cycles(toml_like, source="s.toml")
    assert flat[2] == CycleStep(cycle=2, index=2, text=cycle[0])
    with pytest.raises(InputError) as info:
        expand_cycles([{"steps": ["Rest for 1 s"], "repeat": 0}], source="s.toml")
    assert info.value.field == "steps[0].repeat"
    with pytest.raises(InputError) as info:
        parse_experiment([cycle, ("Rest for 1 s", "Charge at 1C")])
    assert info.value.field == "step 4"
    with pytest.raises(InputError, match="100,000 steps"):
        parse_experiment([cycle] * 60_000)


@pytest.mark.parametrize(
    ("table", "field", "words"),
    [
        ({"steps": ["Rest for 1 s"]}, "steps[0].repeat", "missing"),
        ({"repeat": 2}, "steps[0].steps", "missing"),
        ({"steps": [], "repeat": 2}, "steps[0].steps", "non-empty"),
        ({"steps": ["Rest for 1 s"], "repeat": 2, "cycles": 3}, "steps[0].cycles", "unknown key"),
    ],
)
def test_a_cycle_table_has_its_two_keys(table: dict, field: str, words: str) -> None:
    """A table is there to repeat its steps: without a count it is a forgotten one."""
    with pytest.raises(InputError) as info:
        expand_cycles([table], source="s.toml")
    assert info.value.field == field and words in info.value.reason


@pytest.mark.parametrize(
    ("texts", "expect"),
    [
        ("80% capacity", Termination(capacity_pct=80.0)),
        (["2.0 Ah capacity"], Termination(capacity_Ah=2.0)),
        ("2.0 Ah", Termination(capacity_Ah=2.0)),
        ("1800 mAh", Termination(capacity_Ah=1.8)),
        (["4 A.h capacity", "2.5 V"], Termination(capacity_Ah=4.0, voltage_V=2.5)),
        ("2 days", Termination(time_s=172800.0)),
    ],
)
def test_experiment_termination_forms(texts: object, expect: Termination) -> None:
    assert parse_termination(texts) == expect


@pytest.mark.parametrize("texts", ["80 parsecs", "0% capacity", "150% capacity", ["80%", "2 Ah"]])
def test_bad_termination(texts: object) -> None:
    with pytest.raises(InputError):
        parse_termination(texts, source="--termination")


def test_capacity_termination_stops_after_the_cycle(default_design: CellDesign) -> None:
    """Cycles of a 1C discharge and a CC charge without CV: the second cycle starts below full
    and delivers less than the first; the experiment stops after it."""
    model = PackModel(default_design, initial_soc=1.0, isothermal=True)
    cycle = ("Discharge at 1C until 2.75 V", "Charge at 0.5C until 4.2 V")
    exp = parse_experiment([cycle] * 5, termination="98% capacity")
    res = run_experiment(model, exp, period_s=10.0)
    assert res.cycle_index.max() == 2
    assert res.stopped is not None and "capacity" in res.stopped
    first = res.discharged_Ah[res.cycle_index == 1][-1]
    second = res.discharged_Ah[res.cycle_index == 2][-1] - first
    assert second < 0.98 * first


def test_step_temperature_applies_to_its_step_only(default_design: CellDesign) -> None:
    model = PackModel(default_design, initial_soc=0.5, ambient_degC=25.0, isothermal=True)
    exp = parse_experiment(["Rest for 10 s at 0oC", "Rest for 10 s"])
    res = run_experiment(model, exp)
    assert set(res.ambient_degC[res.step_index == 0]) == {0.0}
    assert set(res.temp_degC[res.step_index == 0, 0]) == {0.0}
    assert set(res.ambient_degC[res.step_index == 1]) == {25.0}
    assert model.ambient_degC == 25.0


def test_resistive_load_draws_voltage_over_resistance(default_design: CellDesign) -> None:
    model = PackModel(default_design, initial_soc=0.8)
    res = run_experiment(model, parse_experiment(["Discharge at 2 Ohm for 10 minutes"]))
    # The current is the pack voltage over the load, to 0.05 % within each period once
    # the first RC pair has settled (its 10 s transient moves the voltage within a period).
    v_mean = 0.5 * (res.pack_v_V[61:] + res.pack_v_V[60:-1])
    assert np.allclose(res.current_A[61:], v_mean / 2.0, rtol=5e-4)


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("time_s,current_A", "A"),
        ("Time [s],Current [A]", "A"),
        ("# Based on the US06 drive cycle,\n# time [s],current [A]", "A"),
        ("time_s,power_W", "W"),
        ("Time [s],Voltage [V]", "V"),
    ],
)
def test_drive_cycle_names_resolve_to_csv(
    tmp_path: Path, default_design: CellDesign, header: str, kind: str
) -> None:
    value = {"A": 1.0, "W": 3.5, "V": 3.6}[kind]
    (tmp_path / "US06.csv").write_text(f"{header}\n0,{value}\n60,{value}\n")
    model = PackModel(default_design, initial_soc=0.6)
    exp = parse_experiment([f"Run US06 ({kind}) for 3 minutes"])
    res = run_experiment(model, exp, base_dir=tmp_path)
    assert res.t_s[-1] == 180.0  # the one-minute profile repeated to the duration
    if kind == "A":
        assert np.all(res.current_A[1:] == 1.0)
    elif kind == "W":
        v_mean = 0.5 * (res.pack_v_V[2:] + res.pack_v_V[1:-1])
        assert np.allclose(res.current_A[2:] * v_mean, 3.5, rtol=5e-4)
    else:
        assert np.allclose(res.v_V[1:, 0], 3.6, atol=1e-6)
    with pytest.raises(InputError, match=r"drive cycle 'UDDS'.*UDDS.csv"):
        run_experiment(model, parse_experiment(["Run UDDS (A)"]), base_dir=tmp_path)


def test_until_only_step_is_capped_at_the_step_period_limit() -> None:
    """Probe: 'Charge at 0.001C until 4.2 V' ran 3.6 M periods; a step has 2,000,000 at most."""
    ctl = StepController(parse_step("Charge at 0.001C until 4.2 V"), 2.0, period_s=1.0)
    assert ctl.time_limit_s == MAX_STEP_PERIODS * 1.0
    # A timed step of as many periods is still refused before it runs.
    with pytest.raises(InputError, match="2,000,000"):
        StepController(parse_step("Charge at 0.001C for 2000001 s"), 2.0, period_s=1.0)


def test_a_step_that_cannot_run_as_written_is_a_step_error_of_its_callers_place(
    tmp_path: Path,
) -> None:
    """The step's own faults (the profile its Run names missing or a folder, more periods
    than a step may have, a period out of range) are StepErrors naming where the caller read
    the step, so a scenario can put their reason after its own file and field; a fault
    inside the profile names the profile file and is no StepError."""
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "bad.csv").write_text("time_s,current_A\n0,1\n10,abc\n")

    def controller(text: str, period_s: float = 1.0) -> StepController:
        return StepController(
            parse_step(text), 2.0, period_s=period_s, base_dir=tmp_path, source="exp.toml",
            field="step 2",
        )  # fmt: skip

    for text, reason in (
        ("Run missing.csv", "no profile file"),
        ("Run folder.csv", r"not a regular file \(a directory\)"),
        ("Charge at 0.001C for 2000001 s", "2,000,000 periods"),
    ):
        with pytest.raises(StepError, match=reason) as info:
            controller(text)
        assert (info.value.source, info.value.field) == ("exp.toml", "step 2")
    with pytest.raises(StepError, match="period 0.0001 s is outside"):
        controller("Rest for 1 minute", period_s=1e-4)
    with pytest.raises(InputError, match="not a number") as info:
        controller("Run bad.csv")
    assert not isinstance(info.value, StepError)
    assert info.value.source == str(tmp_path / "bad.csv")


def test_until_only_step_ends_at_the_step_period_limit(
    default_design: CellDesign, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small cap stands in for 2,000,000 so the run is short; its own limit is 24 h.
    monkeypatch.setattr(experiment, "MAX_STEP_PERIODS", 100)
    model = PackModel(default_design, initial_soc=0.5)
    res = run_experiment(
        model, parse_experiment(["Discharge at 0.01 W until 2.0 V"]), period_s=60.0
    )
    assert res.t_s[-1] == 100 * 60.0 and len(res.t_s) == 101
    assert "step limit of 100 periods" in res.step_reasons[0]

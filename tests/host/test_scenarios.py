"""Scenario files: the built-in library loads, fault and expectation steps parse, bad input names
the file, the step and the reason."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from cellmodel.errors import InputError
from host.scenarios import DriveStep, Expectation, ScenarioStep, library_names, load_scenario
from host.scenarios.steps import FAULT_STEPS, parse_scenario_step
from host.scenarios.steps.expectations import (
    ExpectCapacityError,
    ExpectFault,
    ExpectNoFault,
    ExpectNoFaults,
    ExpectSocError,
    ExpectSocRmse,
    ExpectSwitch,
)
from host.scenarios.steps.faults import (
    BreakThermistor,
    CorruptFrames,
    CutPower,
    DropLink,
    FreezeCell,
    InjectCurrentOffset,
    OpenCellTap,
    RepairSensors,
    ResetBoard,
    SetAmbient,
    SetSensorNoise,
    StepCurrentGain,
    StickCurrentSensor,
    UnfreezeCells,
)

REQUIRED = {
    "full-cycle",
    "drive-cycle",
    "hppc",
    "hot-soak",
    "cold-charge",
    "current-offset",
    "link-loss",
    "power-loss",
    "wrong-initial-soc",
    "hysteresis-trap",
}


def test_library_has_every_required_scenario_and_all_load() -> None:
    assert set(library_names()) >= REQUIRED
    for name in library_names():
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.description
        assert any(isinstance(s, DriveStep) for s in scenario.steps)


def test_default_is_full_cycle() -> None:
    assert load_scenario(None).name == "full-cycle"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Inject current offset 20 mA", InjectCurrentOffset("", 20.0)),
        ("Inject current offset -15 mA", InjectCurrentOffset("", -15.0)),
        ("Set sensor noise 5 mV", SetSensorNoise("", 5.0)),
        ("Freeze cell 2 voltage", FreezeCell("", 2)),
        ("Unfreeze cells", UnfreezeCells("")),
        ("Drop link for 5 s", DropLink("", 5.0)),
        ("Drop link for 2 minutes", DropLink("", 120.0)),
        ("Drop link for 5 mins", DropLink("", 300.0)),
        ("Drop link for 1 day", DropLink("", 86400.0)),
        ("Corrupt 1% of frames", CorruptFrames("", 0.01)),
        ("Set ambient 50 degC", SetAmbient("", 50.0)),
        ("Set ambient -10 degC", SetAmbient("", -10.0)),
        ("Reset board", ResetBoard("")),
        ("Cut board power", CutPower("")),
        ("Open cell 2 tap", OpenCellTap("", 2, 0)),
        ("Open cell 1 voltage tap reading full scale", OpenCellTap("", 1, 65535)),
        ("Stick current sensor", StickCurrentSensor("")),
        ("Stick current sensor at -500 mA", StickCurrentSensor("", -500)),
        ("Open thermistor 1", BreakThermistor("", 1, -60.0)),
        ("Short thermistor 2", BreakThermistor("", 2, 150.0)),
        ("Step current sensor gain by -2%", StepCurrentGain("", -20000.0)),
        ("Repair sensors", RepairSensors("")),
    ],
)
def test_fault_steps(text: str, expected: ScenarioStep) -> None:
    assert parse_scenario_step(text, "s.toml", "steps[0]") == dataclasses.replace(
        expected,  # type: ignore[type-var]
        text=text,
    )


def test_expectation_steps() -> None:
    def parse(text: str) -> Expectation:
        step = parse_scenario_step(text, "s.toml", "steps[3]")
        assert isinstance(step, Expectation)
        return step

    assert parse("Expect DSG off within 2 s") == ExpectSwitch(
        "Expect DSG off within 2 s", "DSG", False, within_s=2.0
    )
    assert parse("Expect CHG on") == ExpectSwitch("Expect CHG on", "CHG", True)
    e = parse("Expect fault UT_CHG within 1 minute")
    assert e == ExpectFault(e.text, "UT_CHG", within_s=60.0)
    e = parse("Expect SOC error below 3% throughout")
    assert e == ExpectSocError(e.text, 3.0, window="throughout") and e.whole_run
    e = parse("Expect no faults after the first rest")
    assert e == ExpectNoFaults(e.text, window="after_first_rest")
    assert isinstance(parse("Expect no faults"), ExpectNoFaults)
    assert parse("Expect no fault link_lost") == ExpectNoFault(
        "Expect no fault link_lost", "LINK_LOST"
    )
    assert parse("Expect SOC error below 2%") == ExpectSocError("Expect SOC error below 2%", 2.0)
    assert isinstance(parse("Expect SOC RMS error below 1%"), ExpectSocRmse)
    assert isinstance(parse("Expect capacity error below 3%"), ExpectCapacityError)


def test_drive_steps_come_from_cellmodel() -> None:
    step = parse_scenario_step("Charge at 0.5C until 4.2 V", "s.toml", "steps[0]")
    assert isinstance(step, DriveStep)
    assert step.step.kind == "charge"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("Expect fault NOPE", "unknown fault"),
        ("Expect the moon", "cannot read expectation"),
        ("Dance at 1C", "Discharge, Charge"),
        ("Corrupt 150% of frames", "outside"),
        ("Freeze cell 0 voltage", "numbered from 1"),
        ("Drop link for -5 s", "> 0 s"),
        ("Drop link for 0 s", "> 0 s"),
        ("Expect SOC error below -5%", "> 0 %"),
        ("Expect DSG off within -5 s", "-5 s is outside [0, 3.16224e+07] s"),
        ("Expect DSG off within 1e300 s", "1e+300 s is outside [0, 3.16224e+07] s"),
        ("Set sensor noise -1 mV", ">= 0 mV"),
        ("Expect no faults within 2 s throughout", "cannot be combined"),
        ("Open cell 0 tap", "numbered from 1"),
        ("Step current sensor gain by 80%", "plausible"),
        ("Stick current sensor at 3000000 mA", "plausible"),
    ],
)
def test_bad_steps_name_file_step_and_text(text: str, needle: str) -> None:
    with pytest.raises(InputError) as info:
        parse_scenario_step(text, "my.toml", "steps[4]")
    msg = str(info.value)
    assert msg.startswith("my.toml: steps[4]: ")
    assert needle in msg


@pytest.mark.parametrize("kind", FAULT_STEPS, ids=lambda kind: kind.__name__)
def test_a_fault_step_that_does_not_read_is_refused_with_its_forms(
    kind: type[ScenarioStep],
) -> None:
    """Its forms, with numbers, read as that kind; a text that starts as it and goes wrong
    is refused as that kind (its forms), not as an experiment step or another fault."""
    for form in kind.FORMS:
        assert type(parse_scenario_step(re.sub(r"\bN\b", "2", form), "s.toml", "f")) is kind
    with pytest.raises(InputError) as info:
        parse_scenario_step(f"{kind.FORMS[0]} at once", "my.toml", "steps[4]")
    assert info.value.field == "steps[4]"
    assert all(repr(form) in info.value.reason for form in kind.FORMS), info.value.reason


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('steps = ["Rest for 1 minute", "Fly away"]', "steps[1]"),
        ("steps = []", "steps"),
        ('steps = ["Expect no faults"]', "steps"),
        ('wat = 1\nsteps = ["Rest for 1 s"]', "wat"),
        ('sample_period_s = -1\nsteps = ["Rest for 1 s"]', "sample_period_s"),
        ('sample_period_s = 12\nsteps = ["Rest for 1 s"]', "sample_period_s"),  # max_dt_ms
        ('steps = ["Rest for 1 s"]\n[initial]\nsoc = 1.5', "initial.soc"),
        ('steps = ["Rest for 1 s"]\n[initial]\nbranch = "up"', "initial.branch"),
        ('steps = ["Rest for 1 s"]\n[sensors]\ncell_noise_mV = "x"', "sensors.cell_noise_mV"),
        ('steps = ["Rest for 1 s"', "toml"),
    ],
)
def test_bad_files(tmp_path: Path, body: str, field: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert info.value.source == str(path)
    assert info.value.field == field


def test_unknown_scenario_name_lists_builtins() -> None:
    with pytest.raises(InputError, match="full-cycle"):
        load_scenario("no-such-scenario")


def test_profile_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'steps = ["Run p.csv"]')
    assert load_scenario(path).base_dir == tmp_path

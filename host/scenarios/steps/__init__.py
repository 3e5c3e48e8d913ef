"""Scenario steps: one class per kind, registered in one table.

A scenario's step list mixes three kinds of text:
- experiment steps that drive the cells ("Charge at 0.5C until 4.2 V"), parsed by
  cellmodel.experiment.parse_step (host.scenarios.steps.drive);
- fault steps that act at once ("Inject current offset 20 mA", "Drop link for 5 s",
  "Reset board", ...; host.scenarios.steps.faults);
- expectations checked against the firmware's replies ("Expect DSG off within 2 s",
  "Expect SOC error below 2%", ...; host.scenarios.steps.expectations).

To add a kind: write its class next to its siblings and add it to FAULT_STEPS or
EXPECTATIONS below (docs/internals.md, "How to change it").
"""

from __future__ import annotations

import dataclasses

from cellmodel.errors import InputError, StepError
from cellmodel.experiment import KINDS, is_experiment_step
from host.scenarios.steps.base import (
    CheckEnv,
    Expectation,
    Observation,
    ScenarioStep,
    StepLoop,
)
from host.scenarios.steps.drive import CHARGER_GIVE_UP_S, DriveRun, DriveStep
from host.scenarios.steps.expectations import (
    EXAMPLES,
    ExpectCapacityError,
    ExpectFault,
    ExpectNoFault,
    ExpectNoFaults,
    ExpectSocError,
    ExpectSocRmse,
    ExpectSwitch,
    split_expectation,
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

# The registry: every fault step and every expectation, tried in this order.
FAULT_STEPS: tuple[type[ScenarioStep], ...] = (
    InjectCurrentOffset,
    SetSensorNoise,
    FreezeCell,
    UnfreezeCells,
    OpenCellTap,
    StickCurrentSensor,
    BreakThermistor,
    StepCurrentGain,
    RepairSensors,
    CorruptFrames,
    SetAmbient,
    DropLink,
    ResetBoard,
    CutPower,
)
EXPECTATIONS: tuple[type[Expectation], ...] = (
    ExpectSwitch,
    ExpectFault,
    ExpectNoFault,
    ExpectNoFaults,
    ExpectSocRmse,
    ExpectSocError,
    ExpectCapacityError,
)


# A text no kind takes: what a step starts with (docs/scenarios.md, "Steps").
_UNKNOWN = (
    f"unknown step; expected an experiment step ({', '.join(KINDS)} ...), a fault step "
    f"({', '.join(dict.fromkeys(f.split()[0] for k in FAULT_STEPS for f in k.FORMS))} ...) "
    "or an expectation (Expect ...)"
)


def parse_expectation(text: str) -> Expectation | None:
    """An expectation, or None when the text does not start with 'Expect'; ValueError when
    it does but cannot be read."""
    split = split_expectation(text)
    if split is None:
        return None
    body, within_s, window = split
    for kind in EXPECTATIONS:
        m = kind.PATTERN.fullmatch(body) if kind.PATTERN else None
        if m:
            step = kind.from_match(text, m)
            assert isinstance(step, Expectation)
            return dataclasses.replace(step, within_s=within_s, window=window)
    raise ValueError(f"cannot read expectation {text!r}; expected e.g. {EXAMPLES}")


def parse_fault(text: str) -> ScenarioStep | None:
    """A fault step, or None when the text is not one (ValueError on a bad value)."""
    for kind in FAULT_STEPS:
        step = kind.parse(text)
        if step is not None:
            return step
    return None


def parse_scenario_step(text: object, source: str, field: str) -> ScenarioStep:
    """Parse one step; errors name the scenario file, the step index and the text."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(source, field, f"a step must be non-empty text, got {text!r}")
    try:
        step = parse_expectation(text) or parse_fault(text)
    except ValueError as exc:
        raise InputError(source, field, f"{text!r}: {exc}") from None
    if step is not None:
        return step
    if not is_experiment_step(text):
        raise InputError(source, field, f"{text!r}: {_UNKNOWN}")
    return DriveStep.parse_text(text, source, field)


def check_steps(
    steps: tuple[ScenarioStep, ...], env: CheckEnv, source: str, fields: tuple[str, ...] = ()
) -> None:
    """Every step's own check against where it will run; InputError names the step (its
    field in the file, `fields[i]`, when given)."""
    for i, step in enumerate(steps):
        try:
            step.check(env)
        except StepError as exc:  # the step as written (cellmodel's): its reason, placed here
            reason = exc.reason
        except ValueError as exc:  # a step's own check, or an InputError naming a file it reads
            reason = str(exc)
        else:
            continue
        field = fields[i] if i < len(fields) else f"steps[{i}]"
        raise InputError(source, field, f"{step.text!r}: {reason}")


__all__ = [
    "CHARGER_GIVE_UP_S",
    "EXPECTATIONS",
    "FAULT_STEPS",
    "CheckEnv",
    "DriveRun",
    "DriveStep",
    "Expectation",
    "Observation",
    "ScenarioStep",
    "StepLoop",
    "check_steps",
    "parse_expectation",
    "parse_fault",
    "parse_scenario_step",
]

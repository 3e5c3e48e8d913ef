"""Fault and expectation steps of a scenario, on top of cellmodel's experiment steps.

A scenario's step list mixes three kinds of text:
- experiment steps that drive the cells ("Charge at 0.5C until 4.2 V"), parsed by
  cellmodel.experiment.parse_step;
- fault steps that act at once ("Inject current offset 20 mA", "Set sensor noise
  5 mV", "Freeze cell 2 voltage", "Unfreeze cells", "Drop link for 5 s",
  "Corrupt 1% of frames", "Set ambient 50 degC", "Reset board", "Cut board power");
- expectations checked against the firmware's replies ("Expect DSG off within 2 s",
  "Expect CHG on", "Expect fault UT_CHG within 10 s", "Expect no fault OV",
  "Expect no faults", "Expect SOC error below 2%", "Expect SOC RMS error below 1%",
  "Expect capacity error below 3%").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from cellmodel.errors import InputError
from cellmodel.quantities import SIGNED_DURATION, SIGNED_NUMBER, seconds

_NUM = SIGNED_NUMBER
_TIME = SIGNED_DURATION

FaultKind = Literal[
    "current_offset",
    "sensor_noise",
    "freeze_cell",
    "unfreeze",
    "drop_link",
    "corrupt",
    "ambient",
    "reset",
    "power_cut",
]
ExpectKind = Literal[
    "switch", "fault", "no_fault", "no_faults", "soc_error", "soc_rmse", "capacity_error"
]


@dataclass(frozen=True)
class FaultStep:
    text: str
    kind: FaultKind
    value: float = 0.0  # mA, mV, 1-based cell, s, fraction or degC depending on kind


@dataclass(frozen=True)
class ExpectStep:
    text: str
    kind: ExpectKind
    switch: str = ""  # "CHG" | "DSG" for kind "switch"
    on: bool = False  # wanted switch state
    fault: str = ""  # fault name for "fault"/"no_fault"
    limit_pct: float = 0.0  # for the error kinds
    within_s: float | None = None  # None: checked against the latest reply only


@dataclass(frozen=True)
class DriveStep:
    """An experiment step, kept as cellmodel parsed it."""

    text: str
    step: Any  # cellmodel.experiment.Step


ScenarioStep = FaultStep | ExpectStep | DriveStep


def fault_bits() -> dict[str, int]:
    """Fault name -> bit number, as the protocol defines them (host.protocol.faults)."""
    from host.protocol import faults

    return dict(faults.FAULT_BITS)


def _fault_name(name: str, source: str, field: str) -> str:
    upper = name.upper()
    known = fault_bits()
    if upper not in known:
        raise InputError(
            source, field, f"unknown fault {name!r}; known: {', '.join(sorted(known))}"
        )
    return upper


_FAULT_PATTERNS: list[tuple[re.Pattern[str], FaultKind]] = [
    (re.compile(rf"inject current offset (?:of )?{_NUM}\s*ma", re.I), "current_offset"),
    (
        re.compile(rf"set (?:cell |sensor )?(?:voltage )?noise (?:to )?{_NUM}\s*mv", re.I),
        "sensor_noise",
    ),
    (re.compile(r"freeze cell (\d+)(?: voltage)?", re.I), "freeze_cell"),
    (re.compile(r"unfreeze (?:all )?cells?(?: voltages?)?", re.I), "unfreeze"),
    (re.compile(rf"corrupt {_NUM}\s*% of (?:the )?frames", re.I), "corrupt"),
    (
        re.compile(rf"set ambient (?:temperature )?(?:to )?{_NUM}\s*(?:deg ?c|°c|c)", re.I),
        "ambient",
    ),
    (re.compile(r"reset (?:the )?board", re.I), "reset"),
    (re.compile(r"cut (?:the )?board(?:'s)? power|cut power", re.I), "power_cut"),
]
_DROP = re.compile(rf"drop (?:the )?link for {_TIME}", re.I)
_WITHIN = re.compile(rf"\s+within\s+{_TIME}\s*$", re.I)


def parse_fault(text: str) -> FaultStep | None:
    """A fault step, or None when the text is not one (raises on a fault with a bad value)."""
    stripped = text.strip().rstrip(".")
    m = _DROP.fullmatch(stripped)
    if m:
        return FaultStep(text, "drop_link", seconds(m.group(1), m.group(2)))
    for pattern, kind in _FAULT_PATTERNS:
        m = pattern.fullmatch(stripped)
        if not m:
            continue
        value = float(m.group(1)) if m.groups() else 0.0
        if kind == "corrupt":
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"fraction {value}% outside 0..100%")
            value /= 100.0
        if kind == "freeze_cell" and value < 1:
            raise ValueError("cells are numbered from 1")
        if kind == "sensor_noise" and value < 0:
            raise ValueError("noise must be >= 0 mV")
        return FaultStep(text, kind, value)
    return None


def parse_expectation(text: str, source: str = "", field: str = "") -> ExpectStep | None:
    """An expectation step, or None when the text does not start with 'Expect'."""
    stripped = text.strip().rstrip(".")
    if not stripped.lower().startswith("expect "):
        return None
    within_s: float | None = None
    m = _WITHIN.search(stripped)
    if m:
        within_s = seconds(m.group(1), m.group(2))
        stripped = stripped[: m.start()]
    body = stripped[len("expect ") :].strip()
    m = re.fullmatch(r"(chg|dsg) (on|off)", body, re.I)
    if m:
        return ExpectStep(
            text,
            "switch",
            switch=m.group(1).upper(),
            on=m.group(2).lower() == "on",
            within_s=within_s,
        )
    m = re.fullmatch(r"fault (\w+)", body, re.I)
    if m:
        return ExpectStep(
            text, "fault", fault=_fault_name(m.group(1), source, field), within_s=within_s
        )
    m = re.fullmatch(r"no fault (\w+)", body, re.I)
    if m:
        name = _fault_name(m.group(1), source, field)
        return ExpectStep(text, "no_fault", fault=name, within_s=within_s)
    if re.fullmatch(r"no faults", body, re.I):
        return ExpectStep(text, "no_faults", within_s=within_s)
    m = re.fullmatch(rf"soc (rms )?error (?:below|under|<) {_NUM}\s*%", body, re.I)
    if m:
        kind: ExpectKind = "soc_rmse" if m.group(1) else "soc_error"
        return ExpectStep(text, kind, limit_pct=float(m.group(2)), within_s=within_s)
    m = re.fullmatch(rf"capacity error (?:below|under|<) {_NUM}\s*%", body, re.I)
    if m:
        return ExpectStep(text, "capacity_error", limit_pct=float(m.group(1)), within_s=within_s)
    raise InputError(
        source,
        field,
        f"cannot read expectation {text!r}; expected e.g. 'Expect DSG off within 2 s', "
        "'Expect fault UT_CHG', 'Expect no faults', 'Expect SOC error below 2%', "
        "'Expect SOC RMS error below 1%', 'Expect capacity error below 3%'",
    )


def parse_scenario_step(text: str, source: str, field: str) -> ScenarioStep:
    """Parse one step; errors name the scenario file, the step index and the text."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(source, field, f"a step must be non-empty text, got {text!r}")
    expect = parse_expectation(text, source, field)
    if expect is not None:
        return expect
    try:
        fault = parse_fault(text)
    except ValueError as exc:
        raise InputError(source, field, f"{text!r}: {exc}") from None
    if fault is not None:
        return fault
    from cellmodel.experiment import parse_step

    return DriveStep(text, parse_step(text, source=source, field=field))

"""Experiment steps in PyBaMM's text syntax, and what each step demands.

    Discharge at 1C until 2.75 V
    Discharge at 2 A for 10 minutes or until 3.0 V
    Charge at 0.5C until 4.2 V (10 second period)
    Discharge at 5 W for 1 hour
    Discharge at 1 Ohm until 3.0 V
    Discharge at 1C for 1 hour at 25oC
    Hold at 4.2 V until C/20
    Rest for 30 minutes
    Run PROFILE.csv
    Run US06 (A) for 2 hours (1 second period)

Currents are positive on discharge. Voltages in steps are cell voltages: a
charge or hold step watches the highest cell, a discharge the lowest. A power
(W) or resistive load (Ohm) is the pack's, held at the start of each period:
the current is solved with the pack voltage right after switching to it (the
R0 step), then held over the period (cellmodel.simulation cuts a period longer
than 60 s into sub-steps of 5 s at most and solves it at each). "at 25oC" sets
the ambient temperature for that step only (PyBaMM's rule: a step without one
runs at the experiment's ambient).
"Run NAME" reads a profile (cellmodel.profile): (A) current, the default, (V)
cell voltage, (W) power; a bare name means NAME.csv beside the experiment;
"for DURATION" repeats or cuts the profile to that length.

parse_step() turns text into a Step; parse_experiment() takes a list whose
entries are steps or cycles (tuples of steps, as PyBaMM's
[("Discharge at 1C until 2.75 V", "Charge at 0.5C until 4.2 V")] * 10), plus
experiment-level termination ("80% capacity", "2.0 Ah capacity", "2.5 V",
"2 days"). StepController holds one step's progress and answers "what series
current now?" (demand_current_A) and "done?" (finished), so the model-only runner
(cellmodel.simulation) and the host's emulator share the step semantics while
owning their own loops. Every quantity is checked against its plausible range
(cellmodel.quantities).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellmodel.errors import InputError, StepError
from cellmodel.profile import Profile, load_profile, resolve_profile
from cellmodel.quantities import (
    AMBIENT_DEGC,
    C_RATE,
    CELL_VOLTAGE_V,
    CURRENT_A,
    DURATION,
    DURATION_S,
    NUMBER,
    PERIOD_S,
    POWER_W,
    RESISTANCE_OHM,
    SIGNED_DURATION,
    TEMPERATURE,
    Range,
    celsius,
    seconds,
)

if TYPE_CHECKING:
    from cellmodel.pack import PackModel

_NUM = NUMBER
_DURATION = re.compile(DURATION, re.IGNORECASE)
_DRIVE = re.compile(
    rf"C\s*/\s*{_NUM}(?![A-Za-z0-9.])|{_NUM}\s*(mOhm|mohm|Ohm|ohm|mA|A|C|mW|W)(?![A-Za-z])"
)
_VOLTAGE = re.compile(rf"{_NUM}\s*(mV|V)(?![A-Za-z])")
_LIMIT = re.compile(rf"C\s*/\s*{_NUM}(?![A-Za-z0-9.])|{_NUM}\s*(mV|V|mA|A|C)(?![A-Za-z])")
_PERIOD = re.compile(rf"\(\s*{SIGNED_DURATION}\s+period\s*\)\s*$", re.IGNORECASE)
_AMBIENT = re.compile(rf"\s+at\s+{TEMPERATURE}\s*$")
# What an experiment step starts with.
KINDS = ("Discharge", "Charge", "Hold", "Rest", "Run")
_KIND = re.compile(rf"\s*({'|'.join(KINDS)})\b", re.IGNORECASE)
_RUN = re.compile(r"\s+(\"[^\"]+\"|'[^']+'|[^\s(]+)(?:\s*\(\s*(A|V|W)\s*\))?")

# Until-only steps stop here at the latest, so a cutoff the cell never reaches
# cannot hang a run: twice the time to move the full capacity, at least 1 h.
MIN_TIME_LIMIT_S = 3600.0
HOLD_TIME_LIMIT_S = 24 * 3600.0
# An experiment of more steps than this (after expanding cycles) is a typo.
MAX_STEPS = 100_000
# A cycle table's repeat: at most this many cycles.
MAX_REPEAT = 10_000
# A timed step of more periods than this (its duration over its period) is refused;
# an until-only step ends after this many ("step limit of 2,000,000 periods").
MAX_STEP_PERIODS = 2_000_000

_DRIVE_RANGES: dict[str, Range] = {"A": CURRENT_A, "C": C_RATE, "W": POWER_W, "Ohm": RESISTANCE_OHM}
_DRIVE_NAMES = {"A": "current", "C": "C-rate", "W": "power", "Ohm": "load resistance"}


@dataclass(frozen=True)
class Step:
    """One parsed experiment step.

    drive_unit: "A", "C", "W", "Ohm" (resistive load) or "V" (hold); None for rest/run.
    profile_kind: what a Run step's profile holds: "A" current, "V" voltage, "W" power.
    ambient_degC: the ambient for this step ("at 25oC"), None for the experiment's.
    """

    text: str
    kind: str  # "discharge" | "charge" | "hold" | "rest" | "run"
    drive: float | None = None
    drive_unit: str | None = None
    duration_s: float | None = None
    voltage_cutoff_V: float | None = None
    current_cutoff: float | None = None
    current_cutoff_unit: str | None = None  # "A" or "C"
    period_s: float | None = None
    profile_path: str | None = None
    profile_kind: str = "A"
    ambient_degC: float | None = None

    def current_A(self, capacity_Ah: float) -> float:
        """Series current for A and C drives, positive on discharge (0 for rest)."""
        if self.kind == "rest":
            return 0.0
        if self.drive is None or self.drive_unit not in ("A", "C"):
            raise ValueError(f"step {self.text!r} has no fixed current")
        amps = self.drive * (capacity_Ah if self.drive_unit == "C" else 1.0)
        return -amps if self.kind == "charge" else amps

    def until_text(self) -> str | None:
        """The step's `until` condition as a reader wrote it ("4.2 V", "C/20", "4.2 V or
        0.1 A"), None without one."""
        parts = []
        if self.voltage_cutoff_V is not None:
            parts.append(f"{self.voltage_cutoff_V:g} V")
        if self.current_cutoff is not None:
            c = self.current_cutoff
            if self.current_cutoff_unit == "C":
                parts.append(f"C/{1.0 / c:g}" if c < 1.0 else f"{c:g}C")
            else:
                parts.append(f"{c:g} A")
        return " or ".join(parts) or None

    def current_cutoff_A(self, capacity_Ah: float) -> float | None:
        if self.current_cutoff is None:
            return None
        return self.current_cutoff * (capacity_Ah if self.current_cutoff_unit == "C" else 1.0)


class _Cursor:
    """A position in one step's text; errors quote the text and mark the column."""

    def __init__(self, text: str, source: str, field: str) -> None:
        self.text = text
        self.pos = 0
        self.end = len(text.rstrip())  # the body ends before any suffix taken off
        self.source = source
        self.field = field

    def fail(self, reason: str, at: int | None = None) -> InputError:
        col = self.pos if at is None else at
        while col < len(self.text) and self.text[col] == " ":
            col += 1
        return InputError(
            self.source,
            self.field,
            f"{reason} at column {col + 1}\n    {self.text}\n    {' ' * col}^",
        )

    def take(self, pattern: re.Pattern[str] | str) -> re.Match[str] | None:
        rx = re.compile(pattern, re.IGNORECASE) if isinstance(pattern, str) else pattern
        m = rx.match(self.text, self.pos, self.end)
        if m:
            self.pos = m.end()
        return m

    def expect(self, pattern: re.Pattern[str] | str, what: str) -> re.Match[str]:
        m = self.take(pattern)
        if m is None:
            rest = self.text[self.pos : self.end].split()
            found = rest[0] if rest else ""
            raise self.fail(f"expected {what}" + (f", found {found!r}" if found else ""))
        return m

    def remaining(self) -> bool:
        return bool(self.text[self.pos : self.end].strip())

    def check(self, rng: Range, value: float, what: str, at: int) -> float:
        if not rng.contains(value):
            raise self.fail(rng.outside(value, what), at)
        return value


def _split_period(cur: _Cursor) -> float | None:
    """Take a trailing "(N unit period)" off the body; its length in seconds."""
    body = cur.text[: cur.end]
    pm = _PERIOD.search(body)
    if pm is None:
        if "period" in body.lower():
            at = body.lower().rfind("(")
            raise cur.fail("expected a period like '(1 second period)' at the end", max(at, 0))
        return None
    period_s = seconds(pm.group(1), pm.group(2))
    cur.check(PERIOD_S, period_s, "period", pm.start(1))
    cur.end = len(body[: pm.start()].rstrip())
    return period_s


def _split_ambient(cur: _Cursor) -> float | None:
    """Take a trailing "at 25oC" off the body (PyBaMM's step temperature); degC."""
    am = _AMBIENT.search(cur.text, 0, cur.end)
    if am is None:
        return None
    degC = cur.check(AMBIENT_DEGC, celsius(am.group(1), am.group(2)), "ambient", am.start(1))
    cur.end = am.start()
    return degC


def _parse_drive(cur: _Cursor, kind: str) -> tuple[float, str]:
    at = cur.pos
    if kind == "hold":
        cur.expect(r"\s+at\s+", "'at' and a voltage")
        at = cur.pos
        vm = cur.expect(_VOLTAGE, "a voltage like '4.2 V'")
        volts = float(vm.group(1)) / (1000.0 if vm.group(2) == "mV" else 1.0)
        return cur.check(CELL_VOLTAGE_V, volts, "hold voltage", at), "V"
    cur.expect(r"\s+at\s+", "'at' and a current")
    at = cur.pos
    m = cur.expect(
        _DRIVE, "a current, power or load like '1C', 'C/2', '2 A', '500 mA', '5 W' or '1 Ohm'"
    )
    if m.group(1) is not None:
        divisor = float(m.group(1))
        if divisor == 0:
            raise cur.fail("divisor must not be zero", m.start(1))
        value, unit = 1.0 / divisor, "C"
    else:
        value, unit = float(m.group(2)), m.group(3)
        if unit.startswith("m"):
            value, unit = value / 1000.0, unit[1:]
        unit = "Ohm" if unit.lower() == "ohm" else unit
    if unit == "Ohm" and kind == "charge":
        raise cur.fail("a resistive load only discharges: 'Discharge at 1 Ohm'", at)
    if value == 0:
        raise cur.fail(
            f"a {kind} step needs a {_DRIVE_NAMES[unit]} above 0; use 'Rest for ...'", at
        )
    return cur.check(_DRIVE_RANGES[unit], value, _DRIVE_NAMES[unit], at), unit


@dataclass
class _Ends:
    duration_s: float | None = None
    voltage_V: float | None = None
    current: float | None = None
    current_unit: str | None = None


def _parse_limit(cur: _Cursor, kind: str, ends: _Ends) -> None:
    lim_at = cur.pos
    lm = cur.expect(_LIMIT, "a limit like '2.75 V', 'C/20' or '50 mA'")
    if lm.group(1) is not None:
        divisor = float(lm.group(1))
        if divisor == 0:
            raise cur.fail("divisor must not be zero", lm.start(1))
        value, unit = 1.0 / divisor, "C"
    else:
        value, unit = float(lm.group(2)), lm.group(3)
    if unit in ("V", "mV"):
        if kind == "hold":
            raise cur.fail("a Hold step ends on current or time, not voltage", lim_at)
        if ends.voltage_V is not None:
            raise cur.fail("voltage limit given twice", lim_at)
        volts = value / (1000.0 if unit == "mV" else 1.0)
        ends.voltage_V = cur.check(CELL_VOLTAGE_V, volts, "voltage limit", lim_at)
        return
    if kind != "hold":
        raise cur.fail("a current limit applies to Hold steps only", lim_at)
    if ends.current is not None:
        raise cur.fail("current limit given twice", lim_at)
    ends.current, ends.current_unit = (value / 1000.0, "A") if unit == "mA" else (value, unit)
    rng = C_RATE if ends.current_unit == "C" else CURRENT_A
    cur.check(rng, ends.current, "current limit", lim_at)


def _parse_duration(cur: _Cursor) -> float:
    at = cur.pos
    m = cur.expect(_DURATION, "a duration like '10 minutes', '30 s' or '1 hour'")
    return cur.check(DURATION_S, seconds(m.group(1), m.group(2)), "duration", at)


def _parse_ends(cur: _Cursor, kind: str) -> _Ends:
    """The 'for DURATION' / 'until LIMIT' clauses, joined by 'or'."""
    ends = _Ends()
    first = True
    while cur.remaining():
        if not first:
            cur.expect(r"\s+or\b", "'or' between conditions")
        first = False
        clause_at = cur.pos
        if cur.take(r"\s+for\s+"):
            if ends.duration_s is not None:
                raise cur.fail("duration given twice", clause_at)
            ends.duration_s = _parse_duration(cur)
        elif cur.take(r"\s+until\s+"):
            if kind in ("rest", "run"):
                name = kind.title()
                raise cur.fail(
                    f"a {name} step ends by time only ('{name} ... for 30 minutes')", clause_at
                )
            _parse_limit(cur, kind, ends)
        else:
            raise cur.fail("expected 'for DURATION' or 'until LIMIT'")
    if kind == "rest" and ends.duration_s is None:
        raise cur.fail("a Rest step needs 'for DURATION'", cur.end)
    if kind not in ("rest", "run") and ends == _Ends():
        raise cur.fail("the step needs an end: 'for DURATION' and/or 'until LIMIT'", cur.end)
    return ends


def is_experiment_step(text: str) -> bool:
    """Whether `text` starts as an experiment step does (with one of KINDS): parse_step's
    error for it is then about that step, not about which kind of step it is."""
    return _KIND.match(text) is not None


def parse_step(text: str, *, source: str = "experiment", field: str = "step") -> Step:
    """Parse one step; InputError quotes the text and marks the column on failure."""
    if not isinstance(text, str):
        raise InputError(source, field, f"a step must be text, got {text!r}")
    cur = _Cursor(text, source, field)
    period_s = _split_period(cur)
    ambient = _split_ambient(cur)
    kind = cur.expect(_KIND, f"a step starting with {', '.join(KINDS[:-1])} or {KINDS[-1]}")
    kind_name = kind.group(1).lower()
    drive: tuple[float | None, str | None] = (None, None)
    path: str | None = None
    profile_kind = "A"
    if kind_name == "run":
        rm = cur.expect(_RUN, "a profile file or drive-cycle name after 'Run'")
        name = rm.group(1).strip("'\"")
        if not name.strip():  # `Run ''` would name the experiment's folder
            raise cur.fail(
                f"expected a profile file or drive-cycle name after 'Run', found {rm.group(1)}",
                at=rm.start(1),
            )
        path, profile_kind = name, rm.group(2) or "A"
    elif kind_name != "rest":
        drive = _parse_drive(cur, kind_name)
    ends = _parse_ends(cur, kind_name)
    return Step(
        text=text,
        kind=kind_name,
        drive=drive[0],
        drive_unit=drive[1],
        duration_s=ends.duration_s,
        voltage_cutoff_V=ends.voltage_V,
        current_cutoff=ends.current,
        current_cutoff_unit=ends.current_unit,
        period_s=period_s,
        profile_path=path,
        profile_kind=profile_kind,
        ambient_degC=ambient,
    )


# ----- experiments: cycles and termination -----------------------------------------------


@dataclass(frozen=True)
class CycleStep:
    """One entry of an expanded experiment: its cycle (from 1), position (from 0), text."""

    cycle: int
    index: int
    text: Any


def expand_cycles(entries: Any, *, source: str, field: str = "steps") -> list[CycleStep]:
    """Flatten an experiment's entries into steps with their cycle numbers.

    An entry is a step (a cycle of one, as in PyBaMM), a tuple or list of steps (one
    cycle), or a table {steps = [...], repeat = N} (N cycles; the scenario TOML form).
    The texts are returned unparsed, so scenario files can mix in their own steps.
    Errors name `field[i]` (the entry) and, for a table's keys, `field[i].KEY` (cycle_table).
    """
    if isinstance(entries, (str, Mapping)) or not isinstance(entries, Sequence):
        entries = [entries]
    if not entries:
        raise InputError(source, field, "an experiment needs at least one step")
    out: list[CycleStep] = []
    cycle = 0
    for i, entry in enumerate(entries):
        where = f"{field}[{i}]"
        steps, repeat = _cycle_entry(entry, source, where)
        if len(out) + repeat * len(steps) > MAX_STEPS:
            raise InputError(source, where, f"more than {MAX_STEPS:,} steps after repeating")
        for _ in range(repeat):
            cycle += 1
            for text in steps:
                out.append(CycleStep(cycle, len(out), text))
    return out


def _cycle_entry(entry: Any, source: str, where: str) -> tuple[list[Any], int]:
    if isinstance(entry, Mapping):
        return cycle_table(entry, source, where)
    steps = list(entry) if isinstance(entry, (tuple, list)) else [entry]
    if not steps:
        raise InputError(source, where, "a cycle needs at least one step")
    return steps, 1


def cycle_table(entry: Mapping[str, Any], source: str, where: str) -> tuple[list[Any], int]:
    """A cycle table {steps = [...], repeat = N} (an experiment's or a scenario's): its steps
    and N. Both keys are required (a table is there to repeat: one without `repeat` is a
    forgotten count, not a default); InputError names `where.KEY`."""
    unknown = sorted(set(entry) - {"steps", "repeat"})
    if unknown:
        raise InputError(
            source, f"{where}.{unknown[0]}", "unknown key of a cycle table; its keys: steps, repeat"
        )
    for key in ("steps", "repeat"):
        if key not in entry:
            raise InputError(
                source, f"{where}.{key}", "missing: a cycle table is {steps = [...], repeat = N}"
            )
    steps = entry["steps"]
    if not isinstance(steps, (list, tuple)) or not steps:
        raise InputError(
            source, f"{where}.steps", f"must be a non-empty list of steps, got {steps!r}"
        )
    repeat = entry["repeat"]
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise InputError(
            source, f"{where}.repeat", f"must be a whole number 1..{MAX_REPEAT:,}, got {repeat!r}"
        )
    return list(steps), repeat


@dataclass(frozen=True)
class Termination:
    """When a whole experiment stops, checked after each cycle (PyBaMM's termination).

    capacity: the cycle's discharged capacity at or below capacity_Ah, or below
    capacity_pct of the first cycle's; voltage: the cycle's lowest cell voltage at
    or below voltage_V; time: the experiment has run time_s.
    """

    capacity_Ah: float | None = None
    capacity_pct: float | None = None
    voltage_V: float | None = None
    time_s: float | None = None

    def reason(
        self, first_Ah: float, cycle_Ah: float, cycle_min_V: float, elapsed_s: float
    ) -> str | None:
        if self.capacity_Ah is not None and cycle_Ah <= self.capacity_Ah:
            return f"cycle capacity {cycle_Ah:.4g} Ah at or below {self.capacity_Ah:g} Ah"
        if self.capacity_pct is not None and cycle_Ah <= self.capacity_pct / 100 * first_Ah:
            pct = 100 * cycle_Ah / first_Ah if first_Ah > 0 else 0.0
            return (
                f"cycle capacity {pct:.1f} % of the first cycle's, "
                f"at or below {self.capacity_pct:g} %"
            )
        if self.voltage_V is not None and cycle_min_V <= self.voltage_V:
            return f"cell voltage {cycle_min_V:.4g} V at or below {self.voltage_V:g} V"
        if self.time_s is not None and elapsed_s >= self.time_s:
            return f"experiment time {elapsed_s:g} s reached {self.time_s:g} s"
        return None


_CAPACITY = re.compile(rf"\s*{_NUM}\s*(%|Ah|A\.h|mAh)\s*(capacity)?\s*", re.IGNORECASE)
_TERM_VOLTAGE = re.compile(rf"\s*{_NUM}\s*(V|mV)\s*")
_TERM_TIME = re.compile(rf"\s*{DURATION}\s*", re.IGNORECASE)


def parse_termination(
    texts: Any, *, source: str = "experiment", field: str = "termination"
) -> Termination:
    """'80% capacity', '2.0 Ah capacity' (or '2.0 Ah'), '2.5 V', '2 days'; one text or a list."""
    if texts is None:
        return Termination()
    items = [texts] if isinstance(texts, str) else list(texts)
    found: dict[str, float] = {}
    for i, text in enumerate(items):
        where = field if len(items) == 1 else f"{field}[{i}]"
        if not isinstance(text, str):
            raise InputError(source, where, f"must be text, got {text!r}")
        key, value = _termination_item(text, source, where)
        family = key.split("_")[0]
        if any(k.split("_")[0] == family for k in found):
            raise InputError(source, where, f"{text!r}: a {family} condition given twice")
        found[key] = value
    return Termination(**found)


def _termination_item(text: str, source: str, where: str) -> tuple[str, float]:
    if m := _CAPACITY.fullmatch(text):
        value, unit = float(m.group(1)), m.group(2).lower()
        if unit == "%":
            return "capacity_pct", Range(0, 100, "%", lo_open=True).check(value, source, where)
        amp_hours = value / 1000.0 if unit == "mah" else value
        return "capacity_Ah", Range(0, 10_000, "Ah", lo_open=True).check(amp_hours, source, where)
    if m := _TERM_VOLTAGE.fullmatch(text):
        volts = float(m.group(1)) / (1000.0 if m.group(2) == "mV" else 1.0)
        return "voltage_V", CELL_VOLTAGE_V.check(volts, source, where)
    if m := _TERM_TIME.fullmatch(text):
        return "time_s", DURATION_S.check(seconds(m.group(1), m.group(2)), source, where)
    raise InputError(
        source,
        where,
        f"cannot read {text!r}: expected '80% capacity', '2.0 Ah capacity', '2.5 V' or '2 days'",
    )


@dataclass(frozen=True)
class Experiment:
    """Parsed steps, the cycle (from 1) each belongs to, and the experiment's termination.

    source: where the steps were read (a file, or the option `--experiment`); errors found
    when the experiment runs (a Run step's profile, too many rows) name it, as its parse
    errors do.
    """

    steps: tuple[Step, ...]
    cycles: tuple[int, ...]
    termination: Termination = Termination()
    source: str = "experiment"

    @classmethod
    def of_steps(cls, steps: Sequence[Step]) -> Experiment:
        """Steps as in PyBaMM's plain list: each its own cycle."""
        return cls(tuple(steps), tuple(range(1, len(steps) + 1)))


def parse_experiment(
    entries: Any, *, termination: Any = None, source: str = "experiment"
) -> Experiment:
    """Parse steps and cycles (see expand_cycles); errors name the step by its 1-based number."""
    flat = expand_cycles(entries, source=source)
    steps = tuple(parse_step(e.text, source=source, field=f"step {e.index + 1}") for e in flat)
    return Experiment(
        steps=steps,
        cycles=tuple(e.cycle for e in flat),
        termination=parse_termination(termination, source=source),
        source=source,
    )


# ----- running a step -------------------------------------------------------------------


def _pack_line(model: PackModel) -> tuple[float, float]:
    """The pack voltage right after switching to a current I is a - b I (b: the pack's R0)."""
    a = float(model.terminal_voltage_V(0.0).sum())
    return a, a - float(model.terminal_voltage_V(1.0).sum())


def _power_current_A(model: PackModel, power_W: float) -> float:
    """The series current that moves power_W (positive discharge) right after switching.

    P = I (a - b I): the smaller root on discharge, written so it stays exact for small
    b; beyond the pack's maximum power (a^2 / 4b) the current of that maximum (which the
    guard rails will refuse).
    """
    a, b = _pack_line(model)
    if power_W >= 0.0:
        disc = a * a - 4.0 * b * power_W
        return 2.0 * power_W / (a + disc**0.5) if disc >= 0.0 else a / (2.0 * b)
    return 2.0 * power_W / (a + (a * a - 4.0 * b * power_W) ** 0.5)


class StepController:
    """Progress of one step: the series current it demands and when it is done.

    A loop calls next_dt_s(), demand_current_A(model, dt), advances its cells,
    then advance(dt) and finished(cell voltages, current). The model is only
    read (pack voltage for W and Ohm drives, cv_current_A for holds). A loop that
    honours step temperatures sets the model's ambient to ambient_degC (when not
    None) for the step. Within a profile the periods never span a profile row
    boundary and are at most period_s long, so long rows are sampled at the period.
    A loop may also call these with sub-steps that add up to a period. A step
    without a duration ends after MAX_STEP_PERIODS periods at the latest.

    A step that cannot run as written (its period, its length, the profile it names) is a
    StepError naming `source` and `field`; an error inside the profile names that file.
    """

    def __init__(
        self,
        step: Step,
        capacity_Ah: float,
        *,
        period_s: float = 1.0,
        base_dir: str | Path | None = None,
        profile: Profile | None = None,
        source: str = "experiment",
        field: str = "step",
    ) -> None:
        self.step = step
        self.capacity_Ah = capacity_Ah
        self.period_s = step.period_s if step.period_s is not None else period_s
        if not PERIOD_S.contains(self.period_s):
            raise StepError(source, field, PERIOD_S.outside(self.period_s, "period"))
        self.ambient_degC = step.ambient_degC
        self.elapsed_s = 0.0
        self.reason: str | None = None
        self._row = 0
        self._in_row_s = 0.0
        self.profile: Profile | None = profile
        if step.kind == "run" and profile is None:
            path = resolve_profile(step.profile_path or "", base_dir, source, field)
            self.profile = load_profile(path, step.profile_kind)
        self.time_limit_s = self._time_limit()
        # True when an until-only step's own time limit was cut to MAX_STEP_PERIODS.
        self.capped = False
        # The step's `until` condition ("4.2 V") when its time ran out first (finished).
        self.until_unmet: str | None = None
        if self.time_limit_s / self.period_s > MAX_STEP_PERIODS:
            if step.duration_s is not None or self.profile is not None:
                raise StepError(
                    source,
                    field,
                    f"{step.text!r} lasts {self.time_limit_s:g} s, more than "
                    f"{MAX_STEP_PERIODS:,} periods of {self.period_s:g} s; give a longer period",
                )
            # An until-only step cannot be refused up front (its cut-off may come
            # early), so it ends at the cap instead of running for days of rows.
            self.time_limit_s = MAX_STEP_PERIODS * self.period_s
            self.capped = True

    def _time_limit(self) -> float:
        s = self.step
        if s.duration_s is not None:
            return s.duration_s
        if self.profile is not None:
            return self.profile.span_s
        if s.kind in ("charge", "discharge") and s.drive_unit in ("A", "C") and s.drive:
            hours = self.capacity_Ah / abs(s.current_A(self.capacity_Ah))
            return max(2.0 * hours * 3600.0, MIN_TIME_LIMIT_S)
        return HOLD_TIME_LIMIT_S

    def next_dt_s(self) -> float:
        """Length of the next period (0 when the step's time is up)."""
        left = self.time_limit_s - self.elapsed_s
        if left <= 1e-9 * max(1.0, self.time_limit_s):
            return 0.0
        dt = min(self.period_s, left)
        if self.profile is not None:
            t = self.profile.t_s
            dt = min(dt, float(t[self._row + 1] - t[self._row]) - self._in_row_s)
        return dt

    def demand_current_A(self, model: PackModel, dt_s: float) -> float:
        """Series current (positive discharge) this step asks for over the next dt_s."""
        s = self.step
        if s.kind == "rest":
            return 0.0
        if self.profile is not None:
            value = float(self.profile.values[self._row])
            return self._profile_current(model, value, dt_s)
        if s.kind == "hold":
            assert s.drive is not None
            return model.cv_current_A(s.drive, dt_s)
        if s.drive_unit == "W":
            assert s.drive is not None
            return _power_current_A(model, -s.drive if s.kind == "charge" else s.drive)
        if s.drive_unit == "Ohm":
            assert s.drive is not None
            a, b = _pack_line(model)
            return a / (s.drive + b)
        return s.current_A(self.capacity_Ah)

    def _profile_current(self, model: PackModel, value: float, dt_s: float) -> float:
        kind = self.profile.kind if self.profile is not None else "A"
        if kind == "V":
            return model.cv_current_A(value, dt_s)
        if kind == "W":
            return _power_current_A(model, value)
        return value

    def advance(self, dt_s: float) -> None:
        self.elapsed_s += dt_s
        if self.profile is None:
            return
        t = self.profile.t_s
        self._in_row_s += dt_s
        if self._in_row_s >= float(t[self._row + 1] - t[self._row]) - 1e-9:
            self._row += 1
            self._in_row_s = 0.0
            if self._row >= len(t) - 1:
                self._row = 0  # "for DURATION" longer than the profile repeats it

    def finished(self, v_cells_V: np.ndarray, current_A: float) -> str | None:
        """Why the step is over after the last period, or None to go on."""
        s = self.step
        v_cut = s.voltage_cutoff_V
        if v_cut is not None:
            hit_top = s.kind == "charge" and float(np.max(v_cells_V)) >= v_cut - 1e-9
            hit_bottom = s.kind == "discharge" and float(np.min(v_cells_V)) <= v_cut + 1e-9
            if hit_top or hit_bottom:
                self.reason = f"voltage reached {v_cut:g} V"
        cut = s.current_cutoff_A(self.capacity_Ah)
        if self.reason is None and cut is not None and abs(current_A) <= cut:
            # The measured current: one period can take it far below the cut-off.
            self.reason = f"current fell to {abs(current_A):.5g} A (cut-off {cut:g} A)"
        if self.reason is None and self.next_dt_s() <= 0.0:
            self.reason = self.time_up_reason()
        return self.reason

    def time_up_reason(self) -> str:
        """Why the step ended when its time ran out: its stated duration, or the time limit
        of an until-only step (MIN_TIME_LIMIT_S, HOLD_TIME_LIMIT_S, MAX_STEP_PERIODS), and
        its `until` condition not reached (also kept in until_unmet)."""
        if self.capped:
            why = f"step limit of {MAX_STEP_PERIODS:,} periods"
        elif self.step.duration_s is not None or self.step.kind == "run":
            why = "duration elapsed"
        else:
            why = f"time limit of {_duration_text(self.time_limit_s)}"
        self.until_unmet = self.step.until_text()
        return why if self.until_unmet is None else f"{why}, {self.until_unmet} not reached"


def _duration_text(duration_s: float) -> str:
    """'4 h', '90 min', '20 s'."""
    if duration_s >= 3600.0:
        return f"{duration_s / 3600.0:.4g} h"
    if duration_s >= 60.0:
        return f"{duration_s / 60.0:.4g} min"
    return f"{duration_s:.4g} s"

"""Experiment steps in PyBaMM's text syntax, and what each step demands.

    Discharge at 1C until 2.75 V
    Discharge at 2 A for 10 minutes or until 3.0 V
    Charge at 0.5C until 4.2 V (10 second period)
    Discharge at 5 W for 1 hour
    Hold at 4.2 V until C/20
    Rest for 30 minutes
    Run PROFILE.csv

Currents are positive on discharge. Voltages in steps are cell voltages: a
charge or hold step watches the highest cell, a discharge the lowest. A power
(W) is the pack's, converted with the pack voltage at the start of each
period. parse_step() turns text into a Step; StepController holds one step's
progress and answers "what series current now?" (demand_current_A) and "done?"
(finished), so the model-only runner here and the host's emulator share the
step semantics while owning their own loops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cellmodel.errors import InputError
from cellmodel.quantities import DURATION, NUMBER, TIME_UNIT, seconds

if TYPE_CHECKING:
    from cellmodel.pack import PackModel
    from cellmodel.profile import Profile

_NUM = NUMBER
_DURATION = re.compile(DURATION, re.IGNORECASE)
_DRIVE = re.compile(rf"C\s*/\s*{_NUM}(?![A-Za-z0-9.])|{_NUM}\s*(mA|A|C|mW|W)(?![A-Za-z])")
_VOLTAGE = re.compile(rf"{_NUM}\s*(mV|V)(?![A-Za-z])")
_LIMIT = re.compile(rf"C\s*/\s*{_NUM}(?![A-Za-z0-9.])|{_NUM}\s*(mV|V|mA|A|C)(?![A-Za-z])")
_PERIOD = re.compile(rf"\(\s*{_NUM}\s*{TIME_UNIT}\s+period\s*\)\s*$", re.IGNORECASE)
_KIND = re.compile(r"\s*(discharge|charge|hold|rest|run)\b", re.IGNORECASE)

# Until-only steps stop here at the latest, so a cutoff the cell never reaches
# cannot hang a run: twice the time to move the full capacity, at least 1 h.
MIN_TIME_LIMIT_S = 3600.0


@dataclass(frozen=True)
class Step:
    """One parsed experiment step. drive_unit: "A", "C", "W" or "V" (hold); None for rest/run."""

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

    def current_A(self, capacity_Ah: float) -> float:
        """Series current for A and C drives, positive on discharge (0 for rest)."""
        if self.kind == "rest":
            return 0.0
        if self.drive is None or self.drive_unit not in ("A", "C"):
            raise ValueError(f"step {self.text!r} has no fixed current")
        amps = self.drive * (capacity_Ah if self.drive_unit == "C" else 1.0)
        return -amps if self.kind == "charge" else amps

    def current_cutoff_A(self, capacity_Ah: float) -> float | None:
        if self.current_cutoff is None:
            return None
        return self.current_cutoff * (capacity_Ah if self.current_cutoff_unit == "C" else 1.0)


class _Cursor:
    def __init__(self, text: str, source: str, field: str) -> None:
        self.text = text
        self.pos = 0
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
        m = rx.match(self.text, self.pos)
        if m:
            self.pos = m.end()
        return m

    def expect(self, pattern: re.Pattern[str] | str, what: str) -> re.Match[str]:
        m = self.take(pattern)
        if m is None:
            rest = self.text[self.pos :].split()
            found = rest[0] if rest else ""
            raise self.fail(f"expected {what}" + (f", found {found!r}" if found else ""))
        return m


def _number(m: re.Match[str], group: int) -> float:
    return float(m.group(group))


def _parse_drive(cur: _Cursor) -> tuple[float, str]:
    m = cur.expect(_DRIVE, "a current or power like '1C', 'C/2', '2 A', '500 mA' or '5 W'")
    if m.group(1) is not None:
        return 1.0 / _nonzero(cur, _number(m, 1), m.start(1)), "C"
    value, unit = _number(m, 2), m.group(3)
    if unit == "mA":
        return value / 1000.0, "A"
    if unit == "mW":
        return value / 1000.0, "W"
    return value, unit


def _nonzero(cur: _Cursor, value: float, at: int) -> float:
    if value == 0:
        raise cur.fail("divisor must not be zero", at)
    return value


def _parse_duration(cur: _Cursor) -> float:
    m = cur.expect(_DURATION, "a duration like '10 minutes', '30 s' or '1 hour'")
    return seconds(m.group(1), m.group(2))


def parse_step(text: str, *, source: str = "experiment", field: str = "step") -> Step:
    """Parse one step; InputError quotes the text and marks the column on failure."""
    if not isinstance(text, str):
        raise InputError(source, field, f"a step must be text, got {text!r}")
    body = text.rstrip()
    period_s: float | None = None
    pm = _PERIOD.search(body)
    if pm:
        period_s = seconds(pm.group(1), pm.group(2))
        if period_s <= 0:
            raise _Cursor(text, source, field).fail("period must be positive", pm.start(1))
        body = body[: pm.start()].rstrip()
    elif "period" in body.lower():
        at = body.lower().rfind("(")
        raise _Cursor(text, source, field).fail(
            "expected a period like '(1 second period)' at the end", max(at, 0)
        )
    cur = _Cursor(body, source, field)
    cur.text = text  # report columns against the full text
    cur_end = len(body)
    km = cur.expect(_KIND, "a step starting with Discharge, Charge, Hold, Rest or Run")
    kind = km.group(1).lower()

    def remaining() -> bool:
        return bool(text[cur.pos : cur_end].strip())

    if kind == "run":
        m = cur.expect(r"\s+(\S.*)", "a profile file after 'Run'")
        path = text[m.start(1) : cur_end].strip().strip("'\"")
        if period_s is not None:
            raise cur.fail("a Run step takes its times from the profile; drop the period", cur_end)
        return Step(text=text, kind="run", profile_path=path)

    drive: float | None = None
    unit: str | None = None
    if kind in ("discharge", "charge"):
        cur.expect(r"\s+at\s+", "'at' and a current")
        drive, unit = _parse_drive(cur)
    elif kind == "hold":
        cur.expect(r"\s+at\s+", "'at' and a voltage")
        vm = cur.expect(_VOLTAGE, "a voltage like '4.2 V'")
        drive = _number(vm, 1) / (1000.0 if vm.group(2) == "mV" else 1.0)
        unit = "V"

    duration_s: float | None = None
    v_cut: float | None = None
    i_cut: float | None = None
    i_cut_unit: str | None = None
    first = True
    while remaining():
        if not first:
            cur.expect(r"\s+or\b", "'or' between conditions")
        first = False
        clause_at = cur.pos
        if cur.take(r"\s+for\s+"):
            if duration_s is not None:
                raise cur.fail("duration given twice", clause_at)
            duration_s = _parse_duration(cur)
        elif cur.take(r"\s+until\s+"):
            if kind == "rest":
                raise cur.fail("a Rest step ends by time only ('Rest for 30 minutes')", clause_at)
            lim_at = cur.pos
            lm = cur.expect(_LIMIT, "a limit like '2.75 V', 'C/20' or '50 mA'")
            if lm.group(1) is not None:
                value, lunit = 1.0 / _nonzero(cur, _number(lm, 1), lm.start(1)), "C"
            else:
                value, lunit = _number(lm, 2), lm.group(3)
            if lunit in ("V", "mV"):
                if kind == "hold":
                    raise cur.fail("a Hold step ends on current or time, not voltage", lim_at)
                if v_cut is not None:
                    raise cur.fail("voltage limit given twice", lim_at)
                v_cut = value / (1000.0 if lunit == "mV" else 1.0)
            else:
                if kind != "hold":
                    raise cur.fail("a current limit applies to Hold steps only", lim_at)
                if i_cut is not None:
                    raise cur.fail("current limit given twice", lim_at)
                i_cut, i_cut_unit = (value / 1000.0, "A") if lunit == "mA" else (value, lunit)
        else:
            raise cur.fail("expected 'for DURATION' or 'until LIMIT'")
    if kind == "rest" and duration_s is None:
        raise cur.fail("a Rest step needs 'for DURATION'", cur_end)
    if kind != "rest" and duration_s is None and v_cut is None and i_cut is None:
        raise cur.fail("the step needs an end: 'for DURATION' and/or 'until LIMIT'", cur_end)
    return Step(
        text=text,
        kind=kind,
        drive=drive,
        drive_unit=unit,
        duration_s=duration_s,
        voltage_cutoff_V=v_cut,
        current_cutoff=i_cut,
        current_cutoff_unit=i_cut_unit,
        period_s=period_s,
    )


def parse_experiment(
    steps: list[str] | tuple[str, ...], *, source: str = "experiment"
) -> list[Step]:
    """Parse a list of step texts; errors name the step by its 1-based number."""
    if isinstance(steps, str):
        steps = [steps]
    if not steps:
        raise InputError(source, "steps", "an experiment needs at least one step")
    return [parse_step(t, source=source, field=f"step {i + 1}") for i, t in enumerate(steps)]


class StepController:
    """Progress of one step: the series current it demands and when it is done.

    A loop calls next_dt_s(), demand_current_A(model, dt), advances its cells,
    then advance(dt) and finished(cell voltages, current). The model is only
    read (pack voltage for W drives, cv_current_A for holds).
    """

    def __init__(
        self,
        step: Step,
        capacity_Ah: float,
        *,
        period_s: float = 1.0,
        base_dir: str | Path | None = None,
        profile: Profile | None = None,
    ) -> None:
        self.step = step
        self.capacity_Ah = capacity_Ah
        self.period_s = step.period_s if step.period_s is not None else period_s
        self.elapsed_s = 0.0
        self.reason: str | None = None
        self._row = 0
        self.profile: Profile | None = profile
        if step.kind == "run" and profile is None:
            from cellmodel.profile import load_profile

            path = Path(step.profile_path or "")
            if base_dir is not None and not path.is_absolute():
                path = Path(base_dir) / path
            self.profile = load_profile(path)
        self.time_limit_s = self._time_limit()

    def _time_limit(self) -> float:
        s = self.step
        if s.duration_s is not None:
            return s.duration_s
        if self.profile is not None:
            return float(self.profile.t_s[-1] - self.profile.t_s[0])
        if s.kind in ("charge", "discharge") and s.drive_unit in ("A", "C") and s.drive:
            hours = self.capacity_Ah / abs(s.current_A(self.capacity_Ah))
            return max(2.0 * hours * 3600.0, MIN_TIME_LIMIT_S)
        return 24 * 3600.0

    def next_dt_s(self) -> float:
        """Length of the next period (0 when the step's time is up)."""
        if self.profile is not None:
            t = self.profile.t_s
            if self._row >= len(t) - 1:
                return 0.0
            return float(t[self._row + 1] - t[self._row])
        return max(0.0, min(self.period_s, self.time_limit_s - self.elapsed_s))

    def demand_current_A(self, model: PackModel, dt_s: float) -> float:
        """Series current (positive discharge) this step asks for over the next dt_s."""
        s = self.step
        if s.kind == "rest":
            return 0.0
        if self.profile is not None:
            return float(self.profile.current_A[self._row])
        if s.kind == "hold":
            assert s.drive is not None
            return model.cv_current_A(s.drive, dt_s)
        if s.drive_unit == "W":
            assert s.drive is not None
            amps = s.drive / max(model.pack_v_V, 1e-3)
            return -amps if s.kind == "charge" else amps
        return s.current_A(self.capacity_Ah)

    def advance(self, dt_s: float) -> None:
        self.elapsed_s += dt_s
        self._row += 1

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
            self.reason = f"current fell to {cut:g} A"
        if self.reason is None and self.next_dt_s() <= 0.0:
            self.reason = (
                "duration elapsed"
                if s.duration_s is not None or s.kind == "run"
                else ("time limit")
            )
        return self.reason

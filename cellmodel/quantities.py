"""The quantity grammar shared by experiment steps and scenario steps, and plausible ranges.

One place says what "10 minutes", "2 days" or "-5 mA" mean, so "Rest for 5 mins"
(cellmodel.experiment) and "Drop link for 5 mins" (host.scenarios) read alike.
Patterns here are regex fragments with capture groups, meant to be embedded in a
step's own pattern; `seconds()` converts what they captured.

Every quantity a user can give has a plausible range here (a Range); a value
outside it (or not finite) is bad input: InputError naming the field, exit 2.
docs/internals.md lists them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from cellmodel.errors import InputError

# An unsigned decimal ("10", "0.5", ".5", "2.", and as Python and TOML write them "1e6",
# "2.5E-3": "1e6 W" is a power its range refuses, not an unreadable word), one capture group.
_EXPONENT = r"(?:[eE][-+]?\d+)?"
NUMBER = rf"((?:\d+(?:\.\d*)?|\.\d+){_EXPONENT})"
# A decimal that may carry a sign ("-5", "+20.5", "-1e3"), one capture group.
SIGNED_NUMBER = rf"([-+]?(?:\d+(?:\.\d*)?|\.\d+){_EXPONENT})"

TIME_UNITS_S: dict[str, float] = {
    "ms": 1e-3,
    "millisecond": 1e-3,
    "milliseconds": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,  # PyBaMM's short form
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "day": 86400.0,
    "days": 86400.0,
}
# Longest first, so "mins" is not read as "min" + "s".
TIME_UNIT = "(" + "|".join(sorted(TIME_UNITS_S, key=len, reverse=True)) + ")"
# "10 minutes", "1.5h": groups (number, unit). Not followed by a letter, so "5 sec" is not
# read out of "5 seconds" and "2 h" not out of "2 hz".
DURATION = rf"{NUMBER}\s*{TIME_UNIT}(?![A-Za-z])"
# The same with a sign, for grammars that reject negative durations with a clear reason
# instead of failing to match.
SIGNED_DURATION = rf"{SIGNED_NUMBER}\s*{TIME_UNIT}(?![A-Za-z])"

_DURATION_RE = re.compile(rf"\s*{SIGNED_DURATION}\s*", re.IGNORECASE)


def seconds(value: str | float, unit: str) -> float:
    """A captured number and time unit in seconds."""
    return float(value) * TIME_UNITS_S[unit.lower()]


def parse_duration_s(text: str) -> float:
    """A whole text like "5 mins" in seconds; ValueError saying what was expected."""
    m = _DURATION_RE.fullmatch(text)
    if not m:
        raise ValueError(f"expected a duration like '10 minutes', '30 s' or '2 days', got {text!r}")
    return seconds(m.group(1), m.group(2))


# A temperature as PyBaMM writes it in steps ("25oC", "-5 oC") or as we name units:
# groups (number, unit).
TEMPERATURE = rf"{SIGNED_NUMBER}\s*(oC|degC|°C|K)(?![A-Za-z])"


def celsius(value: str | float, unit: str) -> float:
    """A captured temperature in degC."""
    return float(value) - 273.15 if unit == "K" else float(value)


@dataclass(frozen=True)
class Range:
    """A plausible range: lo <= value <= hi (lo excluded when lo_open)."""

    lo: float
    hi: float
    unit: str
    lo_open: bool = False
    note: str = ""  # the bounds in words, e.g. "366 days"

    def describe(self) -> str:
        left = "(" if self.lo_open else "["
        note = f" ({self.note})" if self.note else ""
        return f"{left}{self.lo:g}, {self.hi:g}] {self.unit}{note}"

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        return above and value <= self.hi

    def outside(self, value: float, what: str = "") -> str:
        """The reason `value` (of `what`) is refused: "period 0 s is outside [...]"; a NaN
        is no value at all, so it is not said to lie outside a range."""
        name = f"{what} " if what else ""
        if math.isnan(value):
            return f"{name}{value:g} is not a number (wanted {self.describe()})"
        return f"{name}{value:g} {self.unit} is outside {self.describe()}"

    def check(self, value: float, source: str, field: str, what: str = "") -> float:
        """value if plausible, else InputError(source, field, reason)."""
        if not self.contains(value):
            raise InputError(source, field, self.outside(value, what))
        return float(value)


YEAR_S = 366 * 86400.0
# Plausible ranges of what users give (steps, profiles, command-line options).
DURATION_S = Range(0.0, YEAR_S, "s", lo_open=True, note="up to 366 days")  # a step, a profile
PERIOD_S = Range(1e-3, 3600.0, "s")  # the sample period of a simulation or a step
CURRENT_A = Range(0.0, 1000.0, "A", lo_open=True)  # a step's series current
PROFILE_CURRENT_A = Range(-1000.0, 1000.0, "A")  # one row of a current profile
C_RATE = Range(0.0, 50.0, "C", lo_open=True)
POWER_W = Range(0.0, 100_000.0, "W", lo_open=True)
PROFILE_POWER_W = Range(-100_000.0, 100_000.0, "W")
RESISTANCE_OHM = Range(1e-3, 1e4, "Ohm")  # a resistive load
CELL_VOLTAGE_V = Range(0.5, 6.0, "V")  # a hold, a cut-off, a voltage profile row
AMBIENT_DEGC = Range(-40.0, 80.0, "degC")  # as the scenario's ambient_degC
SOC = Range(0.0, 1.0, "(SOC)")

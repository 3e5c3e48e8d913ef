"""The quantity grammar shared by experiment steps and scenario steps.

One place says what "10 minutes", "2 days" or "-5 mA" mean, so "Rest for 5 mins"
(cellmodel.experiment) and "Drop link for 5 mins" (host.scenarios) read alike.
Patterns here are regex fragments with capture groups, meant to be embedded in a
step's own pattern; `seconds()` converts what they captured.
"""

from __future__ import annotations

import re

# An unsigned decimal ("10", "0.5", ".5", "2."), one capture group.
NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
# A decimal that may carry a sign ("-5", "+20.5"), one capture group.
SIGNED_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))"

TIME_UNITS_S: dict[str, float] = {
    "ms": 1e-3,
    "millisecond": 1e-3,
    "milliseconds": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
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

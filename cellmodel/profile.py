"""Profiles: CSV files of time and current (or voltage, or power) over time.

A profile drives a `Run` step or `sisnbms simulate --profile`. Row k's value
holds from t_k to t_(k+1); the last row's value has no interval of its own. A BDF
file is a log, not a schedule: its row k is a sample taken at the end of the interval
from t_(k-1), under the current that flowed through it (as sisnbms writes its rows),
so its values are moved one row earlier on reading and a written run replays exactly.
Lines starting with '#' are comments; times must rise strictly; errors name the
line. The header row names the columns, in any of three conventions (names are
matched without regard to case; other columns are ignored, so a BDF file written
by sisnbms can be replayed; a header that names the time or the value twice is
refused):

    ours     time_s,        current_A | voltage_V | power_W    positive on discharge
    PyBaMM   Time [s],      Current [A] | Voltage [V] | Power [W]    positive on discharge
    BDF      Test Time / s, Current / A | Voltage / V | Power / W    positive on CHARGE

BDF's current and power are positive on charge (Battery Data Format 1.0); they
are negated on reading, so a Profile's values are always positive on discharge.
PyBaMM's shipped drive cycles have no header row but name their columns in the
last comment line ("# time [s],current [A]"); that is accepted too. Voltages
are cell voltages.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellmodel.errors import InputError, StepError
from cellmodel.files import PROFILE_CAP, input_file_problem, read_text
from cellmodel.quantities import (
    CELL_VOLTAGE_V,
    DURATION_S,
    PROFILE_CURRENT_A,
    PROFILE_POWER_W,
    Range,
)

KINDS = {"A": "current", "V": "voltage", "W": "power"}
_BDF_TIME = "test time / s"
_TIME_NAMES = ("time_s", "time [s]", _BDF_TIME)
# kind -> column name -> sign that makes it positive on discharge
_VALUE_NAMES: dict[str, dict[str, float]] = {
    "A": {"current_a": 1.0, "current [a]": 1.0, "current / a": -1.0},
    "V": {"voltage_v": 1.0, "voltage [v]": 1.0, "voltage / v": 1.0},
    "W": {"power_w": 1.0, "power [w]": 1.0, "power / w": -1.0},
}
_RANGES: dict[str, Range] = {"A": PROFILE_CURRENT_A, "V": CELL_VOLTAGE_V, "W": PROFILE_POWER_W}
# A profile of a year at one-second rows is 31.6 M rows; a million is a week at 0.6 s.
MAX_ROWS = 2_000_000


@dataclass(frozen=True)
class Profile:
    """Times (s) and values: current (A) or power (W) positive on discharge, or cell voltage (V)."""

    source: str
    t_s: np.ndarray
    values: np.ndarray
    kind: str = "A"

    @property
    def current_A(self) -> np.ndarray:
        if self.kind != "A":
            raise ValueError(f"{self.source} is a {KINDS[self.kind]} profile")
        return self.values

    @property
    def span_s(self) -> float:
        return float(self.t_s[-1] - self.t_s[0])


_EXAMPLES = {
    "A": "'time_s,current_A', 'Time [s],Current [A]' or 'Test Time / s,Current / A'",
    "V": "'time_s,voltage_V', 'Time [s],Voltage [V]' or 'Test Time / s,Voltage / V'",
    "W": "'time_s,power_W', 'Time [s],Power [W]' or 'Test Time / s,Power / W'",
}


def _columns(cells: list[str], kind: str) -> tuple[int, int, float, bool] | None:
    """(time column, value column, sign, a BDF log) if the row is a header naming both,
    else None."""
    names = [c.strip().lower() for c in cells]
    t_col = next((i for i, n in enumerate(names) if n in _TIME_NAMES), None)
    v = next(
        ((i, _VALUE_NAMES[kind][n]) for i, n in enumerate(names) if n in _VALUE_NAMES[kind]), None
    )
    if t_col is None or v is None:
        return None
    return t_col, v[0], v[1], names[t_col] == _BDF_TIME


def _no_second_column(cells: list[str], kind: str, src: str, lineno: int) -> None:
    """InputError if the header names the time or the value twice (`time_s,current_A,
    Current [A]`): which one is meant cannot be told, and reading the first would run a
    profile the file may not mean."""
    names = [c.strip().lower() for c in cells]
    for what, known in (("time", _TIME_NAMES), (KINDS[kind], _VALUE_NAMES[kind])):
        found = [c for c, n in zip(cells, names, strict=True) if n in known]
        if len(found) > 1:
            raise InputError(
                src,
                f"line {lineno}",
                f"names the {what} column {len(found)} times ({', '.join(found)}): keep one",
            )


def _is_numeric(cells: list[str]) -> bool:
    try:
        [float(c) for c in cells]
    except ValueError:
        return False
    return True


def _decode(path: Path, src: str) -> str:
    return read_text(path, src, cap=PROFILE_CAP)


class _Reader:
    """Rows of one profile file, checked as they come."""

    def __init__(self, src: str, kind: str) -> None:
        self.src = src
        self.kind = kind
        self.cols: tuple[int, int, float, bool] | None = None
        self.width = 0
        self.comment_cols: tuple[int, int, float, bool] | None = None
        self.times: list[float] = []
        self.values: list[float] = []

    def line(self, lineno: int, row: list[str]) -> None:
        if not row or not "".join(row).strip():
            return
        if row[0].lstrip().startswith("#"):
            # PyBaMM's drive cycles name their columns in a comment: "# time [s],current [A]"
            first = row[0].lstrip()[1:]
            self.comment_cols = _columns([first, *row[1:]], self.kind) or self.comment_cols
            return
        cells = [c.strip() for c in row]
        if self.cols is None:
            self._header(lineno, cells)
            if self.cols is not None and not _is_numeric(cells):
                return
        self._data(lineno, cells)

    def _header(self, lineno: int, cells: list[str]) -> None:
        if _is_numeric(cells) and self.comment_cols is not None:
            self.cols, self.width = self.comment_cols, len(cells)
            return
        self.cols, self.width = _columns(cells, self.kind), len(cells)
        _no_second_column(cells, self.kind, self.src, lineno)
        if self.cols is None:
            raise InputError(
                self.src,
                f"line {lineno}",
                f"header must name the time and {KINDS[self.kind]} columns, e.g. "
                f"{_EXAMPLES[self.kind]}; got {','.join(cells)!r}",
            )

    def _data(self, lineno: int, cells: list[str]) -> None:
        assert self.cols is not None
        where = f"line {lineno}"
        if len(cells) != self.width:
            raise InputError(self.src, where, f"expected {self.width} values, got {len(cells)}")
        t_col, v_col, sign, _ = self.cols
        try:
            t, value = float(cells[t_col]), sign * float(cells[v_col])
        except ValueError:
            raise InputError(self.src, where, f"not a number in {','.join(cells)!r}") from None
        if not (math.isfinite(t) and math.isfinite(value)):
            raise InputError(self.src, where, "values must be finite")
        _RANGES[self.kind].check(value, self.src, where, KINDS[self.kind])
        if self.times and t <= self.times[-1]:
            raise InputError(
                self.src, where, f"time {t:g} s does not rise after {self.times[-1]:g} s"
            )
        if len(self.times) >= MAX_ROWS:
            raise InputError(self.src, where, f"more than {MAX_ROWS:,} rows")
        self.times.append(t)
        self.values.append(value)


def load_profile(path: str | Path, kind: str = "A") -> Profile:
    """Read a profile of `kind`: "A" current, "V" cell voltage or "W" power (InputError if bad)."""
    src = str(path)
    reader = _Reader(src, kind)
    for lineno, row in enumerate(csv.reader(_decode(Path(path), src).splitlines()), start=1):
        reader.line(lineno, row)
    if reader.cols is None:
        raise InputError(src, "line 1", f"empty profile: need a header like {_EXAMPLES[kind]}")
    if len(reader.times) < 2:
        raise InputError(src, "rows", "a profile needs at least 2 rows")
    t = np.asarray(reader.times)
    DURATION_S.check(float(t[-1] - t[0]), src, "rows", "the profile spans")
    values = np.asarray(reader.values)
    if reader.cols[3]:  # a log: the interval up to row k ran at row k's value
        values = np.append(values[1:], values[-1])
    return Profile(source=src, t_s=t, values=values, kind=kind)


def resolve_profile(spec: str, base_dir: str | Path | None, source: str, field: str) -> Path:
    """The file a Run step names: a path (relative to base_dir), or a bare name like US06
    for NAME.csv in base_dir (PyBaMM's "Run US06 (A)"). StepError (an InputError: the step
    as written is at fault) if it does not exist or is not a regular file (a folder, a device
    such as /dev/zero, a FIFO)."""
    path = Path(spec)
    bare = path.suffix == "" and len(path.parts) == 1
    if bare:
        path = path.with_suffix(".csv")
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    if path.is_file():
        return path
    if path.exists():  # a folder, a device, a FIFO: there, but not a file to read
        problem = input_file_problem(path)
        if problem is not None:
            raise StepError(source, field, problem)
    what = f"drive cycle {spec!r}: no file {path}" if bare else f"no profile file {path}"
    hint = " (a name without .csv means NAME.csv beside the experiment or scenario)" if bare else ""
    raise StepError(source, field, what + hint)

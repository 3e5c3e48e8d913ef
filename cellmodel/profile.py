"""Current profiles: CSV files with columns time_s,current_A.

Current is positive on discharge. Row k's current holds from t_k to t_(k+1);
the last row's current has no interval of its own. Lines starting with '#'
are comments. Times must rise strictly; errors name the line.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellmodel.errors import InputError

HEADER = ("time_s", "current_A")


@dataclass(frozen=True)
class Profile:
    source: str
    t_s: np.ndarray
    current_A: np.ndarray


def load_profile(path: str | Path) -> Profile:
    src = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(src, "file", f"cannot read profile: {exc.strerror}") from exc
    times: list[float] = []
    currents: list[float] = []
    header_seen = False
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in row]
        if not header_seen:
            if tuple(cells) != HEADER:
                raise InputError(
                    src,
                    f"line {lineno}",
                    f"header must be 'time_s,current_A', got {','.join(cells)!r}",
                )
            header_seen = True
            continue
        if len(cells) != 2:
            raise InputError(src, f"line {lineno}", f"expected 2 values, got {len(cells)}")
        try:
            t, i = float(cells[0]), float(cells[1])
        except ValueError:
            raise InputError(
                src, f"line {lineno}", f"not a number in {','.join(cells)!r}"
            ) from None
        if not (math.isfinite(t) and math.isfinite(i)):
            raise InputError(src, f"line {lineno}", "values must be finite")
        if times and t <= times[-1]:
            raise InputError(
                src, f"line {lineno}", f"time {t:g} s does not rise after {times[-1]:g} s"
            )
        times.append(t)
        currents.append(i)
    if not header_seen:
        raise InputError(src, "line 1", "empty profile: need the header 'time_s,current_A'")
    if len(times) < 2:
        raise InputError(src, "rows", "a profile needs at least 2 rows")
    return Profile(source=src, t_s=np.asarray(times), current_A=np.asarray(currents))

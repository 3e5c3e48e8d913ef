"""CSV output in the style of the Battery Data Format (`.bdf.csv`).

One header row of "Quantity / unit" names, then one row per sample; nothing
else, so any CSV reader takes it as is. The current column carries the sign
convention in its name (CURRENT: positive on discharge), because BDF-reading
tools may assume the opposite. write_bdf() is generic (columns in, file out)
so the host's logs use it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

TIME = "Test Time / s"
STEP = "Step Index / 1"
CURRENT = "Current (discharge positive) / A"
VOLTAGE = "Voltage / V"
OCV = "Open Circuit Voltage / V"
TEMPERATURE = "Temperature T1 / degC"
SOC = "State of Charge / %"
HYSTERESIS = "Hysteresis State / 1"
ANODE_UTIL = "Anode Utilization / mAh/g"
ANODE_POTENTIAL = "Anode Potential / V"
DISCHARGING_CAPACITY = "Discharging Capacity / Ah"
CHARGING_CAPACITY = "Charging Capacity / Ah"
SUFFIX = ".bdf.csv"


def write_bdf(
    path: str | Path,
    columns: Mapping[str, Sequence[float] | np.ndarray],
    *,
    fmt: str = "%.10g",
) -> Path:
    """Write equal-length columns (name -> values) to path; returns the path."""
    path = Path(path)
    names = list(columns)
    if not names:
        raise ValueError("write_bdf needs at least one column")
    for name in names:
        if "," in name or "\n" in name:
            raise ValueError(f"column name {name!r} may not hold a comma or newline")
    data = np.column_stack([np.asarray(columns[n], dtype=float) for n in names])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, data, fmt=fmt, delimiter=",", header=",".join(names), comments="")
    return path


def read_bdf(path: str | Path) -> dict[str, np.ndarray]:
    """Read a file written by write_bdf back into columns."""
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        names = f.readline().rstrip("\n").split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return {n: data[:, i] for i, n in enumerate(names)}


def cell_path(out: str | Path, cell_index: int) -> Path:
    """The per-cell file beside a pack file: run.bdf.csv -> run.cell1.bdf.csv."""
    out = Path(out)
    name = out.name
    stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else out.stem
    return out.with_name(f"{stem}.cell{cell_index + 1}{SUFFIX}")

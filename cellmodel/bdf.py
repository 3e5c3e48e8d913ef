"""Battery Data Format (BDF 1.0, Battery Data Alliance) files: `.bdf.csv` and `.bdf.parquet`.

A BDF file holds one test object's time series: a header row of the quantities'
preferred labels ("Name / unit"), then one row per sample. The three required
columns are Test Time / s, Voltage / V and Current / A; Unix Time / s, Cycle
Count / 1, Step Count / 1 and Ambient Temperature / degC are recommended; the
optional ones used here are the capacities, energies, power and Surface
Temperature T1 / degC. sisnbms's own quantities (OCV, SOC, anode utilization
and potential, the BMS's beliefs, switch and fault states) are extra columns in
the same "Name / unit" form, which BDF readers keep as non-canonical columns.

Sign: BDF's current is positive when it CHARGES the test object (current flows
into it). sisnbms's API is positive on discharge (PyBaMM's convention), so every
current (and power) column is negated at this file boundary: to_bdf_current()
on writing, and cellmodel.profile negates BDF columns on reading.

write_bdf() is generic (columns in, file out) so the host's run logs use it
too. Files are written to a temporary name and renamed, so a reader never sees
half a file.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from cellmodel.errors import InputError
from cellmodel.files import atomic_path

# Required (BDF 1.0).
TIME = "Test Time / s"
VOLTAGE = "Voltage / V"
CURRENT = "Current / A"  # positive on CHARGE: see to_bdf_current
# Recommended.
UNIX_TIME = "Unix Time / s"
CYCLE = "Cycle Count / 1"
STEP = "Step Count / 1"
AMBIENT = "Ambient Temperature / degC"
# Optional.
SURFACE_T1 = "Surface Temperature T1 / degC"
CHARGING_CAPACITY = "Charging Capacity / Ah"
DISCHARGING_CAPACITY = "Discharging Capacity / Ah"
CHARGING_ENERGY = "Charging Energy / Wh"
DISCHARGING_ENERGY = "Discharging Energy / Wh"
POWER = "Power / W"  # voltage times BDF current: positive on charge
# sisnbms's own quantities.
OCV = "Open Circuit Voltage / V"
SOC = "State of Charge / %"
HYSTERESIS = "Hysteresis State / 1"
ANODE_UTIL = "Anode Utilization / mAh/g"
ANODE_POTENTIAL = "Anode Potential / V"

SUFFIX = ".bdf.csv"
PARQUET_SUFFIX = ".bdf.parquet"


def to_bdf_current(current_A: np.ndarray | float) -> np.ndarray:
    """A current positive on discharge (the API's) as BDF's, positive on charge."""
    return np.subtract(0.0, np.asarray(current_A, dtype=float))  # 0 - 0 is +0, never "-0"


def is_parquet(path: str | Path) -> bool:
    return str(path).endswith(".parquet")


def check_output_path(path: str | Path, source: str, field: str) -> Path:
    """An output file path that can be written: not a folder; Parquet only with pyarrow."""
    out = Path(path)
    if out.is_dir():
        raise InputError(source, field, f"{out} is a folder; give a file name like run{SUFFIX}")
    if out.parent.exists() and not out.parent.is_dir():
        raise InputError(source, field, f"{out.parent} is not a folder")
    if is_parquet(out):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError(
                source, field, "writing .bdf.parquet needs pyarrow (pip install 'sisnbms[parquet]')"
            ) from None
    return out


def write_bdf(
    path: str | Path,
    columns: Mapping[str, Sequence[float] | np.ndarray],
    *,
    fmt: str = "%.10g",
) -> Path:
    """Write equal-length columns (name -> values) to path (.parquet: Parquet); returns it."""
    path = Path(path)
    names = list(columns)
    if not names:
        raise ValueError("write_bdf needs at least one column")
    for name in names:
        if "," in name or "\n" in name:
            raise ValueError(f"column name {name!r} may not hold a comma or newline")
    data = np.column_stack([np.asarray(columns[n], dtype=float) for n in names])
    with atomic_path(path) as tmp:  # whole or not at all
        if is_parquet(path):
            _write_parquet(tmp, names, data)
        else:
            np.savetxt(tmp, data, fmt=fmt, delimiter=",", header=",".join(names), comments="")
    return path


def _write_parquet(path: Path, names: list[str], data: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({n: data[:, i] for i, n in enumerate(names)})
    pq.write_table(table, path)


def read_bdf(path: str | Path) -> dict[str, np.ndarray]:
    """Read a file written by write_bdf (CSV or Parquet) back into columns."""
    path = Path(path)
    if is_parquet(path):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return {n: table.column(n).to_numpy() for n in table.column_names}
    with path.open(encoding="utf-8", newline="") as f:
        names = next(csv.reader(f))
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return {n: data[:, i] for i, n in enumerate(names)}


def cell_path(out: str | Path, cell_index: int) -> Path:
    """The per-cell file beside a pack file: run.bdf.csv -> run.cell1.bdf.csv."""
    out = Path(out)
    name = out.name
    for suffix in (SUFFIX, PARQUET_SUFFIX):
        if name.endswith(suffix):
            return out.with_name(f"{name[: -len(suffix)]}.cell{cell_index + 1}{suffix}")
    return out.with_name(f"{out.stem}.cell{cell_index + 1}{SUFFIX}")

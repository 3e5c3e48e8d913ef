"""The per-sample record of a closed-loop run: true cell state and firmware state side by side.

Columnar and preallocated: a run appends one row of numbers per sample into arrays that
grow by doubling, and one row per cell quantity (voltage, SOC, temperature, anode
utilization and potential, hysteresis state), so logging costs a few array stores per
sample; the report writers and the scores read whole columns. Every value is a float64
(the integers here, fault bits and counts, stay below 2**53 and are exact). Current is
positive on discharge in every column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray


@dataclass
class LogRow:
    """One sample as a record (for tests and readers that want one; the log stores columns)."""

    t_s: float
    step: int
    demand_A: float  # what the scenario asked for (positive discharge)
    current_A: float  # what flowed through the switches (positive discharge)
    pack_v_V: float
    cell_v_V: NDArray[np.float64]
    soc_true: float  # mean of the cells, 0..1
    soc_min_true: float
    temp_max_degC: float
    anode_util_max_mAh_g: float
    anode_potential_min_V: float
    h_mean: float
    meas_current_mA: int
    fw_soc_pct: float
    fw_soc_unc_pct: float
    fw_capacity_mAh: int
    fw_anode_util_mAh_g: float
    fw_current_mA: int
    chg_on: bool
    dsg_on: bool
    faults: int
    latched: int
    warnings: int
    balance: int
    link_ok: bool
    cycle: int = 1  # cycle number from 1 (a scenario's {steps, repeat} tables)
    ambient_degC: float = float("nan")
    # the firmware's limits as it reported them (magnitudes, mA) and its anode potential
    # estimate (the cell nearest plating); NaN before its first estimate
    fw_ccl_mA: float = float("nan")
    fw_dcl_mA: float = float("nan")
    fw_anode_potential_mV: float = float("nan")


# The scalar columns, in LogRow's order (cell voltages are kept apart, one per cell).
COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(LogRow) if f.name != "cell_v_V")
# Per-sample facts the scores need beyond the log's columns: the period, whether the
# charger or load was held to the BMS's limit, the DSG switch that gated the sample's
# current, whether the firmware had given any estimate yet, a learned capacity, and a
# sensor channel broken by an injected fault.
EXTRA: tuple[str, ...] = (
    "dt_s", "limited", "gated_dsg_on", "has_estimate", "fw_cap_learned", "sensor_broken",
)  # fmt: skip
# Per-cell quantities, one (samples x cells) array each.
CELLS: tuple[str, ...] = ("v_V", "soc", "temp_degC", "anode_util_mAh_g", "anode_potential_V", "h")
_INDEX = {name: k for k, name in enumerate(COLUMNS + EXTRA)}


class RunLog:
    def __init__(self, n_cells: int, capacity: int = 4096) -> None:
        self.n_cells = n_cells
        self.start_unix_s: float | None = None  # wall-clock time of t = 0, when known
        self._data = np.full((capacity, len(_INDEX)), np.nan)
        self._cells = np.empty((len(CELLS), capacity, n_cells))
        self._n = 0

    def append(self, values: Sequence[float], cells: Sequence[NDArray[np.float64]]) -> None:
        """One sample: `values` in COLUMNS + EXTRA order (or a prefix), and one array of the
        cells per name in CELLS (or a prefix; cell voltages first)."""
        n = self._n
        if n == self._data.shape[0]:
            self._grow()
        self._data[n, : len(values)] = values
        for k, arr in enumerate(cells):
            self._cells[k, n] = arr
        self._n = n + 1

    def add(self, row: LogRow) -> None:
        self.append([float(getattr(row, name)) for name in COLUMNS], [row.cell_v_V])

    def _grow(self) -> None:
        extra = np.full_like(self._data, np.nan)
        self._data = np.concatenate([self._data, extra])
        self._cells = np.concatenate([self._cells, np.empty_like(self._cells)], axis=1)

    def __len__(self) -> int:
        return self._n

    def column(self, name: str) -> NDArray[np.float64]:
        """One column over the run (a view: do not modify)."""
        return self._data[: self._n, _INDEX[name]]

    def set_column(self, name: str, values: NDArray[np.float64]) -> None:
        """Fill a whole column at once (the per-cell aggregates, computed after the run)."""
        self._data[: self._n, _INDEX[name]] = values

    def bits(self, name: str) -> NDArray[np.int64]:
        """A column of bit fields (faults, latched, warnings, balance) as integers."""
        return self.column(name).astype(np.int64)

    def cells(self, name: str) -> NDArray[np.float64]:
        """A per-cell quantity (CELLS) over the run, shape (samples, cells)."""
        return self._cells[CELLS.index(name), : self._n]

    def cell_voltages(self) -> NDArray[np.float64]:
        return self.cells("v_V")

    @property
    def rows(self) -> list[LogRow]:
        """The samples as records (built on demand)."""
        ints = {f.name for f in fields(LogRow) if f.type in ("int", "bool")}
        out = []
        for k in range(self._n):
            values = {
                name: (int(v) if name in ints else float(v))
                for name, v in zip(COLUMNS, self._data[k], strict=False)
            }
            for name in ("chg_on", "dsg_on", "link_ok"):
                values[name] = bool(values[name])
            cell_v = self._cells[0, k].copy()
            out.append(LogRow(cell_v_V=cell_v, **values))  # type: ignore[arg-type]
        return out

"""The per-sample record of a closed-loop run: true cell state and firmware state side by side.

Current is positive on discharge in every column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass
class LogRow:
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


@dataclass
class RunLog:
    n_cells: int
    rows: list[LogRow] = field(default_factory=list)

    def add(self, row: LogRow) -> None:
        self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> NDArray[np.float64]:
        return np.array([float(getattr(r, name)) for r in self.rows])

    def cell_voltages(self) -> NDArray[np.float64]:
        if not self.rows:
            return np.zeros((0, self.n_cells))
        return np.vstack([r.cell_v_V for r in self.rows])

"""Run the model alone: an experiment (list of steps) or a current profile.

Row conventions (current positive on discharge):
- run_experiment: row 0 is the initial state at rest; every later row is the
  end of one period, with the current that flowed during it and the terminal
  voltage just before the next period starts (a cycler logging at the end of
  each sample period).
- simulate_profile: one row per profile time t_k, with the profile's current
  I_k and the terminal voltage just after switching to it (the R0 step shows
  at once), so the output's current column equals the input's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellmodel import bdf
from cellmodel.experiment import Step, StepController
from cellmodel.pack import PackModel
from cellmodel.profile import Profile


@dataclass(frozen=True)
class SimulationResult:
    """Rows over time; per-cell arrays have shape (n_rows, n_cells)."""

    cell_name: str
    t_s: np.ndarray
    step_index: np.ndarray
    current_A: np.ndarray
    v_V: np.ndarray
    ocv_V: np.ndarray
    soc: np.ndarray
    h: np.ndarray
    temp_degC: np.ndarray
    anode_util_mAh_g: np.ndarray
    anode_potential_V: np.ndarray
    discharged_Ah: np.ndarray  # cumulative, series current
    charged_Ah: np.ndarray
    step_reasons: list[str] = field(default_factory=list)

    @property
    def pack_v_V(self) -> np.ndarray:
        return self.v_V.sum(axis=1)

    @classmethod
    def from_columns(
        cls,
        cell_name: str,
        t_s: np.ndarray,
        step_index: np.ndarray,
        current_A: np.ndarray,
        cells: dict[str, np.ndarray],
        interval_charge_Ah: np.ndarray,
        step_reasons: list[str],
    ) -> SimulationResult:
        """Rows from per-cell columns (keys v, ocv, soc, h, temp, util, pot) and the
        charge that flowed into each row's interval (positive on discharge)."""
        q = interval_charge_Ah
        return cls(
            cell_name=cell_name,
            t_s=t_s,
            step_index=step_index,
            current_A=current_A,
            v_V=cells["v"],
            ocv_V=cells["ocv"],
            soc=cells["soc"],
            h=cells["h"],
            temp_degC=cells["temp"],
            anode_util_mAh_g=cells["util"],
            anode_potential_V=cells["pot"],
            discharged_Ah=np.cumsum(np.clip(q, 0, None)),
            charged_Ah=np.cumsum(np.clip(-q, 0, None)),
            step_reasons=step_reasons,
        )

    @property
    def n_cells(self) -> int:
        return int(self.v_V.shape[1])

    def cell_columns(self, i: int) -> dict[str, np.ndarray]:
        return {
            bdf.TIME: self.t_s,
            bdf.STEP: self.step_index,
            bdf.CURRENT: self.current_A,
            bdf.VOLTAGE: self.v_V[:, i],
            bdf.OCV: self.ocv_V[:, i],
            bdf.TEMPERATURE: self.temp_degC[:, i],
            bdf.SOC: 100.0 * self.soc[:, i],
            bdf.HYSTERESIS: self.h[:, i],
            bdf.ANODE_UTIL: self.anode_util_mAh_g[:, i],
            bdf.ANODE_POTENTIAL: self.anode_potential_V[:, i],
            bdf.DISCHARGING_CAPACITY: self.discharged_Ah,
            bdf.CHARGING_CAPACITY: self.charged_Ah,
        }

    def pack_columns(self) -> dict[str, np.ndarray]:
        return {
            bdf.TIME: self.t_s,
            bdf.STEP: self.step_index,
            bdf.CURRENT: self.current_A,
            bdf.VOLTAGE: self.pack_v_V,
            "Min Cell Voltage / V": self.v_V.min(axis=1),
            "Max Cell Voltage / V": self.v_V.max(axis=1),
            "Max Cell Temperature / degC": self.temp_degC.max(axis=1),
            "Mean State of Charge / %": 100.0 * self.soc.mean(axis=1),
            "Min State of Charge / %": 100.0 * self.soc.min(axis=1),
            "Max State of Charge / %": 100.0 * self.soc.max(axis=1),
            "Max Anode Utilization / mAh/g": self.anode_util_mAh_g.max(axis=1),
            "Min Anode Potential / V": self.anode_potential_V.min(axis=1),
            bdf.DISCHARGING_CAPACITY: self.discharged_Ah,
            bdf.CHARGING_CAPACITY: self.charged_Ah,
        }

    def write(self, out: str | Path) -> list[Path]:
        """One file for a single cell; for a pack, out is the pack file plus one per cell."""
        if self.n_cells == 1:
            return [bdf.write_bdf(out, self.cell_columns(0))]
        paths = [bdf.write_bdf(out, self.pack_columns())]
        paths += [
            bdf.write_bdf(bdf.cell_path(out, i), self.cell_columns(i)) for i in range(self.n_cells)
        ]
        return paths

    def summary(self) -> dict[str, Any]:
        return {
            "cell": self.cell_name,
            "n_cells": self.n_cells,
            "rows": int(self.t_s.shape[0]),
            "duration_s": float(self.t_s[-1] - self.t_s[0]),
            "discharged_Ah": float(self.discharged_Ah[-1]),
            "charged_Ah": float(self.charged_Ah[-1]),
            "min_cell_voltage_V": float(self.v_V.min()),
            "max_cell_voltage_V": float(self.v_V.max()),
            "min_pack_voltage_V": float(self.pack_v_V.min()),
            "max_pack_voltage_V": float(self.pack_v_V.max()),
            "final_soc": [float(x) for x in self.soc[-1]],
            "max_temp_degC": float(self.temp_degC.max()),
            "max_anode_util_mAh_g": float(self.anode_util_mAh_g.max()),
            "min_anode_potential_V": float(self.anode_potential_V.min()),
            "steps": list(self.step_reasons),
        }


class _Rows:
    def __init__(self) -> None:
        self.t: list[float] = []
        self.step: list[int] = []
        self.current: list[float] = []
        self.cells: dict[str, list[np.ndarray]] = {
            k: [] for k in ("v", "ocv", "soc", "h", "temp", "util", "pot")
        }

    def add(
        self, model: PackModel, step: int, current_A: float, v: np.ndarray | None = None
    ) -> None:
        self.t.append(model.t_s)
        self.step.append(step)
        self.current.append(current_A)
        c = self.cells
        c["v"].append(model.v_V if v is None else v)
        c["ocv"].append(model.ocv_V)
        c["soc"].append(model.soc)
        c["h"].append(model.h)
        c["temp"].append(model.temp_degC)
        c["util"].append(model.anode_util_mAh_g)
        c["pot"].append(
            model.anode_potential_V
            if v is None
            else model.params.anode_potential_V(model.soc, model.h, v, model.ocv_V)
        )

    def result(
        self, name: str, reasons: list[str], interval_current: np.ndarray
    ) -> SimulationResult:
        t = np.asarray(self.t)
        dt = np.diff(t, prepend=t[:1])
        q = interval_current * dt / 3600.0
        stack = {k: np.vstack(v) for k, v in self.cells.items()}
        return SimulationResult.from_columns(
            name, t, np.asarray(self.step, dtype=float), np.asarray(self.current), stack, q, reasons
        )


def run_experiment(
    model: PackModel,
    steps: list[Step],
    *,
    period_s: float = 1.0,
    base_dir: str | Path | None = None,
) -> SimulationResult:
    """Run the steps in order on the model; step_index counts from 0, the initial row is -1."""
    rows = _Rows()
    rows.add(model, -1, 0.0)
    reasons: list[str] = []
    for index, step in enumerate(steps):
        ctl = StepController(step, model.design.capacity_Ah, period_s=period_s, base_dir=base_dir)
        while True:
            dt = ctl.next_dt_s()
            if dt <= 0.0:
                ctl.reason = ctl.reason or "duration elapsed"
                break
            current = ctl.demand_current_A(model, dt)
            res = model.step(current, dt)
            rows.add(model, index, current)
            ctl.advance(dt)
            if ctl.finished(res.v_V, current):
                break
        reasons.append(f"{step.text}: {ctl.reason} at {model.t_s:g} s")
    cur = np.asarray(rows.current)
    return rows.result(model.design.name, reasons, cur)


def simulate_profile(model: PackModel, profile: Profile) -> SimulationResult:
    """One row per profile time: state at t_k with I_k already flowing."""
    currents = profile.current_A
    model.t_s = float(profile.t_s[0])
    rows = _Rows()
    rows.add(model, 0, float(currents[0]), model.terminal_voltage_V(float(currents[0])))
    run = model.run_profile(currents[:-1], np.diff(profile.t_s))
    # Right after switching to I_k only the R0 drop changes; R0 is the one of the
    # period just ended (the state's resistance at t_k to the first order).
    v_switched = run.v_V - (currents[1:] - currents[:-1])[:, None] * run.r0_ohm
    t = profile.t_s
    n = len(currents) - 1
    temp = run.temp_degC
    pot = model.params.anode_potential_V(run.soc, run.h, v_switched, run.ocv_V)
    first = {k: v[0] for k, v in rows.cells.items()}
    stack = {
        "v": np.vstack([first["v"][None, :], v_switched]),
        "ocv": np.vstack([first["ocv"][None, :], run.ocv_V]),
        "soc": np.vstack([first["soc"][None, :], run.soc]),
        "h": np.vstack([first["h"][None, :], run.h]),
        "temp": np.vstack([first["temp"][None, :], temp]),
        "util": np.vstack([first["util"][None, :], run.anode_util_mAh_g]),
        "pot": np.vstack([first["pot"][None, :], pot]),
    }
    # Interval k-1 -> k carried current I_(k-1).
    q = np.concatenate(([0.0], currents[:-1] * np.diff(t) / 3600.0))
    return SimulationResult.from_columns(
        model.design.name,
        t.copy(),
        np.zeros(n + 1),
        currents.copy(),
        stack,
        q,
        [f"profile {profile.source}: {n} intervals"],
    )

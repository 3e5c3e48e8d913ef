"""Run the model alone: an experiment (steps and cycles) or a current profile.

Row conventions (current positive on discharge):
- run_experiment: row 0 is the initial state at rest (step and cycle 0); every
  later row is the end of one period, with the current that flowed during it (its
  mean when a long period is integrated in sub-steps) and the terminal voltage
  just before the next period starts (a cycler logging at the end of each sample
  period); a step's last row is where it ended, which a cut-off reached within a
  long period puts off the period grid.
- simulate_profile: one row per sample time t, at the profile's rows and every
  period within them, with the profile's current I(t) and the terminal voltage
  just after switching to it (the R0 step shows at once), so the output's current
  column is the input's.

Both stop at the model's guard rails (cellmodel.guards): the result's `event`
says which limit ended the run (None if it ran to its end), and `stopped` too
when the experiment's own termination ended it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellmodel import bdf
from cellmodel.errors import InputError
from cellmodel.experiment import Experiment, Step, StepController
from cellmodel.guards import GuardEvent
from cellmodel.pack import PackModel
from cellmodel.profile import Profile, load_profile, resolve_profile
from cellmodel.quantities import PERIOD_S

# The rows a run may keep, counted per cell (7 float columns each: 4 M is 224 MB):
# a week of one cell at 0.15 s, or 400 full cycles at 1 s.
MAX_CELL_ROWS = 4_000_000

# A period up to this is one model step, as before and as the emulator takes it: the
# model is accurate to 60 s (cellmodel.pack), and a log of such a run replays exactly
# (each row's current is the one that flowed; tests/cellmodel/test_profile.py).
SINGLE_STEP_MAX_S = 60.0
# A longer period is cut into equal sub-steps no longer than this, so cut-offs and
# guard rails are checked often enough that a step ends near its cut-off, and a CV
# hold or a resistive or power load, solved per step, follows its voltage.
SUBSTEP_MAX_S = 5.0


@dataclass(frozen=True)
class SimulationResult:
    """Rows over time; per-cell arrays have shape (n_rows, n_cells)."""

    cell_name: str
    t_s: np.ndarray
    step_index: np.ndarray  # 0-based; -1 before the first step
    cycle_index: np.ndarray  # from 1; 0 before the first step
    current_A: np.ndarray
    ambient_degC: np.ndarray
    v_V: np.ndarray
    ocv_V: np.ndarray
    soc: np.ndarray
    h: np.ndarray
    temp_degC: np.ndarray
    anode_util_mAh_g: np.ndarray
    anode_potential_V: np.ndarray
    discharged_Ah: np.ndarray  # cumulative, series current
    charged_Ah: np.ndarray
    interval_current_A: np.ndarray  # what flowed over the interval ending at each row
    step_reasons: list[str] = field(default_factory=list)
    event: GuardEvent | None = None
    stopped: str | None = None  # why the experiment ended early (termination or event)

    @property
    def pack_v_V(self) -> np.ndarray:
        return self.v_V.sum(axis=1)

    @property
    def n_cells(self) -> int:
        return int(self.v_V.shape[1])

    def _energy_Wh(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative discharged and charged energy: interval current times its mean voltage."""
        v_mean = 0.5 * (v + np.concatenate((v[:1], v[:-1])))
        dt = np.diff(self.t_s, prepend=self.t_s[:1])
        e = self.interval_current_A * v_mean * dt / 3600.0
        return np.cumsum(np.clip(e, 0, None)), np.cumsum(np.clip(-e, 0, None))

    def _bdf_columns(self, v: np.ndarray, temp: np.ndarray) -> dict[str, np.ndarray]:
        """The BDF quantities for voltage v of the test object (a cell or the pack)."""
        e_dsg, e_chg = self._energy_Wh(v)
        return {
            bdf.TIME: self.t_s,
            bdf.CYCLE: self.cycle_index,
            bdf.STEP: self.step_index + 1,
            bdf.VOLTAGE: v,
            bdf.CURRENT: bdf.to_bdf_current(self.current_A),
            bdf.AMBIENT: self.ambient_degC,
            bdf.SURFACE_T1: temp,
            bdf.POWER: v * bdf.to_bdf_current(self.current_A),
            bdf.CHARGING_CAPACITY: self.charged_Ah,
            bdf.DISCHARGING_CAPACITY: self.discharged_Ah,
            bdf.CHARGING_ENERGY: e_chg,
            bdf.DISCHARGING_ENERGY: e_dsg,
        }

    def cell_columns(self, i: int) -> dict[str, np.ndarray]:
        return {
            **self._bdf_columns(self.v_V[:, i], self.temp_degC[:, i]),
            bdf.OCV: self.ocv_V[:, i],
            bdf.SOC: 100.0 * self.soc[:, i],
            bdf.HYSTERESIS: self.h[:, i],
            bdf.ANODE_UTIL: self.anode_util_mAh_g[:, i],
            bdf.ANODE_POTENTIAL: self.anode_potential_V[:, i],
        }

    def pack_columns(self) -> dict[str, np.ndarray]:
        return {
            **self._bdf_columns(self.pack_v_V, self.temp_degC.max(axis=1)),
            "Min Cell Voltage / V": self.v_V.min(axis=1),
            "Max Cell Voltage / V": self.v_V.max(axis=1),
            "Mean State of Charge / %": 100.0 * self.soc.mean(axis=1),
            "Min State of Charge / %": 100.0 * self.soc.min(axis=1),
            "Max State of Charge / %": 100.0 * self.soc.max(axis=1),
            "Max Anode Utilization / mAh/g": self.anode_util_mAh_g.max(axis=1),
            "Min Anode Potential / V": self.anode_potential_V.min(axis=1),
        }

    def write(self, out: str | Path, *, start_unix_s: float | None = None) -> list[Path]:
        """One file for a single cell; for a pack, out is the pack file plus one per cell.

        .bdf.parquet when out ends in .parquet (needs pyarrow), else CSV. With
        start_unix_s, a Unix Time column places the run's start at that instant.
        """

        def columns(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            if start_unix_s is None:
                return cols
            time = {bdf.TIME: cols.pop(bdf.TIME), bdf.UNIX_TIME: start_unix_s + self.t_s}
            return {**time, **cols}

        if self.n_cells == 1:
            return [bdf.write_bdf(out, columns(self.cell_columns(0)))]
        paths = [bdf.write_bdf(out, columns(self.pack_columns()))]
        paths += [
            bdf.write_bdf(bdf.cell_path(out, i), columns(self.cell_columns(i)))
            for i in range(self.n_cells)
        ]
        return paths

    def summary(self) -> dict[str, Any]:
        return {
            "cell": self.cell_name,
            "n_cells": self.n_cells,
            "rows": int(self.t_s.shape[0]),
            "duration_s": float(self.t_s[-1] - self.t_s[0]),
            "cycles": int(self.cycle_index.max()),
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
            "event": None if self.event is None else self.event.as_dict(),
            "stopped": self.stopped,
        }


class _Rows:
    """Growing per-column buffers of the rows (no per-row Python objects kept)."""

    _CELLS = ("v", "ocv", "soc", "h", "temp", "util", "pot")
    _SCALARS = ("t", "step", "cycle", "current", "ambient")

    def __init__(self, n_cells: int, source: str = "experiment") -> None:
        self.n = 0
        self.n_cells = n_cells
        self.source = source  # named when the run outgrows MAX_CELL_ROWS
        self.cells = {k: np.empty((64, n_cells)) for k in self._CELLS}
        self.scalars = {k: np.empty(64) for k in self._SCALARS}

    def _grow(self) -> None:
        if (self.n + 1) * self.n_cells > MAX_CELL_ROWS:
            raise InputError(
                self.source,
                "rows",
                f"the run needs more than {MAX_CELL_ROWS // self.n_cells:,} rows; "
                "give a longer period or fewer steps",
            )
        if self.n < len(self.scalars["t"]):
            return
        for d in (self.cells, self.scalars):
            for k, a in d.items():
                d[k] = np.concatenate((a, np.empty_like(a)))

    def add(self, model: PackModel, step: int, cycle: int, current_A: float) -> None:
        self._grow()
        k = self.n
        for name, value in zip(
            self._SCALARS, (model.t_s, step, cycle, current_A, model.ambient_degC), strict=True
        ):
            self.scalars[name][k] = value
        c = self.cells
        c["v"][k] = model.v_V
        c["ocv"][k] = model.ocv_V
        c["soc"][k] = model.soc
        c["h"][k] = model.h
        c["temp"][k] = model.temp_degC
        c["util"][k] = model.anode_util_mAh_g
        c["pot"][k] = model.anode_potential_V
        self.n += 1

    def result(self, name: str, reasons: list[str], **end: Any) -> SimulationResult:
        s = {k: v[: self.n] for k, v in self.scalars.items()}
        c = {k: v[: self.n] for k, v in self.cells.items()}
        return _result(name, s, c, reasons, **end)


def _result(
    name: str, s: dict[str, np.ndarray], c: dict[str, np.ndarray], reasons: list[str], **end: Any
) -> SimulationResult:
    """A result from row columns; s["interval"] (default: the row's current) is the current
    that flowed over the interval ending at each row."""
    interval = s.get("interval", s["current"])
    q = interval * np.diff(s["t"], prepend=s["t"][:1]) / 3600.0
    return SimulationResult(
        cell_name=name,
        t_s=s["t"],
        step_index=s["step"],
        cycle_index=s["cycle"],
        current_A=s["current"],
        ambient_degC=s["ambient"],
        v_V=c["v"],
        ocv_V=c["ocv"],
        soc=c["soc"],
        h=c["h"],
        temp_degC=c["temp"],
        anode_util_mAh_g=c["util"],
        anode_potential_V=c["pot"],
        discharged_Ah=np.cumsum(np.clip(q, 0, None)),
        charged_Ah=np.cumsum(np.clip(-q, 0, None)),
        interval_current_A=interval,
        step_reasons=reasons,
        **end,
    )


class _Cycle:
    """What an experiment's termination looks at, per cycle."""

    def __init__(self, model: PackModel) -> None:
        self.start_Ah = 0.0
        self.discharged_Ah = 0.0
        self.min_v = float("inf")
        self.first_Ah: float | None = None
        self.t0 = model.t_s

    def add(self, current_A: float, dt_s: float, model: PackModel) -> None:
        self.discharged_Ah += max(current_A, 0.0) * dt_s / 3600.0
        self.min_v = min(self.min_v, float(np.min(model.v_V)))

    def close(self) -> tuple[float, float]:
        """(this cycle's discharged capacity, its lowest cell voltage); starts the next cycle."""
        cap = self.discharged_Ah - self.start_Ah
        if self.first_Ah is None:
            self.first_Ah = cap
        min_v, self.min_v, self.start_Ah = self.min_v, float("inf"), self.discharged_Ah
        return cap, min_v


def _run_step(
    model: PackModel, ctl: StepController, rows: _Rows, index: int, cycle: int, cyc: _Cycle
) -> GuardEvent | None:
    """Periods of one step until it ends; the guard event that ended it, if any.

    A period longer than SINGLE_STEP_MAX_S is integrated in equal sub-steps no
    longer than SUBSTEP_MAX_S (the period only samples the output, as in PyBaMM): the current is
    demanded, and the cut-offs and guard rails checked, at every sub-step, and the
    step ends at the sub-step that reaches its cut-off (a row off the period grid).
    """
    while True:
        dt = ctl.next_dt_s()
        if dt <= 0.0:
            ctl.reason = ctl.reason or ctl.time_up_reason()
            return None
        n = 1 if dt <= SINGLE_STEP_MAX_S else math.ceil(dt / SUBSTEP_MAX_S)
        if n == 1:
            # One step per period: the loop as the emulator runs it, bit for bit.
            current = ctl.demand_current_A(model, dt)
            event = model.current_event(current)
            if event is not None:
                return event
            res = model.step(current, dt)
            rows.add(model, index, cycle, current)
            cyc.add(current, dt, model)
            ctl.advance(dt)
            event = model.state_event()
            if event is not None:
                return event
            if ctl.finished(res.v_V, current):
                return None
            continue
        done, event = _run_substeps(model, ctl, rows, index, cycle, cyc, dt, n)
        if done:
            return event


def _run_substeps(
    model: PackModel,
    ctl: StepController,
    rows: _Rows,
    index: int,
    cycle: int,
    cyc: _Cycle,
    dt_s: float,
    n: int,
) -> tuple[bool, GuardEvent | None]:
    """One period of dt_s in n sub-steps; (the step is over, the guard event if any).

    The period's row carries the mean current over the time integrated (so the
    row's charge is the charge that flowed), or the current itself when constant.
    """
    t0 = model.t_s
    h = dt_s / n
    currents: list[float] = []

    def add_row() -> None:
        same = all(c == currents[0] for c in currents)
        mean = currents[0] if same else math.fsum(currents) / len(currents)
        rows.add(model, index, cycle, mean)

    for k in range(n):
        current = ctl.demand_current_A(model, h)
        event = model.current_event(current)
        if event is not None:
            if currents:  # what flowed before the refused current still gets its row
                add_row()
            return True, event
        res = model.step(current, h)
        currents.append(current)
        cyc.add(current, h, model)
        ctl.advance(h)
        if k == n - 1:
            # n sums of h can miss t0 + dt_s by a rounding; keep rows on the period grid.
            model.t_s = t0 + dt_s
        event = model.state_event()
        if event is not None:
            add_row()
            return True, event
        if ctl.finished(res.v_V, current):
            add_row()
            return True, None
    add_row()
    return False, None


def _controllers(
    exp: Experiment, capacity_Ah: float, period_s: float, base_dir: str | Path | None
) -> list[StepController]:
    """One controller per step, made (and its profile read) before anything runs; errors
    name the experiment's source and the step.

    A profile that many steps name (a drive cycle in a repeated cycle) is read once.
    """
    profiles: dict[tuple[Path, str], Profile] = {}
    out = []
    for i, step in enumerate(exp.steps):
        where = f"step {i + 1}"
        profile = None
        if step.kind == "run":
            path = resolve_profile(step.profile_path or "", base_dir, exp.source, where)
            key = (path.resolve(), step.profile_kind)
            if key not in profiles:
                profiles[key] = load_profile(path, step.profile_kind)
            profile = profiles[key]
        out.append(
            StepController(
                step,
                capacity_Ah,
                period_s=period_s,
                profile=profile,
                source=exp.source,
                field=where,
            )
        )
    return out


def run_experiment(
    model: PackModel,
    experiment: Experiment | list[Step],
    *,
    period_s: float = 1.0,
    base_dir: str | Path | None = None,
) -> SimulationResult:
    """Run the steps in order on the model; step_index counts from 0, the initial row is -1."""
    exp = experiment if isinstance(experiment, Experiment) else Experiment.of_steps(experiment)
    PERIOD_S.check(period_s, "experiment", "period")
    controllers = _controllers(exp, model.design.capacity_Ah, period_s, base_dir)
    definite = sum(
        ctl.time_limit_s / ctl.period_s
        for ctl in controllers
        if ctl.step.duration_s is not None or ctl.profile is not None
    )
    if definite * model.n_cells > MAX_CELL_ROWS:
        raise InputError(
            exp.source,
            "steps",
            f"the timed steps alone need {definite:,.0f} periods, more than "
            f"{MAX_CELL_ROWS // model.n_cells:,}: give a longer period or shorter steps",
        )
    rows = _Rows(model.n_cells, exp.source)
    rows.add(model, -1, 0, 0.0)
    reasons: list[str] = []
    base_ambient = model.ambient_degC
    cyc = _Cycle(model)
    event: GuardEvent | None = None
    stopped: str | None = None
    for index, (ctl, cycle) in enumerate(zip(controllers, exp.cycles, strict=True)):
        model.set_ambient(base_ambient if ctl.ambient_degC is None else ctl.ambient_degC)
        event = _run_step(model, ctl, rows, index, cycle, cyc)
        if event is not None:
            stopped = f"{ctl.step.text}: {event.message}"
            reasons.append(stopped)
            break
        reasons.append(f"{ctl.step.text}: {ctl.reason} at {model.t_s:g} s")
        if index + 1 == len(exp.steps) or exp.cycles[index + 1] != cycle:
            cap, min_v = cyc.close()
            stopped = exp.termination.reason(cyc.first_Ah or 0.0, cap, min_v, model.t_s - cyc.t0)
            if stopped is not None:
                reasons.append(f"experiment stopped after cycle {cycle}: {stopped}")
                break
    model.set_ambient(base_ambient)
    return rows.result(model.design.name, reasons, event=event, stopped=stopped)


def _sample_times(profile: Profile, period_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Sample times: every profile row and every period_s within a row; the current at each."""
    t, i = profile.t_s, profile.current_A
    lengths = np.diff(t)
    counts = np.maximum(np.ceil(lengths / period_s - 1e-9).astype(np.int64), 1)
    total = int(counts.sum()) + 1
    if total > MAX_CELL_ROWS:
        raise InputError(
            profile.source,
            "rows",
            f"{total:,} samples at a {period_s:g} s period, more than {MAX_CELL_ROWS:,}: "
            "give a longer period",
        )
    row = np.repeat(np.arange(len(lengths)), counts)
    within = np.arange(row.size) - np.repeat(np.cumsum(counts) - counts, counts)
    times = np.concatenate((t[row] + np.minimum(within * period_s, lengths[row]), t[-1:]))
    return times, np.concatenate((i[row], i[-1:]))


def simulate_profile(
    model: PackModel, profile: Profile, *, period_s: float | None = None
) -> SimulationResult:
    """Rows at the profile's times and every period_s within them (default: its rows only).

    Row k is the state at t_k with I_k already flowing. The run stops at the first
    guard event: a current beyond the bound before it flows, a state after the step.
    """
    if period_s is None:
        times, currents = profile.t_s, profile.current_A
    else:
        times, currents = _sample_times(profile, PERIOD_S.check(period_s, profile.source, "period"))
    model.t_s = float(times[0])
    bound = np.flatnonzero(~(np.abs(currents) <= model.guards.current_max_A))
    n = int(bound[0]) if bound.size else len(currents)
    event = None if n == len(currents) else model.guards.check_current(currents[n], times[n])
    start = model.snapshot()
    s, c = _profile_rows(model, times[: max(n, 1)], currents[: max(n, 1)])
    hit = model.guards.first_event(c["soc"], c["v"], c["temp"], s["t"])
    if hit is not None:
        k, event = hit
        model.restore(start)
        s, c = _profile_rows(model, times[: k + 1], currents[: k + 1])
    reasons = [f"profile {profile.source}: {len(s['t']) - 1} intervals"]
    if event is not None:
        reasons.append(f"stopped: {event.message}")
    stopped = None if event is None else event.message
    return _result(model.design.name, s, c, reasons, event=event, stopped=stopped)


def _profile_rows(
    model: PackModel, t: np.ndarray, currents: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    p = model.params
    first = {
        "v": model.terminal_voltage_V(float(currents[0]))[None, :],
        "ocv": model.ocv_V[None, :],
        "soc": model.soc[None, :],
        "h": model.h[None, :],
        "temp": model.temp_degC[None, :],
        "util": model.anode_util_mAh_g[None, :],
    }
    first["pot"] = p.anode_potential_V(model.soc, model.h, first["v"][0], model.ocv_V)[None, :]
    run = model.run_profile(currents[:-1], np.diff(t))
    # Right after switching to I_k only the R0 drop changes; R0 is the one of the
    # period just ended (the state's resistance at t_k to the first order).
    v_switched = run.v_V - (currents[1:] - currents[:-1])[:, None] * run.r0_ohm
    later = {
        "v": v_switched,
        "ocv": run.ocv_V,
        "soc": run.soc,
        "h": run.h,
        "temp": run.temp_degC,
        "util": run.anode_util_mAh_g,
        "pot": p.anode_potential_V(run.soc, run.h, v_switched, run.ocv_V),
    }
    cells = {k: np.vstack([first[k], later[k]]) for k in first}
    scalars = {
        "t": t.copy(),
        "step": np.zeros(len(t)),
        "cycle": np.ones(len(t)),
        "current": currents.copy(),
        "interval": np.concatenate(([0.0], currents[:-1])),  # row k's interval carried I_(k-1)
        "ambient": np.full(len(t), model.ambient_degC),
    }
    return scalars, cells

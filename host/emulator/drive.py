"""Run one experiment step in the closed loop: the demanded current per sample and when it ends.

The step is what a battery cycler would do: it asks for a current (a constant
current, a constant-voltage hold, a profile, a rest; cellmodel's StepController
knows the semantics) and the BMS's switches decide what actually flows. A
constant-current or constant-voltage step whose current the BMS blocks for
CHARGER_GIVE_UP_S ends, as a charger ends a step that delivers no current.

Current is positive on discharge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cellmodel.experiment import Step, StepController

CHARGER_GIVE_UP_S = 5.0


def gate_current(demand_A: float, chg_on: bool, dsg_on: bool) -> float:
    """The current through the BMS's switches: DSG off blocks discharge, CHG off blocks charge."""
    if demand_A > 0.0 and not dsg_on:
        return 0.0
    if demand_A < 0.0 and not chg_on:
        return 0.0
    return demand_A


def bleed_currents(
    cell_v_V: NDArray[np.float64], balance_bits: int, resistance_ohm: float
) -> NDArray[np.float64] | None:
    """Per-cell balancing bleed (discharge current through the resistor) for the firmware's bits."""
    if not balance_bits:
        return None
    n = cell_v_V.size
    mask = np.array([(balance_bits >> i) & 1 for i in range(n)], dtype=float)
    return mask * cell_v_V / resistance_ohm


class DriveRun:
    """One experiment step in progress: cellmodel's StepController plus the BMS's switches."""

    def __init__(
        self, step: Step, capacity_Ah: float, period_s: float, base_dir: Path | None = None
    ) -> None:
        self.step = step
        self.ctrl = StepController(step, capacity_Ah, period_s=period_s, base_dir=base_dir)
        self.done = False
        self.end_reason = ""
        self._blocked_s = 0.0

    @property
    def elapsed_s(self) -> float:
        return self.ctrl.elapsed_s

    @property
    def time_limit_s(self) -> float:
        return self.ctrl.time_limit_s

    def next_dt_s(self) -> float:
        """Length of the next sample period (0: the step's time is up)."""
        return self.ctrl.next_dt_s()

    def demand(self, model: Any, dt_s: float) -> float:
        """The current the cycler asks for over the next dt_s (positive discharge)."""
        current = float(self.ctrl.demand_current_A(model, dt_s))
        if self.step.kind == "hold":
            # A charger holding a voltage only sources current; it never discharges the cell.
            return min(current, 0.0)
        return current

    def after_sample(
        self, dt_s: float, demand_A: float, applied_A: float, cell_v_V: NDArray[np.float64]
    ) -> None:
        """Update the step after a sample: its own end conditions, then a blocked charger."""
        self.ctrl.advance(dt_s)
        reason = self.ctrl.finished(cell_v_V, applied_A)
        if reason:
            self._end(reason)
            return
        if (
            self.step.kind in ("charge", "discharge", "hold")
            and demand_A != 0.0
            and applied_A == 0.0
        ):
            self._blocked_s += dt_s
            if self._blocked_s >= CHARGER_GIVE_UP_S - 1e-9:
                self._end("blocked by the BMS")
        else:
            self._blocked_s = 0.0

    def _end(self, reason: str) -> None:
        self.done = True
        self.end_reason = reason

"""Drive steps: an experiment step ("Charge at 0.5C until 4.2 V") run as a cycler would.

The step asks for a current (constant current, constant voltage, a profile, a
rest; cellmodel's StepController knows the semantics) and the BMS's switches
decide what actually flows. A constant-current or constant-voltage step whose
current the BMS blocks for CHARGER_GIVE_UP_S ends, as a charger ends a step
that delivers no current; a hold's taper is its own demand falling, never a
current the BMS's limit held back.

Current is positive on discharge.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cellmodel.experiment import Step, StepController, parse_step
from host.scenarios.steps.base import CheckEnv, ScenarioStep, StepLoop

CHARGER_GIVE_UP_S = 5.0


class DriveRun:
    """One experiment step in progress: cellmodel's StepController plus the BMS's switches."""

    def __init__(
        self, step: Step, capacity_Ah: float, period_s: float, base_dir: Path | None = None
    ) -> None:
        self.step = step
        # Its errors about the step as written (a StepError) are placed by check_steps, after
        # the scenario file, the step's field and its text: no source or field to give here.
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

    def limit_demand(self, current_A: float) -> float:
        """A charger holding a voltage only sources current; it never discharges the cell."""
        return min(current_A, 0.0) if self.step.kind == "hold" else current_A

    def after_sample(
        self, dt_s: float, demand_A: float, applied_A: float, cell_v_V: NDArray[np.float64]
    ) -> None:
        """Update the step after a sample: its own end conditions, then a blocked charger.

        A current end ("until C/20") is the charger's own loop falling below it: where the
        BMS's limit or switch held the current back, that loop asked for the demand, not
        for what flowed. A charger in CV under a CCL that dips to 0 for one sample has not
        seen its taper (a 16-series pack whose CCL chattered ended its CV hold at once,
        never reached full and never learned its capacity); one the BMS keeps at 0 ends
        as blocked, below.
        """
        self.ctrl.advance(dt_s)
        held_back = abs(applied_A) < abs(demand_A)
        reason = self.ctrl.finished(cell_v_V, demand_A if held_back else applied_A)
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


@dataclass(frozen=True)
class DriveStep(ScenarioStep):
    """An experiment step, kept as cellmodel parsed it."""

    text: str
    step: Step
    LOGGED_AT_START = False  # its end is logged, with the reason

    @classmethod
    def parse_text(cls, text: str, source: str, field: str) -> DriveStep:
        """Any text the other kinds did not take; cellmodel's parser names the column on error."""
        return cls(text, parse_step(text, source=source, field=field))

    def start(self, capacity_Ah: float, period_s: float, base_dir: Path) -> DriveRun:
        return DriveRun(self.step, capacity_Ah, period_s, base_dir=base_dir)

    def check(self, env: CheckEnv) -> None:
        # Loads a Run profile now, so a missing file fails before the board starts (a
        # StepError; an error inside the profile names that file).
        self.start(env.capacity_Ah, env.sample_period_s, env.base_dir)

    async def run(self, loop: StepLoop, index: int) -> None:
        run = self.start(loop.capacity_Ah, loop.sample_period_s, loop.base_dir)
        ambient = run.ctrl.ambient_degC  # "... at 25oC": this step's ambient only
        before = loop.ambient_degC
        if ambient is not None:
            loop.set_ambient(ambient)
        try:
            await self._drive(loop, run, index)
        finally:
            if ambient is not None:
                loop.set_ambient(before)

    async def _drive(self, loop: StepLoop, run: DriveRun, index: int) -> None:
        while not run.done:
            loop.check_time()
            dt = run.next_dt_s()
            if dt <= 0.0:
                break
            demand = run.limit_demand(loop.demand_A(run.ctrl, dt))
            applied = await loop.advance(demand, dt)
            run.after_sample(dt, demand, applied.applied_A, applied.cell_v_V)
            frac = min(run.elapsed_s / run.time_limit_s, 1.0) if run.time_limit_s else 0.5
            loop.progress(index + frac, f"t={loop.t_s / 3600:.2f} h")
        loop.event(f"step {index} ({self.text}) ended: {run.end_reason}")
        if run.ctrl.until_unmet is not None:
            loop.until_not_reached(index, self.text, run.ctrl.until_unmet, run.end_reason)

"""The asyncio closed loop: scenario steps -> cell model -> SAMPLE -> STATE -> switches -> ...

Transport-agnostic: it talks to the firmware only through a BmsClient, so a
virtual board's pty and a real board's USB port run the same code. The
per-step logic lives in pure classes (Plant, DriveRun, Scorer,
ExpectationChecker, RunLog); this module only sequences them and does the I/O.

The decision in the reply to sample k gates the current of step k+1, as the
physical switches would. Current is positive on discharge.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from cellmodel.design import CellDesign
from cellmodel.errors import InputError
from cellmodel.pack import PackModel
from host.emulator.drive import DriveRun
from host.emulator.expectations import ExpectationChecker, Observation
from host.emulator.plant import Plant, PlantStep
from host.progress import Progress
from host.protocol.client import BmsError
from host.report.log import LogRow, RunLog
from host.scenarios import DriveStep, ExpectStep, FaultStep, Scenario
from host.scoring import CellLimits, Scorer
from host.sensors import Reading, Sensors

# The first sample is stamped 1 s so no real firmware mistakes it for "no sample yet".
T_OFFSET_MS = 1000
# Consecutive samples without a reply before the run is abandoned.
MAX_LOST_SAMPLES = 5
# A virtual board boots in well under a second; a real one after a reset in a few.
BOOT_TIMEOUT_S = 10.0


class PowerControl(Protocol):
    async def power_cut(self) -> None: ...
    async def power_on(self) -> None: ...


class LinkFailure(RuntimeError):
    """The firmware stopped answering samples."""


@dataclass
class LoopOutcome:
    log: RunLog
    scorer: Scorer
    checker: ExpectationChecker
    events: list[str] = field(default_factory=list)
    t_end_s: float = 0.0
    wall_s: float = 0.0
    steps: int = 0
    lost_samples: int = 0
    completed: bool = True
    hello: dict[str, Any] = field(default_factory=dict)
    final_state: dict[str, Any] = field(default_factory=dict)
    capacity_true_Ah: float = 0.0


def frame_corrupter(fraction: float, seed: int) -> Any:
    """A tx_filter that flips one random bit in `fraction` of the frames (seeded)."""
    rng = np.random.default_rng([seed, 3])

    def corrupt(data: bytes) -> bytes:
        if not data or rng.random() >= fraction:
            return data
        buf = bytearray(data)
        pos = int(rng.integers(1, len(buf))) if len(buf) > 1 else 0
        buf[pos] ^= 1 << int(rng.integers(0, 8))
        return bytes(buf)

    return corrupt


class ClosedLoop:
    def __init__(
        self,
        scenario: Scenario,
        design: CellDesign,
        client: Any,
        *,
        power: PowerControl | None = None,
        realtime: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self.scenario = scenario
        self.design = design
        self.client = client
        self.power = power
        self.realtime = realtime
        self.progress = progress
        init = scenario.initial
        self.model = PackModel(
            design,
            isothermal=scenario.isothermal,
            hysteresis=scenario.hysteresis,
            ambient_degC=scenario.ambient_degC,
            initial_soc=init.soc,
            initial_h=1.0 if init.branch == "discharge" else -1.0,
        )
        if init.temp_degC is not None:
            self.model.temp_degC = np.full(self.model.n_cells, init.temp_degC)
        self.n_cells = self.model.n_cells
        self.limits = CellLimits.from_design(design)
        self.scorer = Scorer(self.limits)
        self.checker = ExpectationChecker()
        self.log = RunLog(self.n_cells)
        self.events: list[str] = []
        self.t_s = 0.0
        self.steps = 0
        self.lost_samples = 0
        self._consecutive_lost = 0
        self._last_state: Any = None
        self._last_obs: Observation | None = None
        self._step_index = 0
        self._link_down_until: float | None = None
        self._wall0 = 0.0
        self._sim0 = 0.0
        self._validate()

    def _validate(self) -> None:
        check_scenario(self.scenario, self.design, can_cut_power=self.power is not None)

    def _drive_run(self, step: DriveStep) -> DriveRun:
        return _drive_run(self.scenario, self.design, step)

    # I/O ------------------------------------------------------------------------
    def _t_ms(self) -> int:
        return T_OFFSET_MS + int(round(self.t_s * 1000.0))

    async def _pace(self) -> None:
        if not self.realtime:
            return
        due = self._wall0 + (self.t_s - self._sim0)
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _exchange(self, reading: Reading) -> Any:
        """Send one sample; the reply, or None when the firmware did not answer."""
        await self._pace()
        try:
            state = await self.client.sample(
                self._t_ms(), reading.cell_mV, reading.current_mA, reading.temp_ddegC
            )
        except BmsError as exc:
            # Timeouts after every retry, or a reply to a frame damaged in a way CRC
            # retries do not cover: the sample is lost, the next one carries on.
            self.lost_samples += 1
            self._consecutive_lost += 1
            if self._consecutive_lost >= MAX_LOST_SAMPLES:
                raise LinkFailure(
                    f"no reply to {MAX_LOST_SAMPLES} samples in a row at t={self.t_s:.0f} s: {exc}"
                ) from exc
            return None
        self._consecutive_lost = 0
        return state

    async def _hello(self) -> Any:
        hello = await self.client.hello()
        if hello.n_cells != self.n_cells:
            raise InputError(
                self.scenario.source,
                "cell",
                f"the firmware is configured for {hello.n_cells} cell(s), the cell model has "
                f"{self.n_cells}; reflash or reprovision the board for this cell",
            )
        return hello

    # Recording --------------------------------------------------------------------
    def _observe(self, state: Any) -> Observation:
        cap_err = None
        if state.capacity_mAh:
            true_mAh = self.plant.true_capacity_Ah() * 1000.0
            cap_err = (state.capacity_mAh - true_mAh) / true_mAh * 100.0
        soc_true = float(np.mean(self.model.soc))
        obs = Observation(
            t_s=self.t_s,
            chg_on=state.chg_on,
            dsg_on=state.dsg_on,
            faults=state.fault_bits,
            soc_error_pct=abs(state.soc_pct - soc_true * 100.0),
            soc_rmse_pct=self.scorer.soc_rmse_pct,
            capacity_error_pct=cap_err,
        )
        self._last_obs = obs
        self.checker.observe(obs)
        return obs

    def _record(self, ps: PlantStep | None, reading: Reading, state: Any, link_ok: bool) -> None:
        m = self.model
        if state is not None:
            self._last_state = state
            self.plant.set_switches(state.chg_on, state.dsg_on, state.balance_bits)
        st = self._last_state
        soc_true = float(np.mean(m.soc))
        applied = ps.applied_A if ps else 0.0
        if st is not None:
            self.scorer.add(
                self.t_s,
                current_A=applied,
                cell_v_V=m.v_V,
                soc_true=soc_true,
                soc_est=st.soc_pct / 100.0,
                cell_temp_degC=m.temp_degC,
                anode_util_mAh_g=m.anode_util_mAh_g,
                anode_potential_V=m.anode_potential_V,
                chg_on=self.plant.chg_on,
                dsg_on=self.plant.dsg_on,
            )
            if state is not None:
                self._observe(state)
        self.log.add(
            LogRow(
                t_s=self.t_s,
                step=self._step_index,
                demand_A=ps.demand_A if ps else 0.0,
                current_A=applied,
                pack_v_V=m.pack_v_V,
                cell_v_V=m.v_V.copy(),
                soc_true=soc_true,
                soc_min_true=float(np.min(m.soc)),
                temp_max_degC=float(np.max(m.temp_degC)),
                anode_util_max_mAh_g=float(np.max(m.anode_util_mAh_g)),
                anode_potential_min_V=float(np.min(m.anode_potential_V)),
                h_mean=float(np.mean(m.h)),
                meas_current_mA=reading.current_mA,
                fw_soc_pct=st.soc_pct if st else float("nan"),
                fw_soc_unc_pct=st.soc_unc_pct if st else float("nan"),
                fw_capacity_mAh=st.capacity_mAh if st else 0,
                fw_anode_util_mAh_g=st.anode_util_mAh_g if st else float("nan"),
                fw_current_mA=st.current_mA if st else 0,
                chg_on=self.plant.chg_on,
                dsg_on=self.plant.dsg_on,
                faults=st.fault_bits if st else 0,
                latched=st.latched_bits if st else 0,
                warnings=st.warning_bits if st else 0,
                balance=self.plant.balance_bits,
                link_ok=link_ok and state is not None,
            )
        )

    async def _sample_now(self) -> None:
        """Measure the present state and send it without letting time pass (after a (re)start)."""
        reading = self.plant.measure()
        state = await self._exchange(reading)
        self._record(None, reading, state, True)

    async def _advance(self, demand_A: float, dt_s: float) -> PlantStep:
        ps = self.plant.step(demand_A, dt_s)
        self.t_s += dt_s
        self.steps += 1
        down_until = self._link_down_until
        link_up = down_until is None
        if down_until is not None and self.t_s >= down_until - 1e-9:
            await self._link_back()
            link_up = True
        if link_up:
            state = await self._exchange(ps.reading)
        else:
            state = None
            await self._pace()
        self._record(ps, ps.reading, state, link_up)
        return ps

    async def _drop_link(self, duration_s: float) -> None:
        """No frames for duration_s: the firmware's watchdog runs on its own clock, so in
        lockstep the wall-clock pause happens now; the following steps run on (the cells under
        the last switch states, as physical switches would) without samples until then."""
        self._link_down_until = self.t_s + duration_s
        if not self.realtime:
            await asyncio.sleep(duration_s)

    async def _link_back(self) -> None:
        """What the firmware concluded while nobody talked to it, read before the next sample."""
        self._link_down_until = None
        state = await self.client.get_state()
        self._last_state = state
        self._observe(state)
        self.plant.set_switches(state.chg_on, state.dsg_on, state.balance_bits)

    # Steps --------------------------------------------------------------------------
    async def _run_drive(self, step: DriveStep, index: int) -> None:
        run = self._drive_run(step)
        while not run.done:
            if self.t_s >= self.scenario.max_duration_s:
                self.events.append(f"t={self.t_s:.0f} s: stopped at max_duration_s")
                raise _Stop
            dt = run.next_dt_s()
            if dt <= 0.0:
                break
            demand = run.demand(self.model, dt)
            ps = await self._advance(demand, dt)
            run.after_sample(dt, demand, ps.applied_A, ps.result.v_V)
            if self.progress is not None:
                frac = min(run.elapsed_s / run.time_limit_s, 1.0) if run.time_limit_s else 0.5
                self.progress.update(index + frac, f"t={self.t_s / 3600:.2f} h")
        self.events.append(
            f"t={self.t_s:.0f} s: step {index} ({step.text}) ended: {run.end_reason}"
        )

    async def _run_fault(self, step: FaultStep, index: int) -> None:
        kind, value = step.kind, step.value
        sensors = self.plant.sensors
        self.events.append(f"t={self.t_s:.0f} s: step {index}: {step.text}")
        if kind == "current_offset":
            sensors.inject_current_offset(value)
        elif kind == "sensor_noise":
            sensors.set_cell_noise(value)
        elif kind == "freeze_cell":
            sensors.freeze_cell(int(value) - 1)
        elif kind == "unfreeze":
            sensors.unfreeze_all()
        elif kind == "ambient":
            self.model.set_ambient(value)
        elif kind == "corrupt":
            self.client.tx_filter = frame_corrupter(value, self.scenario.seed) if value else None
        elif kind == "drop_link":
            await self._drop_link(value)
        elif kind == "reset":
            await self.client.reset()
            await self.client.wait_boot(BOOT_TIMEOUT_S)
            await self._hello()
            await self._sample_now()
        elif kind == "power_cut":
            assert self.power is not None  # checked in _validate
            await self.power.power_cut()
            await self.power.power_on()
            await self.client.wait_boot(BOOT_TIMEOUT_S)
            await self._hello()
            await self._sample_now()

    # Main ---------------------------------------------------------------------------
    async def run(self) -> LoopOutcome:
        wall_start = time.monotonic()
        hello = await self._hello()
        sensors = Sensors(self.scenario.sensors, self.n_cells, hello.n_temps, self.scenario.seed)
        self.plant = Plant(self.model, sensors, self.scenario.bleed_resistance_ohm)
        self._wall0, self._sim0 = time.monotonic(), self.t_s
        completed = True
        try:
            await self._sample_now()
            for index, step in enumerate(self.scenario.steps):
                self._step_index = index
                if isinstance(step, DriveStep):
                    await self._run_drive(step, index)
                elif isinstance(step, FaultStep):
                    await self._run_fault(step, index)
                elif isinstance(step, ExpectStep):
                    self.checker.add(index, step, self._last_obs)
                if self.progress is not None:
                    self.progress.update(index + 1)
            if self._link_down_until is not None:
                await self._link_back()
        except _Stop:
            completed = False
        self.checker.finish(self.t_s)
        if self.progress is not None:
            self.progress.close()
        final = self._last_state
        return LoopOutcome(
            log=self.log,
            scorer=self.scorer,
            checker=self.checker,
            events=self.events,
            t_end_s=self.t_s,
            wall_s=time.monotonic() - wall_start,
            steps=self.steps,
            lost_samples=self.lost_samples,
            completed=completed,
            hello=dataclasses.asdict(hello),
            final_state=final.as_dict() if final is not None else {},
            capacity_true_Ah=self.plant.true_capacity_Ah(),
        )


class _Stop(Exception):
    """The scenario hit max_duration_s."""


def _drive_run(scenario: Scenario, design: CellDesign, step: DriveStep) -> DriveRun:
    return DriveRun(
        step.step, design.capacity_Ah, scenario.sample_period_s, base_dir=scenario.base_dir
    )


def check_scenario(scenario: Scenario, design: CellDesign, *, can_cut_power: bool) -> None:
    """Reject what cannot run before any I/O: bad cell numbers, power cuts on a port, profiles."""
    src = scenario.source
    n_cells = design.n_series
    for i, step in enumerate(scenario.steps):
        field_name = f"steps[{i}]"
        if isinstance(step, FaultStep):
            if step.kind == "freeze_cell" and step.value > n_cells:
                raise InputError(src, field_name, f"{step.text!r}: the pack has {n_cells} cell(s)")
            if step.kind == "power_cut" and not can_cut_power:
                raise InputError(
                    src,
                    field_name,
                    f"{step.text!r}: cutting power needs a virtual board; "
                    "the host cannot power-cycle a board on a real port",
                )
        elif isinstance(step, DriveStep):
            try:  # loads Run profiles now, so a missing file fails before the board starts
                _drive_run(scenario, design, step)
            except InputError as exc:
                raise InputError(src, field_name, f"{step.text!r}: {exc}") from None

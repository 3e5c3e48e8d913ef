"""The closed loop: scenario steps -> plant -> SAMPLE -> STATE -> switches -> plant -> ...

ClosedLoop sequences; it owns only the run's clock and the link's up/down state.
The plant owns the cells, sensors and switch gates; the recorder owns the score,
the expectations and the log; each scenario step owns its own effect (it calls
the services below, the `StepLoop` interface of host.scenarios.steps); the
board session owns the board and the protocol client. So a virtual board's pty
and a real board's USB port run the same code.

The decision in the reply to sample k gates the current of step k+1, as the
physical switches would. Current is positive on discharge.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellmodel.design import CellDesign
from cellmodel.errors import InputError
from cellmodel.experiment import StepController
from host.board_session import BOOT_TIMEOUT_S, BoardSession
from host.emulator.expectations import ExpectationChecker
from host.emulator.plant import GuardTripped, Plant, PlantStep
from host.emulator.recorder import Recorder
from host.firmware_config import firmware_rules
from host.progress import Progress
from host.protocol import commands
from host.protocol.client import BmsError
from host.protocol.codec import HelloReply, State
from host.report.log import RunLog
from host.scenarios import Expectation, Scenario
from host.scenarios.steps import CheckEnv, check_steps
from host.scoring import Scorer
from host.sensors import Reading, Sensors

# The first sample is stamped 1 s so no real firmware mistakes it for "no sample yet".
T_OFFSET_MS = 1000
# Consecutive samples without a reply before the run is abandoned.
MAX_LOST_SAMPLES = 5
# A dropped link pauses lockstep runs this long past the firmware's watchdog timeout
# (config_ms: the firmware's default when its configuration does not say): time for it to
# trip and act.
WATCHDOG_MARGIN_S = 1.0
# How often a lockstep run hands the event loop a turn (see ClosedLoop._let_others_run).
YIELD_EVERY_S = 0.05


class LinkFailure(RuntimeError):
    """The firmware stopped answering samples."""


class _Stop(Exception):
    """The scenario hit max_duration_s."""


@dataclass(frozen=True)
class _InFlight:
    """A sample sent whose reply has not been read yet (pipelined runs)."""

    ps: PlantStep
    t_s: float
    step_index: int


class RunInterrupted(Exception):
    """The run was cut short (Ctrl-C, a cancelled task): `outcome` holds what ran, scored;
    `cause` is the KeyboardInterrupt or CancelledError to raise again once it is saved."""

    def __init__(self, outcome: LoopOutcome, cause: BaseException) -> None:
        super().__init__("run interrupted")
        self.outcome = outcome
        self.cause = cause


@dataclass
class LoopOutcome:
    log: RunLog
    scorer: Scorer
    checker: ExpectationChecker
    beliefs: dict[str, Any] = field(default_factory=dict)  # estimate quality and availability
    events: list[str] = field(default_factory=list)
    # drive steps whose `until` condition was not reached: their time ran out first
    until_not_reached: list[dict[str, Any]] = field(default_factory=list)
    t_end_s: float = 0.0
    wall_s: float = 0.0
    steps: int = 0
    lost_samples: int = 0
    completed: bool = True
    hello: dict[str, Any] = field(default_factory=dict)
    final_state: dict[str, Any] = field(default_factory=dict)
    capacity_true_Ah: float = 0.0
    guard_event: dict[str, Any] | None = None  # what the cell model refused, if it ended the run
    # why the board stopped answering (LinkFailure), if it ended the run
    board_stopped: str | None = None
    pipeline: dict[str, int] = field(default_factory=dict)


def frame_corrupter(fraction: float, seed: int) -> Callable[[bytes], bytes]:
    """A tx_filter that flips one random bit in `fraction` of the frames (seeded)."""
    rng = np.random.default_rng([seed, 3])

    def corrupt(data: bytes) -> bytes:
        if not data or rng.random() >= fraction:
            return data
        buf = bytearray(data)
        pos = int(rng.integers(0, len(buf)))  # the sync byte too: line noise hits any byte
        buf[pos] ^= 1 << int(rng.integers(0, 8))
        return bytes(buf)

    return corrupt


def _gates(state: State) -> tuple[bool, bool, int, float | None, float | None]:
    """The switches and current limits a reply commands (limits in A; None: not reported)."""
    ccl_mA: int | None = getattr(state, "ccl_mA", None)
    dcl_mA: int | None = getattr(state, "dcl_mA", None)
    return (
        state.chg_on,
        state.dsg_on,
        state.balance_bits,
        None if ccl_mA is None else ccl_mA / 1000.0,
        None if dcl_mA is None else dcl_mA / 1000.0,
    )


def check_scenario(
    scenario: Scenario, design: CellDesign, *, can_cut_power: bool, n_temps: int | None = None
) -> None:
    """Reject what cannot run before any I/O: bad cell or sensor numbers, power cuts on a
    port, profiles. n_temps: the sensors the board will report, where known before it starts."""
    env = CheckEnv(
        n_cells=design.n_series,
        capacity_Ah=design.capacity_Ah,
        sample_period_s=scenario.sample_period_s,
        base_dir=scenario.base_dir,
        can_cut_power=can_cut_power,
        n_temps=n_temps,
    )
    check_steps(scenario.steps, env, scenario.source, scenario.step_fields)


def config_ms(config: dict[str, Any], key: str) -> int:
    """A timing key of the firmware's configuration (a CONFIG reply), or the firmware's own
    default (config_rules.DEFAULTS, as its boot merges the file over them)."""
    return int(config.get(key, firmware_rules().DEFAULTS[key]))


def timing_problem(period_ms: int, config: dict[str, Any], *, realtime: bool) -> str | None:
    """Why a board configured with `config` cannot be sampled every period_ms, or None.

    The firmware counts at most max_dt_ms of one sample (a longer interval is a gap: the
    charge in it goes uncounted and the SOC's interval widens), and in real time its link
    watchdog trips link_timeout_ms after the last sample. Both follow the sample period of
    the board file it was flashed with (host.firmware_config).
    """
    max_dt_ms = config_ms(config, "max_dt_ms")
    link_ms = config_ms(config, "link_timeout_ms")
    fix = f"flash the board with sample_period_ms = {period_ms} in its board file"
    if period_ms > max_dt_ms:
        return (
            f"{period_ms / 1000:g} s, but the board counts at most {max_dt_ms} ms per sample "
            f"(max_dt_ms): every sample would be a gap in its count; {fix}"
        )
    if realtime and period_ms >= link_ms:
        return (
            f"{period_ms / 1000:g} s, but the board's link watchdog opens both switches "
            f"{link_ms} ms after the last sample (link_timeout_ms); {fix}"
        )
    return None


class ClosedLoop:
    """Runs a checked scenario (check_scenario) against a started board session."""

    def __init__(
        self,
        scenario: Scenario,
        design: CellDesign,
        board: BoardSession,
        *,
        nameplate_Ah: float | None = None,
        realtime: bool = False,
        pipelined: bool = False,
        progress: Progress | None = None,
    ) -> None:
        """`design` is the simulated cell (the truth); `nameplate_Ah` the capacity a cycler's
        C-rates refer to (the datasheet the BMS is configured from; default: the design's).
        `pipelined` (lockstep only): the host steps the cells for the next sample while the
        firmware works on this one; the results are the same, sooner (see advance())."""
        self.scenario = scenario
        self.design = design
        self.nameplate_Ah = design.capacity_Ah if nameplate_Ah is None else nameplate_Ah
        self.board = board
        self.realtime = realtime
        self.pipelined = pipelined and not realtime
        self._in_flight: _InFlight | None = None
        # A sample's record held back until the next sample is on its way (pipelined): the
        # recorder's work then overlaps the firmware's (see _record).
        self._unrecorded: tuple[Any, ...] | None = None
        self.overlapped = 0  # steps taken while the firmware worked (pipelined)
        self.restepped = 0  # ... of which the reply changed the switches: stepped again
        self._progress = progress
        whole_run = [
            (i, s)
            for i, s in enumerate(scenario.steps)
            if isinstance(s, Expectation) and s.whole_run
        ]
        self.recorder = Recorder(design, nameplate_Ah=self.nameplate_Ah, whole_run=whole_run)
        self.events: list[str] = []
        self.unmet: list[dict[str, Any]] = []
        self._t_s = 0.0
        self.steps = 0
        self.lost_samples = 0
        self._consecutive_lost = 0
        self._step_index = 0
        self._link_down_until: float | None = None
        self._last_ps: PlantStep | None = None
        self._plant: Plant | None = None
        self._wall0 = 0.0
        self._sim0 = 0.0
        self._watchdog: float | None = None
        self._next_yield = 0.0

    # -- the StepLoop services (host.scenarios.steps.base) -------------------------------
    @property
    def t_s(self) -> float:
        return self._t_s

    @property
    def capacity_Ah(self) -> float:
        return self.nameplate_Ah

    @property
    def sample_period_s(self) -> float:
        return self.scenario.sample_period_s

    @property
    def base_dir(self) -> Path:
        return self.scenario.base_dir

    @property
    def plant(self) -> Plant:
        if self._plant is None:
            raise RuntimeError("the plant exists once the firmware has said HELLO")
        return self._plant

    @property
    def sensors(self) -> Sensors:
        return self.plant.sensors

    @property
    def ambient_degC(self) -> float:
        return self.plant.ambient_degC

    def demand_A(self, ctrl: StepController, dt_s: float) -> float:
        return self.plant.demand_A(ctrl, dt_s)

    def check_time(self) -> None:
        if self._t_s >= self.scenario.max_duration_s:
            self.event("stopped at max_duration_s")
            raise _Stop

    def progress(self, done_steps: float, note: str = "") -> None:
        if self._progress is not None:
            self._progress.update(done_steps, note)

    def event(self, text: str) -> None:
        self.events.append(f"t={self._t_s:.0f} s: {text}")

    def until_not_reached(self, index: int, text: str, until: str, ended: str) -> None:
        self.unmet.append(
            {"step": index, "text": text, "until": until, "ended": ended, "t_s": self._t_s}
        )

    def set_ambient(self, degC: float) -> None:
        self.plant.set_ambient(degC)

    def corrupt_frames(self, fraction: float) -> None:
        corrupter = frame_corrupter(fraction, self.scenario.seed) if fraction else None
        self.board.client.tx_filter = corrupter

    def expect(self, index: int, step: Expectation) -> None:
        self._record_held()
        self.recorder.expect(index, step)

    async def advance(self, demand_A: float, dt_s: float) -> PlantStep:
        """One sample period: the plant steps, the firmware gets the reading (unless the link
        is down) and its reply sets the gates for the next period. Pipelined, the reply is
        awaited when the next period needs it (see _step_overlapped)."""
        await self._let_others_run()
        if self._in_flight is not None:
            ps = await self._step_overlapped(demand_A, dt_s)
        else:
            ps = self.plant.step(demand_A, dt_s)
        self._t_s += dt_s
        self.steps += 1
        down_until = self._link_down_until
        link_up = down_until is None
        if down_until is not None and self._t_s >= down_until - 1e-9:
            await self._link_back(logged=False)
            link_up = True
        if link_up:
            await self._sample(ps)
        else:
            await self._pace()
            self._record(ps, None, False)
        if self.plant.guard_event is not None:  # after the firmware saw it, as a board would
            await self.flush()
            raise GuardTripped(self.plant.guard_event)
        return ps

    async def _step_overlapped(self, demand_A: float, dt_s: float) -> PlantStep:
        """Step the cells while the firmware still works on the sample in flight, under the
        switches in force; when its reply changes them, step again from the snapshot. The
        result is exactly the step taken after the reply (the snapshot restores the cells
        and the sensors' random draws), only earlier: the host and the firmware overlap."""
        plant = self.plant
        snap = plant.snapshot()
        gates = plant.gates
        try:
            ps: PlantStep | None = plant.step(demand_A, dt_s)
        except GuardTripped:
            ps = None  # maybe not under the reply's switches: decided after it
        await self.flush(hold=True)
        self.overlapped += 1
        if ps is not None and plant.gates == gates:
            return ps
        self.restepped += 1
        plant.restore(snap)
        return plant.step(demand_A, dt_s)

    async def flush(self, *, hold: bool = False) -> None:
        """The reply to the sample in flight, recorded with that sample: its gates in force.
        `hold`: the record is handed to the recorder once the next sample is sent."""
        pending, self._in_flight = self._in_flight, None
        if pending is not None:
            reply = await self._settle(self.board.client.finish())
            self._record(pending.ps, reply, True, at=(pending.t_s, pending.step_index), hold=hold)
        if not hold:
            self._record_held()

    async def _sample(self, ps: PlantStep) -> None:
        """Send the sample's reading: pipelined, it stays in flight; else the reply is awaited
        and recorded now."""
        if not self.pipelined:
            self._record(ps, await self._exchange(ps.reading), True)
            return
        r = ps.reading
        try:
            self.board.client.send(
                commands.sample(self._t_ms(), r.cell_mV, r.current_mA, r.temp_ddegC)
            )
            self._in_flight = _InFlight(ps, self._t_s, self._step_index)
        finally:
            self._record_held()  # the previous sample's, while the firmware works on this one

    async def drop_link(self, duration_s: float) -> None:
        """No frames for duration_s: the firmware's watchdog runs on its own clock, so in
        lockstep the wall-clock pause happens now; the following steps run on (the cells under
        the last switch states, as physical switches would) without samples until then. The
        pause lasts only until the watchdog must have tripped: nothing else on the firmware's
        own clock changes after that, so "Drop link for 1 day" does not take a day."""
        self._link_down_until = self._t_s + duration_s
        if not self.realtime:
            await asyncio.sleep(min(duration_s, await self._watchdog_s() + WATCHDOG_MARGIN_S))

    async def reset_board(self) -> None:
        client = self.board.client
        await client.reset()
        await client.wait_boot(BOOT_TIMEOUT_S)
        await self._after_boot()

    async def cut_power(self) -> None:
        await self.board.power_cut()
        await self.board.power_on()
        await self.board.client.wait_boot(BOOT_TIMEOUT_S)
        await self._after_boot()

    async def _let_others_run(self) -> None:
        """In lockstep the loop never waits on the event loop (host.link.LockstepLink), so it
        yields now and then: timeouts, cancellation (a campaign's per-run timeout, Ctrl-C)
        and the board's supervisor get their turn every YIELD_EVERY_S of wall time."""
        now = time.monotonic()
        if now >= self._next_yield:
            self._next_yield = now + YIELD_EVERY_S
            await asyncio.sleep(0)

    async def _check_timing(self) -> None:
        """A board set up for faster samples than the scenario's is bad input (a flashed
        board keeps its board file's timing), found before the first sample."""
        config = await self.board.client.config_read()
        period_ms = round(self.scenario.sample_period_s * 1000)
        problem = timing_problem(period_ms, config, realtime=self.realtime)
        if problem is not None:
            raise InputError(self.scenario.source, "sample_period_s", problem)

    async def _watchdog_s(self) -> float:
        """The firmware's link watchdog timeout, from its configuration (read once)."""
        if self._watchdog is None:
            config = await self.board.client.config_read()
            self._watchdog = config_ms(config, "link_timeout_ms") / 1000.0
        return self._watchdog

    # -- I/O --------------------------------------------------------------------------------
    def _t_ms(self) -> int:
        return T_OFFSET_MS + int(round(self._t_s * 1000.0))

    async def _pace(self) -> None:
        if not self.realtime:
            return
        delay = self._wall0 + (self._t_s - self._sim0) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _exchange(self, reading: Reading) -> State | None:
        """Send one sample; the reply, or None when the firmware did not answer."""
        await self._pace()
        return await self._settle(
            self.board.client.sample(
                self._t_ms(), reading.cell_mV, reading.current_mA, reading.temp_ddegC
            )
        )

    async def _settle(self, reply: Awaitable[State]) -> State | None:
        """A sample's reply, or None when it was lost (timeouts after every retry, or a reply
        damaged in a way CRC retries do not cover): the next sample carries on, up to
        MAX_LOST_SAMPLES in a row."""
        try:
            state = await reply
        except BmsError as exc:
            self.lost_samples += 1
            self._consecutive_lost += 1
            if self._consecutive_lost >= MAX_LOST_SAMPLES:
                raise LinkFailure(
                    f"no reply to {MAX_LOST_SAMPLES} samples in a row at t={self._t_s:.0f} s: {exc}"
                ) from exc
            return None
        self._consecutive_lost = 0
        return state

    async def _hello(self) -> HelloReply:
        hello = await self.board.client.hello()
        if hello.n_cells != self.design.n_series:
            raise InputError(
                self.scenario.source,
                "cell",
                f"the firmware is configured for {hello.n_cells} cell(s), the cell model has "
                f"{self.design.n_series}; reflash or reprovision the board for this cell",
            )
        return hello

    async def _after_boot(self) -> None:
        """The firmware (re)started: open a session and sample at once, no time passing."""
        await self._hello()
        ps = self.plant.measure()
        self._record(ps, await self._exchange(ps.reading), True)

    async def _link_back(self, *, logged: bool) -> None:
        """What the firmware concluded while nobody talked to it, read before the next sample;
        judged against the truth of the step just taken (`logged`: already in the log)."""
        self._link_down_until = None
        self._record_held()
        state = await self.board.client.get_state()
        self.recorder.reply(self._t_s, state, self.plant.true_capacity_Ah(), logged=logged)
        self.plant.set_gates(*_gates(state))

    def _record(
        self,
        ps: PlantStep,
        reply: State | None,
        link_up: bool,
        *,
        at: tuple[float, int] | None = None,
        hold: bool = False,
    ) -> None:
        """Log and score a sample; `at`: its time and step index when not the present ones
        (a sample recorded when its reply came back, one period later). `hold`: what is
        recorded is taken now, the recorder gets it in _record_held() (the next sample is
        sent first); every path to the recorder passes there first, so the order is kept."""
        self._record_held()
        plant = self.plant
        if reply is not None:
            plant.set_gates(*_gates(reply))
        self._last_ps = ps
        t_s, index = at if at is not None else (self._t_s, self._step_index)
        record = (
            t_s,
            (index, self.scenario.cycle_of(index), plant.ambient_degC),
            ps,
            plant.gates,
            reply,
            link_up,
            plant.true_capacity_Ah(),
        )
        self._unrecorded = record
        if not hold:
            self._record_held()

    def _record_held(self) -> None:
        record, self._unrecorded = self._unrecorded, None
        if record is not None:
            t_s, place, ps, gates, reply, link_up, cap_Ah = record
            self.recorder.sample(
                t_s, place, ps, gates, reply, link_up=link_up, capacity_true_Ah=cap_Ah
            )

    # -- the run ----------------------------------------------------------------------------
    async def _run_steps(self) -> None:
        for index, step in enumerate(self.scenario.steps):
            await self.flush()  # every step starts from a settled loop
            self._step_index = index
            if step.LOGGED_AT_START:
                self.event(f"step {index}: {step.text}")
            try:
                await step.run(self, index)
            except InputError:
                raise
            except ValueError as exc:  # a step that cannot act on this board (a missing probe)
                raise InputError(
                    self.scenario.source, self.scenario.field_of(index), f"{step.text!r}: {exc}"
                ) from None
            self.progress(index + 1)
        await self.flush()
        if self._link_down_until is not None and self._last_ps is not None:
            await self._link_back(logged=True)

    async def run(self) -> LoopOutcome:
        wall_start = time.monotonic()
        hello = await self._hello()
        await self._check_timing()
        self.recorder.log.start_unix_s = time.time()
        self._plant = Plant.for_scenario(self.scenario, self.design, hello.n_temps)
        self._wall0, self._sim0 = time.monotonic(), self._t_s
        completed = True
        board_stopped: str | None = None
        interrupted: BaseException | None = None
        try:
            ps = self.plant.measure()
            self._record(ps, await self._exchange(ps.reading), True)
            await self._run_steps()
        except _Stop:
            completed = False
            await self.flush()
        except GuardTripped as exc:
            completed = False
            self._record_held()
            self.event(f"the cell model stopped the run: {exc.event.message}")
        except LinkFailure as exc:
            # A board that stopped answering ends the run like a guard rail: what ran so far
            # is scored and written, the run failed (exit 1), marked board_stopped.
            completed, board_stopped = False, str(exc)
            self._in_flight = None  # its reply is one of those that never came
            self._record_held()
            self.event(f"the board stopped answering: {exc}")
        except (asyncio.CancelledError, KeyboardInterrupt) as exc:
            # Ctrl-C or a caller's timeout: what ran so far is still a valid, scored record.
            completed, interrupted = False, exc
            self._record_held()
            self.event("interrupted")
            pending, self._in_flight = self._in_flight, None
            if pending is not None:  # the cells took the step; its reply never came
                self._record(pending.ps, None, True, at=(pending.t_s, pending.step_index))
        outcome = self._outcome(hello, wall_start, completed)
        outcome.board_stopped = board_stopped
        if interrupted is not None:
            raise RunInterrupted(outcome, interrupted)
        return outcome

    def _outcome(self, hello: HelloReply, wall_start: float, completed: bool) -> LoopOutcome:
        self._record_held()
        rec = self.recorder
        rec.finish(self._t_s)
        if self._progress is not None:
            self._progress.close()
        final = rec.last_reply
        guard = self.plant.guard_event
        return LoopOutcome(
            log=rec.log,
            scorer=rec.scorer,
            checker=rec.checker,
            beliefs=rec.beliefs,
            events=self.events,
            until_not_reached=self.unmet,
            t_end_s=self._t_s,
            wall_s=time.monotonic() - wall_start,
            steps=self.steps,
            lost_samples=self.lost_samples,
            completed=completed,
            hello=dataclasses.asdict(hello),
            final_state=final.as_dict() if final is not None else {},
            capacity_true_Ah=self.plant.true_capacity_Ah(),
            guard_event=None if guard is None else guard.as_dict(),
            pipeline={"overlapped_steps": self.overlapped, "restepped": self.restepped},
        )

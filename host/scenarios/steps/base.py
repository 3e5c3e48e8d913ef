"""What every scenario step is, and what a running step may ask of the loop.

A step is one object per kind (in the spirit of PyBaMM's experiment step
classes): it owns its parse (`PATTERN` + `from_match`), its check before any
I/O (`check`), its effect on the loop (`run`) and, for expectations, its
judgement. The closed loop (host.emulator.loop.ClosedLoop) implements
`StepLoop`; steps see nothing else of it, so a new step never reaches into the
loop's internals.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from cellmodel.experiment import StepController
    from host.sensors import Sensors


@dataclass(frozen=True)
class CheckEnv:
    """What a step may be checked against before the board starts."""

    n_cells: int
    capacity_Ah: float
    sample_period_s: float
    base_dir: Path
    can_cut_power: bool
    # temperature sensors the board will report: known before it starts only for a board
    # the run provisions (virtual, QEMU); None on a real port, which says so when it answers
    n_temps: int | None = None


@dataclass(frozen=True)
class Observation:
    """What expectations look at: the firmware's latest reply against the truth, and the score
    so far. Percent values are of capacity; current positive on discharge. `rested`: the
    run's first rest (host.estimate_scoring.CALIBRATION_REST_S, 30 min) has happened."""

    t_s: float
    chg_on: bool
    dsg_on: bool
    faults: int
    soc_error_pct: float
    soc_rmse_pct: float
    capacity_error_pct: float | None
    rested: bool = False


class Applied(Protocol):
    """What a drive step learns from one sample: the current that flowed and the cell voltages."""

    @property
    def applied_A(self) -> float: ...

    @property
    def cell_v_V(self) -> NDArray[np.float64]: ...


class StepLoop(Protocol):
    """The services a running step may use (host.emulator.loop.ClosedLoop implements them)."""

    @property
    def t_s(self) -> float: ...

    @property
    def capacity_Ah(self) -> float: ...

    @property
    def sample_period_s(self) -> float: ...

    @property
    def base_dir(self) -> Path: ...

    @property
    def sensors(self) -> Sensors: ...

    @property
    def ambient_degC(self) -> float: ...

    def demand_A(self, ctrl: StepController, dt_s: float) -> float: ...

    async def advance(self, demand_A: float, dt_s: float) -> Applied: ...

    def check_time(self) -> None: ...

    def progress(self, done_steps: float, note: str = "") -> None: ...

    def event(self, text: str) -> None: ...

    def until_not_reached(self, index: int, text: str, until: str, ended: str) -> None: ...

    def set_ambient(self, degC: float) -> None: ...

    def corrupt_frames(self, fraction: float) -> None: ...

    async def drop_link(self, duration_s: float) -> None: ...

    async def reset_board(self) -> None: ...

    async def cut_power(self) -> None: ...

    def expect(self, index: int, step: Expectation) -> None: ...


class ScenarioStep(ABC):
    """One step of a scenario. Subclasses set `PATTERN` (matched against the whole text, case
    insensitive) and `from_match`, or override `parse`. `LEAD` (matched at the start) and
    `FORMS` (as docs/scenarios.md writes them): a text that starts as this kind does but
    does not match is this kind's, refused with its forms, not read as another kind."""

    PATTERN: ClassVar[re.Pattern[str] | None] = None
    LEAD: ClassVar[re.Pattern[str] | None] = None
    FORMS: ClassVar[tuple[str, ...]] = ()
    # Steps that act at once are noted in the run's events when they start.
    LOGGED_AT_START: ClassVar[bool] = True
    text: str

    @classmethod
    def parse(cls, text: str) -> ScenarioStep | None:
        """This kind's step for `text`, or None when the text is another kind. A text of this
        kind with a bad value raises ValueError with the reason."""
        if cls.PATTERN is None:
            return None
        body = text.strip().rstrip(".")
        m = cls.PATTERN.fullmatch(body)
        if m:
            return cls.from_match(text, m)
        if cls.LEAD is not None and cls.LEAD.match(body):
            raise ValueError("expected " + " or ".join(repr(form) for form in cls.FORMS))
        return None

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> ScenarioStep:
        raise NotImplementedError(cls.__name__)

    def check(self, env: CheckEnv) -> None:  # noqa: B027 (most steps have nothing to check)
        """Raise ValueError (the reason) when this step cannot run in `env`; check_steps
        names the scenario file, the step's field and its text before it (before the reason
        alone of a cellmodel StepError; an InputError of a file the step reads keeps that
        file's name)."""

    @abstractmethod
    async def run(self, loop: StepLoop, index: int) -> None:
        """The step's effect on the running loop; `index` is its place in the scenario."""


@dataclass(frozen=True)
class Expectation(ScenarioStep):
    """A step that judges the firmware's replies, over the window its text states.

    - latest (no suffix): judged on the latest reply when the scenario reaches it;
      with `within_s` ("within 2 s"), it passes at the first reply within that many
      seconds of simulated time that meets it and fails at the first reply after.
    - throughout: every reply of the whole run must meet it, wherever the step stands.
    - after_first_rest: every reply after the run's first rest (30 minutes of true current
      at most C/50, host.estimate_scoring.CALIBRATION_REST_S) must meet it.
    """

    LOGGED_AT_START: ClassVar[bool] = False
    text: str
    within_s: float | None = field(default=None, kw_only=True)
    window: str = field(default="latest", kw_only=True)

    @property
    def whole_run(self) -> bool:
        """Judged over a window of the whole run, not where the step stands."""
        return self.window != "latest"

    @abstractmethod
    def judge(self, obs: Observation) -> tuple[bool, str]:
        """(met, what was seen) for one observation."""

    async def run(self, loop: StepLoop, index: int) -> None:
        loop.expect(index, self)

"""Fault steps: they act at once on the sensors, the link, the ambient or the board.

Inject current offset 20 mA        Set sensor noise 5 mV
Freeze cell 2 voltage              Unfreeze cells
Corrupt 1% of frames               Set ambient 50 degC
Drop link for 5 s                  Reset board
Cut board power
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cellmodel.quantities import (
    AMBIENT_DEGC,
    DURATION_S,
    SIGNED_DURATION,
    SIGNED_NUMBER,
    Range,
    seconds,
)
from host.scenarios.steps.base import CheckEnv, ScenarioStep, StepLoop

_NUM = SIGNED_NUMBER
# Plausible ranges of the values fault steps take (beyond them a scenario is a typo).
CURRENT_OFFSET_MA = Range(-100_000.0, 100_000.0, "mA")  # the firmware's largest i_range_mA
CELL_NOISE_MV = Range(0.0, 500.0, "mV")


def plausible(value: float, valid: Range, what: str) -> float:
    """value, or ValueError naming the plausible range."""
    if not valid.contains(value):
        raise ValueError(valid.outside(value, what))
    return value


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


@dataclass(frozen=True)
class InjectCurrentOffset(ScenarioStep):
    """A fixed offset on the current channel, on top of its calibration residue."""

    text: str
    offset_mA: float
    PATTERN = _rx(rf"inject current offset (?:of )?{_NUM}\s*ma")
    LEAD = _rx(r"inject\b")
    FORMS = ("Inject current offset N mA",)

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> InjectCurrentOffset:
        return cls(text, plausible(float(m.group(1)), CURRENT_OFFSET_MA, "the offset"))

    async def run(self, loop: StepLoop, index: int) -> None:
        loop.sensors.inject_current_offset(self.offset_mA)


@dataclass(frozen=True)
class SetSensorNoise(ScenarioStep):
    """White noise (1 sigma) on every cell-voltage channel from now on."""

    text: str
    noise_mV: float
    PATTERN = _rx(rf"set (?:cell |sensor )?(?:voltage )?noise (?:to )?{_NUM}\s*mv")
    LEAD = _rx(r"set (?:cell |sensor )?(?:voltage )?noise\b")
    FORMS = ("Set sensor noise N mV",)

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> SetSensorNoise:
        value = float(m.group(1))
        if value < 0:
            raise ValueError("noise must be >= 0 mV")
        return cls(text, plausible(value, CELL_NOISE_MV, "the noise"))

    async def run(self, loop: StepLoop, index: int) -> None:
        loop.sensors.set_cell_noise(self.noise_mV)


@dataclass(frozen=True)
class FreezeCell(ScenarioStep):
    """Cell channel `cell` (1-based) repeats its last reading from now on."""

    text: str
    cell: int
    PATTERN = _rx(r"freeze cell (\d+)(?: voltage)?")
    LEAD = _rx(r"freeze\b")
    FORMS = ("Freeze cell N voltage",)

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> FreezeCell:
        cell = int(m.group(1))
        if cell < 1:
            raise ValueError("cells are numbered from 1")
        return cls(text, cell)

    def check(self, env: CheckEnv) -> None:
        if self.cell > env.n_cells:
            raise ValueError(f"the pack has {env.n_cells} cell(s)")

    async def run(self, loop: StepLoop, index: int) -> None:
        loop.sensors.freeze_cell(self.cell - 1)


@dataclass(frozen=True)
class UnfreezeCells(ScenarioStep):
    text: str
    PATTERN = _rx(r"unfreeze (?:all )?cells?(?: voltages?)?")
    LEAD = _rx(r"unfreeze\b")
    FORMS = ("Unfreeze cells",)

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> UnfreezeCells:
        return cls(text)

    async def run(self, loop: StepLoop, index: int) -> None:
        loop.sensors.unfreeze_all()


@dataclass(frozen=True)
class CorruptFrames(ScenarioStep):
    """One random bit flipped in this fraction of the host's frames (0 stops it)."""

    text: str
    fraction: float
    PATTERN = _rx(rf"corrupt {_NUM}\s*% of (?:the )?frames")
    LEAD = _rx(r"corrupt\b")
    FORMS = ("Corrupt N% of frames",)

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> CorruptFrames:
        pct = float(m.group(1))
        if not 0.0 <= pct <= 100.0:
            raise ValueError(f"fraction {pct:g}% outside 0..100%")
        return cls(text, pct / 100.0)

    async def run(self, loop: StepLoop, index: int) -> None:
        loop.corrupt_frames(self.fraction)


@dataclass(frozen=True)
class SetAmbient(ScenarioStep):
    text: str
    ambient_degC: float
    PATTERN = _rx(rf"set ambient (?:temperature )?(?:to )?{_NUM}\s*(?:deg ?c|°c|c)")
    LEAD = _rx(r"set ambient\b")
    FORMS = ("Set ambient N degC",)

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> SetAmbient:
        return cls(text, plausible(float(m.group(1)), AMBIENT_DEGC, "the ambient"))

    async def run(self, loop: StepLoop, index: int) -> None:
        loop.set_ambient(self.ambient_degC)


@dataclass(frozen=True)
class DropLink(ScenarioStep):
    """No frames for a while: the firmware's link watchdog runs on its own clock."""

    text: str
    duration_s: float
    PATTERN = _rx(rf"drop (?:the )?link for {SIGNED_DURATION}")
    LEAD = _rx(r"drop\b")
    FORMS = ("Drop link for N s",)

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> DropLink:
        duration = seconds(m.group(1), m.group(2))
        if duration <= 0:
            raise ValueError("the duration must be > 0 s")
        return cls(text, plausible(duration, DURATION_S, "the duration"))

    async def run(self, loop: StepLoop, index: int) -> None:
        await loop.drop_link(self.duration_s)


@dataclass(frozen=True)
class ResetBoard(ScenarioStep):
    """The firmware's RESET command: it persists, reboots and is sampled again."""

    text: str
    PATTERN = _rx(r"reset (?:the )?board")
    LEAD = _rx(r"reset\b")
    FORMS = ("Reset board",)

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> ResetBoard:
        return cls(text)

    async def run(self, loop: StepLoop, index: int) -> None:
        await loop.reset_board()


@dataclass(frozen=True)
class CutPower(ScenarioStep):
    """Power off and on: RAM is lost, only what the firmware persisted survives."""

    text: str
    PATTERN = _rx(r"cut (?:the )?board(?:'s)? power|cut power")
    LEAD = _rx(r"cut\b")
    FORMS = ("Cut board power",)

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> CutPower:
        return cls(text)

    def check(self, env: CheckEnv) -> None:
        if not env.can_cut_power:
            raise ValueError(
                "cutting power needs a virtual board; "
                "the host cannot power-cycle a board on a real port"
            )

    async def run(self, loop: StepLoop, index: int) -> None:
        await loop.cut_power()


# -- broken sensors ------------------------------------------------------------------------
# What a broken channel reads. An open cell tap reads 0 or the protocol's full scale; an open
# NTC reads its coldest rail and a shorted one its hottest, both outside every plausible cell
# temperature (the firmware's valid range defaults to -40..125 degC).
TAP_FULL_SCALE_mV = 65535
THERMISTOR_OPEN_degC = -60.0
THERMISTOR_SHORT_degC = 150.0


@dataclass(frozen=True)
class OpenCellTap(ScenarioStep):
    """Cell channel `cell` (1-based) lost its sense wire: it reads 0 mV or full scale."""

    text: str
    cell: int
    reads_mV: int = 0
    PATTERN = _rx(r"open cell (\d+) (?:voltage )?tap(?: reading (0 mv|full scale))?")
    LEAD = _rx(r"open cell\b")
    FORMS = ("Open cell N tap", "Open cell N tap reading full scale")

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> OpenCellTap:
        cell = int(m.group(1))
        if cell < 1:
            raise ValueError("cells are numbered from 1")
        high = (m.group(2) or "").lower() == "full scale"
        return cls(text, cell, TAP_FULL_SCALE_mV if high else 0)

    def check(self, env: CheckEnv) -> None:
        if self.cell > env.n_cells:
            raise ValueError(f"the pack has {env.n_cells} cell(s)")

    async def run(self, loop: StepLoop, index: int) -> None:
        loop.sensors.open_cell_tap(self.cell - 1, self.reads_mV)


@dataclass(frozen=True)
class StickCurrentSensor(ScenarioStep):
    """The current channel reads a constant: the given current, or its last reading."""

    text: str
    reads_mA: int | None = None
    PATTERN = _rx(rf"stick (?:the )?current sensor(?: at {_NUM}\s*ma)?")
    LEAD = _rx(r"stick\b")
    FORMS = ("Stick current sensor", "Stick current sensor at N mA")

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> StickCurrentSensor:
        if m.group(1) is None:
            return cls(text)
        value = float(m.group(1))
        if abs(value) > 100_000:
            raise ValueError(f"{value:g} mA outside the plausible -100000..100000 mA")
        return cls(text, int(round(value)))

    async def run(self, loop: StepLoop, index: int) -> None:
        loop.sensors.stick_current(self.reads_mA)


@dataclass(frozen=True)
class BreakThermistor(ScenarioStep):
    """Temperature probe `probe` (1-based) open (reads its cold rail) or shorted (hot rail)."""

    text: str
    probe: int
    reads_degC: float
    PATTERN = _rx(r"(open|short) thermistor (\d+)")
    LEAD = _rx(r"(?:open|short) thermistor\b")
    FORMS = ("Open thermistor N", "Short thermistor N")

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> BreakThermistor:
        probe = int(m.group(2))
        if probe < 1:
            raise ValueError("thermistors are numbered from 1")
        opened = m.group(1).lower() == "open"
        return cls(text, probe, THERMISTOR_OPEN_degC if opened else THERMISTOR_SHORT_degC)

    def check(self, env: CheckEnv) -> None:
        if env.n_temps is not None and self.probe > env.n_temps:
            raise ValueError(
                f"probe {self.probe} out of range 1..{env.n_temps} (the board reports "
                f"{env.n_temps} temperature sensor(s) for {env.n_cells} cell(s))"
            )

    async def run(self, loop: StepLoop, index: int) -> None:
        loop.sensors.break_thermistor(self.probe - 1, self.reads_degC)


@dataclass(frozen=True)
class StepCurrentGain(ScenarioStep):
    """The current channel's gain error changes at once (a shunt or amplifier that drifted)."""

    text: str
    error_ppm: float
    PATTERN = _rx(rf"step (?:the )?current (?:sensor )?gain (?:error )?by {_NUM}\s*%")
    LEAD = _rx(r"step\b")
    FORMS = ("Step current gain by N%",)

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> StepCurrentGain:
        pct = float(m.group(1))
        if not -50.0 <= pct <= 50.0:
            raise ValueError(f"{pct:g}% outside the plausible -50..50%")
        return cls(text, pct * 1e4)

    async def run(self, loop: StepLoop, index: int) -> None:
        loop.sensors.step_current_gain(self.error_ppm)


@dataclass(frozen=True)
class RepairSensors(ScenarioStep):
    """Every injected sensor fault cleared (taps, probes, stuck or drifted current, offsets)."""

    text: str
    PATTERN = _rx(r"repair (?:all )?sensors")
    LEAD = _rx(r"repair\b")
    FORMS = ("Repair sensors",)

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> RepairSensors:
        return cls(text)

    async def run(self, loop: StepLoop, index: int) -> None:
        loop.sensors.repair_all()

"""Turn the cell model's true values into the readings a BMS front end would report.

Each channel has a fixed gain and offset error (drawn once per run from the
scenario's seed, like a board's calibration residue), white noise per sample
and the ADC's resolution (readings are rounded to whole LSBs). Faults change
the model during a run: an extra current offset, more voltage noise, a frozen
cell channel that repeats its last reading.

Small packs (up to FAST_PATH_MAX_CELLS cells, the closed loop's) are read on Python
floats with the noise pre-drawn in blocks: numpy's per-call overhead is most of a
vectorized read's time for a few channels. The readings are the vectorized read's bit for
bit (tests/host/test_sensors_fastpath.py compares them): the same operations in the same
order, and every channel gets the same standard normals from the same Generator in the
same order (Generator.normal draws one value after another, whether one call asks for
many or many calls for one).

Current is positive on discharge, in the readings as in the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cellmodel.errors import InputError, unknown_key
from cellmodel.smallpack import FAST_PATH_MAX_CELLS, np_max

# Reads' worth of standard normals the fast path draws at once (small enough that copying
# the block list for a snapshot of the sensors stays cheap).
NOISE_BLOCK_READS = 64

# Plausible range of each SensorSpec field: outside it a scenario is a typo, not a test.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "cell_lsb_mV": (0.001, 100.0),
    "cell_gain_ppm": (0.0, 1e5),
    "cell_offset_mV": (0.0, 500.0),
    "cell_noise_mV": (0.0, 500.0),
    "current_lsb_mA": (0.001, 1000.0),
    "current_gain_ppm": (0.0, 1e5),
    "current_offset_mA": (0.0, 5000.0),
    "current_noise_mA": (0.0, 5000.0),
    "temp_lsb_degC": (0.001, 10.0),
    "temp_offset_degC": (0.0, 20.0),
    "temp_noise_degC": (0.0, 20.0),
    "current_bias_mA": (-5000.0, 5000.0),
    "current_gain_bias_ppm": (-1e5, 1e5),
    "cell_bias_mV": (-500.0, 500.0),
    "temp_bias_degC": (-20.0, 20.0),
}


@dataclass(frozen=True)
class SensorSpec:
    """Error budget of the measurement chain (1-sigma values unless named otherwise).

    The defaults are a realistic, calibrated BMS front end: a 1 mV cell ADC with
    +-0.05 % gain and 1 mV offset spread, a 1 mA current channel with 0.3 % gain
    error and a 3 mA offset, 0.1 degC thermistor resolution.
    """

    cell_lsb_mV: float = 1.0
    cell_gain_ppm: float = 500.0
    cell_offset_mV: float = 1.0
    cell_noise_mV: float = 0.5
    current_lsb_mA: float = 1.0
    current_gain_ppm: float = 3000.0
    current_offset_mA: float = 3.0
    current_noise_mA: float = 5.0
    temp_lsb_degC: float = 0.1
    temp_offset_degC: float = 0.3
    temp_noise_degC: float = 0.1
    # Fixed systematic errors on top of the drawn ones (a robustness test's worst cases:
    # "offset +20 mA", "gain -2 %", every cell channel 5 mV high from a shared ADC
    # reference, a thermistor 2 degC warm from its mounting); signed, unlike the 1-sigma
    # spreads above.
    current_bias_mA: float = 0.0
    current_gain_bias_ppm: float = 0.0
    cell_bias_mV: float = 0.0
    temp_bias_degC: float = 0.0

    @classmethod
    def ideal(cls) -> SensorSpec:
        """Perfect sensors apart from the protocol's own resolution (1 mV, 1 mA, 0.1 degC)."""
        return cls(
            cell_gain_ppm=0.0,
            cell_offset_mV=0.0,
            cell_noise_mV=0.0,
            current_gain_ppm=0.0,
            current_offset_mA=0.0,
            current_noise_mA=0.0,
            temp_offset_degC=0.0,
            temp_noise_degC=0.0,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str) -> SensorSpec:
        """Build from a scenario's [sensors] table; unknown keys and bad values raise InputError."""
        names = {f.name for f in fields(cls)}
        base = cls.ideal() if data.get("ideal", False) is True else cls()
        changes: dict[str, float] = {}
        for key, value in data.items():
            if key == "ideal":
                if not isinstance(value, bool):
                    raise InputError(source, "sensors.ideal", "must be true or false")
                continue
            if key not in names:
                raise InputError(
                    source,
                    f"sensors.{key}",
                    unknown_key(key, ["ideal", *sorted(names)]),
                )
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(source, f"sensors.{key}", f"must be a number, got {value!r}")
            lo, hi = PLAUSIBLE[key]
            if not np.isfinite(value) or not lo <= value <= hi:
                raise InputError(
                    source, f"sensors.{key}", f"{value} outside the plausible {lo:g}..{hi:g}"
                )
            changes[key] = float(value)
        return replace(base, **changes)

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class Reading:
    """One sample as the firmware receives it (protocol units)."""

    cell_mV: list[int]
    current_mA: int  # positive on discharge
    temp_ddegC: list[int]
    # a channel was broken by an injected fault (a frozen or open cell tap, a stuck current
    # sensor, an open or shorted thermistor): a true reason for the BMS to open a switch
    sensor_broken: bool


def _quantize(value: NDArray[np.float64], lsb: float) -> NDArray[np.float64]:
    return np.round(value / lsb) * lsb


def _quantize_float(value: float, lsb: float) -> float:
    """_quantize of one float: np.round is round-half-even, as Python's round."""
    x = value / lsb
    return (float(round(x)) if math.isfinite(x) else x) * lsb


def _group_max(temps: list[float], n_groups: int) -> list[float]:
    """Sensors.temperatures_for on a list: np.array_split's groups, np.max of each."""
    n = len(temps)
    if n_groups == 0:
        return []
    if n_groups > n:
        return [np_max(temps)] * n_groups
    size, extra = divmod(n, n_groups)
    out: list[float] = []
    start = 0
    for j in range(n_groups):
        stop = start + size + (1 if j < extra else 0)
        out.append(np_max(temps[start:stop]))
        start = stop
    return out


@dataclass(frozen=True)
class SensorsState:
    """What a read changes (Sensors.snapshot): the noise stream's position (the generator's
    bit state, the block of draws and the next row), the frozen channels' held readings and
    the last readings. Lists here are never changed in place by the sensors (a read makes
    new ones), so they are kept by reference."""

    rng_state: Mapping[str, Any]
    noise_block: list[list[float]]
    noise_next: int
    frozen: dict[int, int]
    last_cell_mV: list[int] | None
    last_current_mA: int


class Sensors:
    """Seeded measurement chain: n_cells voltage channels, one current, n_temps temperatures."""

    def __init__(
        self, spec: SensorSpec, n_cells: int, n_temps: int, seed: int, *, fast_path: bool = True
    ) -> None:
        """fast_path=False reads every pack with the vectorized code and per-read draws (the
        reference the fast path is tested against)."""
        if n_cells < 1:
            raise ValueError("n_cells must be >= 1")
        self.spec = spec
        self.n_cells = n_cells
        self.n_temps = n_temps
        # Separate streams so changing the noise level mid-run does not reshuffle the
        # calibration errors drawn at start.
        calib = np.random.default_rng([seed, 1])
        self._rng = np.random.default_rng([seed, 2])
        self._cell_gain = 1.0 + calib.normal(0.0, spec.cell_gain_ppm * 1e-6, n_cells)
        # the biases are added after the draws, so a run with none draws as before
        self._cell_offset_mV = calib.normal(0.0, spec.cell_offset_mV, n_cells) + spec.cell_bias_mV
        self._current_gain = 1.0 + float(calib.normal(0.0, spec.current_gain_ppm * 1e-6))
        self._current_gain += spec.current_gain_bias_ppm * 1e-6
        self._current_offset_mA = float(calib.normal(0.0, spec.current_offset_mA))
        self._current_offset_mA += spec.current_bias_mA
        self._temp_offset_degC = (
            calib.normal(0.0, spec.temp_offset_degC, max(n_temps, 1)) + spec.temp_bias_degC
        )
        self.cell_noise_mV = spec.cell_noise_mV
        self.extra_current_offset_mA = 0.0
        self.extra_current_gain = 1.0
        self._frozen: dict[int, int] = {}
        self._last_cell_mV: list[int] | None = None
        # Broken channels: what each reads now, whatever the truth (protocol units).
        self._tap_mV: dict[int, int] = {}
        self._temp_ddegC: dict[int, int] = {}
        self._stuck_current_mA: int | None = None
        self._last_current_mA = 0
        self._fast = fast_path and n_cells <= FAST_PATH_MAX_CELLS
        self._cell_gain_list: list[float] = self._cell_gain.tolist()
        self._cell_offset_list: list[float] = self._cell_offset_mV.tolist()
        self._temp_offset_list: list[float] = self._temp_offset_degC[:n_temps].tolist()
        # Pre-drawn standard normals, one row per read, and the next row's index: plain
        # attributes, so a copy of them and of the Generator's state restores the sensors.
        self._noise_block: list[list[float]] = []
        self._noise_next = 0

    # Speculation (the lockstep pipeline) ------------------------------------------
    def snapshot(self) -> SensorsState:
        """Everything a read changes, for restore(): the reads after it then read the same
        again (the fault settings are the scenario's to change, not a read's)."""
        return SensorsState(
            self._rng.bit_generator.state,
            self._noise_block,
            self._noise_next,
            self._frozen.copy(),
            self._last_cell_mV,
            self._last_current_mA,
        )

    def restore(self, state: SensorsState) -> None:
        self._rng.bit_generator.state = state.rng_state
        self._noise_block = state.noise_block
        self._noise_next = state.noise_next
        self._frozen = state.frozen.copy()
        self._last_cell_mV = state.last_cell_mV
        self._last_current_mA = state.last_current_mA

    # Faults -----------------------------------------------------------------
    def inject_current_offset(self, offset_mA: float) -> None:
        """Add a fixed offset to the current channel (on top of its calibration residue)."""
        self.extra_current_offset_mA = float(offset_mA)

    def set_cell_noise(self, noise_mV: float) -> None:
        self.cell_noise_mV = float(noise_mV)

    def freeze_cell(self, cell_index: int) -> None:
        """Cell channel `cell_index` (0-based) repeats its last reading from now on."""
        self._check_cell(cell_index)
        last = self._last_cell_mV
        self._frozen[cell_index] = -1 if last is None else last[cell_index]

    def unfreeze_all(self) -> None:
        self._frozen.clear()

    def open_cell_tap(self, cell_index: int, reads_mV: int) -> None:
        """Cell channel `cell_index` (0-based) lost its tap: it reads 0 or full scale."""
        self._check_cell(cell_index)
        self._tap_mV[cell_index] = int(reads_mV)

    def stick_current(self, reads_mA: int | None = None) -> None:
        """The current channel reads a constant: `reads_mA`, or its last reading."""
        self._stuck_current_mA = self._last_current_mA if reads_mA is None else int(reads_mA)

    def break_thermistor(self, probe_index: int, reads_degC: float) -> None:
        """Temperature probe `probe_index` (0-based) is open or shorted: it reads a rail."""
        if not 0 <= probe_index < self.n_temps:
            raise ValueError(f"probe {probe_index + 1} out of range 1..{self.n_temps}")
        self._temp_ddegC[probe_index] = int(round(reads_degC * 10.0))

    def step_current_gain(self, error_ppm: float) -> None:
        """The current channel's gain changes by error_ppm from now on (a shunt that drifted)."""
        self.extra_current_gain = 1.0 + error_ppm * 1e-6

    def repair_all(self) -> None:
        """Every injected sensor fault cleared (calibration residues and noise stay)."""
        self._frozen.clear()
        self._tap_mV.clear()
        self._temp_ddegC.clear()
        self._stuck_current_mA = None
        self.extra_current_offset_mA = 0.0
        self.extra_current_gain = 1.0

    def _check_cell(self, cell_index: int) -> None:
        if not 0 <= cell_index < self.n_cells:
            raise ValueError(f"cell {cell_index + 1} out of range 1..{self.n_cells}")

    @property
    def broken(self) -> bool:
        """A channel reads something other than its measurand (a frozen or open cell tap, a
        stuck current sensor, a broken thermistor). A drifted offset or gain is not broken:
        the channel still measures, and the BMS must live with it."""
        return bool(
            self._frozen or self._tap_mV or self._temp_ddegC or self._stuck_current_mA is not None
        )

    @property
    def current_offset_mA(self) -> float:
        """The total systematic current offset (calibration residue plus injected)."""
        return self._current_offset_mA + self.extra_current_offset_mA

    def _apply_cell_faults(self, cell_mV: list[int]) -> None:
        """Frozen channels repeat their reading, broken taps read their rail (in place)."""
        for idx, held in self._frozen.items():
            if held < 0:
                self._frozen[idx] = held = cell_mV[idx]
            cell_mV[idx] = held
        self._last_cell_mV = list(cell_mV)  # a frozen channel holds a reading, not a broken tap
        for idx, reads in self._tap_mV.items():
            cell_mV[idx] = reads

    # Reading ----------------------------------------------------------------
    def temperatures_for(self, cell_temp_degC: Sequence[float] | NDArray[np.float64]) -> NDArray:
        """True temperature under each sensor: sensor j sees the hottest cell of its group."""
        temps = np.asarray(cell_temp_degC, dtype=float)
        if self.n_temps == 0:
            return np.zeros(0)
        groups = np.array_split(temps, self.n_temps) if self.n_temps <= temps.size else None
        if groups is None:
            return np.full(self.n_temps, float(temps.max()))
        return np.array([float(g.max()) for g in groups])

    def read(
        self,
        cell_V: Sequence[float] | NDArray[np.float64],
        current_A: float,
        cell_temp_degC: Sequence[float] | NDArray[np.float64],
    ) -> Reading:
        """Measure the true cell voltages, series current (positive discharge) and temperatures."""
        if self._fast:
            return self._read_fast(cell_V, current_A, cell_temp_degC)
        spec = self.spec
        v_mV = np.asarray(cell_V, dtype=float) * 1000.0
        noise = self._rng.normal(0.0, 1.0, self.n_cells) * self.cell_noise_mV
        meas = v_mV * self._cell_gain + self._cell_offset_mV + noise
        meas = np.clip(_quantize(meas, spec.cell_lsb_mV), 0, 65535)
        cell_mV = [int(round(x)) for x in meas]
        self._apply_cell_faults(cell_mV)

        gain = self._current_gain * self.extra_current_gain
        i_mA = current_A * 1000.0 * gain + self.current_offset_mA
        i_mA += float(self._rng.normal(0.0, 1.0)) * spec.current_noise_mA
        current_mA = int(round(float(_quantize(np.array([i_mA]), spec.current_lsb_mA)[0])))
        if self._stuck_current_mA is not None:
            current_mA = self._stuck_current_mA
        self._last_current_mA = current_mA

        temps = self.temperatures_for(cell_temp_degC)
        t_meas = temps + self._temp_offset_degC[: self.n_temps]
        t_meas = t_meas + self._rng.normal(0.0, 1.0, self.n_temps) * spec.temp_noise_degC
        t_meas = _quantize(t_meas, spec.temp_lsb_degC)
        temp_ddegC = [int(np.clip(round(x * 10.0), -32767, 32767)) for x in t_meas]
        for idx, reads in self._temp_ddegC.items():
            temp_ddegC[idx] = reads
        return Reading(cell_mV, current_mA, temp_ddegC, self.broken)

    # The fast path -------------------------------------------------------------
    def _noise_row(self) -> list[float]:
        """The standard normals of one read: cells, current, then temperatures (the order
        of the vectorized read's three draws)."""
        k = self._noise_next
        if k >= len(self._noise_block):
            width = self.n_cells + 1 + self.n_temps
            self._noise_block = self._rng.normal(0.0, 1.0, (NOISE_BLOCK_READS, width)).tolist()
            k = 0
        self._noise_next = k + 1
        return self._noise_block[k]

    def _read_fast(
        self,
        cell_V: Sequence[float] | NDArray[np.float64],
        current_A: float,
        cell_temp_degC: Sequence[float] | NDArray[np.float64],
    ) -> Reading:
        """read() on Python floats, channel by channel (same operations, same order)."""
        spec = self.spec
        n = self.n_cells
        z = self._noise_row()
        volts = np.asarray(cell_V, dtype=float).tolist()
        level = self.cell_noise_mV
        lsb = spec.cell_lsb_mV
        cells = zip(volts, self._cell_gain_list, self._cell_offset_list, z[:n], strict=True)
        cell_mV: list[int] = []
        for v, g, off, zk in cells:
            q = _quantize_float(v * 1000.0 * g + off + zk * level, lsb)
            cell_mV.append(int(round(0.0 if q < 0.0 else (65535.0 if q > 65535.0 else q))))
        self._apply_cell_faults(cell_mV)

        gain = self._current_gain * self.extra_current_gain
        i_mA = current_A * 1000.0 * gain + self.current_offset_mA
        i_mA += z[n] * spec.current_noise_mA
        current_mA = int(round(_quantize_float(i_mA, spec.current_lsb_mA)))
        if self._stuck_current_mA is not None:
            current_mA = self._stuck_current_mA
        self._last_current_mA = current_mA

        temps = _group_max(np.asarray(cell_temp_degC, dtype=float).tolist(), self.n_temps)
        temp_ddegC: list[int] = []
        for t, off, zk in zip(temps, self._temp_offset_list, z[n + 1 :], strict=True):
            t = _quantize_float(t + off + zk * spec.temp_noise_degC, spec.temp_lsb_degC)
            temp_ddegC.append(min(max(round(t * 10.0), -32767), 32767))
        for idx, reads in self._temp_ddegC.items():
            temp_ddegC[idx] = reads
        return Reading(cell_mV, current_mA, temp_ddegC, self.broken)

"""Turn the cell model's true values into the readings a BMS front end would report.

Each channel has a fixed gain and offset error (drawn once per run from the
scenario's seed, like a board's calibration residue), white noise per sample
and the ADC's resolution (readings are rounded to whole LSBs). Faults change
the model during a run: an extra current offset, more voltage noise, a frozen
cell channel that repeats its last reading.

Current is positive on discharge, in the readings as in the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cellmodel.errors import InputError


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
                    f"unknown key; known: ideal, {', '.join(sorted(names))}",
                )
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(source, f"sensors.{key}", f"must be a number, got {value!r}")
            if value < 0 or not np.isfinite(value):
                raise InputError(source, f"sensors.{key}", f"must be finite and >= 0, got {value}")
            if "_lsb_" in key and value == 0:
                raise InputError(source, f"sensors.{key}", "resolution must be > 0")
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


def _quantize(value: NDArray[np.float64], lsb: float) -> NDArray[np.float64]:
    return np.round(value / lsb) * lsb


class Sensors:
    """Seeded measurement chain: n_cells voltage channels, one current, n_temps temperatures."""

    def __init__(self, spec: SensorSpec, n_cells: int, n_temps: int, seed: int) -> None:
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
        self._cell_offset_mV = calib.normal(0.0, spec.cell_offset_mV, n_cells)
        self._current_gain = 1.0 + float(calib.normal(0.0, spec.current_gain_ppm * 1e-6))
        self._current_offset_mA = float(calib.normal(0.0, spec.current_offset_mA))
        self._temp_offset_degC = calib.normal(0.0, spec.temp_offset_degC, max(n_temps, 1))
        self.cell_noise_mV = spec.cell_noise_mV
        self.extra_current_offset_mA = 0.0
        self._frozen: dict[int, int] = {}
        self._last_cell_mV: list[int] | None = None

    # Faults -----------------------------------------------------------------
    def inject_current_offset(self, offset_mA: float) -> None:
        """Add a fixed offset to the current channel (on top of its calibration residue)."""
        self.extra_current_offset_mA = float(offset_mA)

    def set_cell_noise(self, noise_mV: float) -> None:
        self.cell_noise_mV = float(noise_mV)

    def freeze_cell(self, cell_index: int) -> None:
        """Cell channel `cell_index` (0-based) repeats its last reading from now on."""
        if not 0 <= cell_index < self.n_cells:
            raise ValueError(f"cell {cell_index + 1} out of range 1..{self.n_cells}")
        last = self._last_cell_mV
        self._frozen[cell_index] = -1 if last is None else last[cell_index]

    def unfreeze_all(self) -> None:
        self._frozen.clear()

    @property
    def current_offset_mA(self) -> float:
        """The total systematic current offset (calibration residue plus injected)."""
        return self._current_offset_mA + self.extra_current_offset_mA

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
        spec = self.spec
        v_mV = np.asarray(cell_V, dtype=float) * 1000.0
        noise = self._rng.normal(0.0, 1.0, self.n_cells) * self.cell_noise_mV
        meas = v_mV * self._cell_gain + self._cell_offset_mV + noise
        meas = np.clip(_quantize(meas, spec.cell_lsb_mV), 0, 65535)
        cell_mV = [int(round(x)) for x in meas]
        for idx, held in self._frozen.items():
            if held < 0:
                self._frozen[idx] = held = cell_mV[idx]
            cell_mV[idx] = held
        self._last_cell_mV = cell_mV

        i_mA = current_A * 1000.0 * self._current_gain + self.current_offset_mA
        i_mA += float(self._rng.normal(0.0, 1.0)) * spec.current_noise_mA
        current_mA = int(round(float(_quantize(np.array([i_mA]), spec.current_lsb_mA)[0])))

        temps = self.temperatures_for(cell_temp_degC)
        t_meas = temps + self._temp_offset_degC[: self.n_temps]
        t_meas = t_meas + self._rng.normal(0.0, 1.0, self.n_temps) * spec.temp_noise_degC
        t_meas = _quantize(t_meas, spec.temp_lsb_degC)
        temp_ddegC = [int(np.clip(round(x * 10.0), -32768, 32767)) for x in t_meas]
        return Reading(cell_mV=cell_mV, current_mA=current_mA, temp_ddegC=temp_ddegC)

"""Truth against belief: how the simulated cell differs from the design the BMS is configured for.

A scenario's `[mismatch]` table perturbs the simulated cell (the truth) while the
firmware keeps the nominal design (its belief); a real BMS never knows its cells
exactly. Each key takes a number, or a two-number list `[lo, hi]` drawn uniformly
with the scenario's seed (so a campaign's seeds sample the range reproducibly):

    [mismatch]
    ocv_offset_mV = 10             # both OCV branches shifted (mV per cell)
    ocv_charge_offset_mV = 0       # charge branch only, on top of ocv_offset_mV
    ocv_discharge_offset_mV = 0    # discharge branch only
    hysteresis_rate_factor = 0.5   # the cell's hysteresis gamma over the design's
    resistance_factor = [0.7, 2.0] # R0, R1, R2 over the design's
    capacity_factor = 0.8          # less of the same electrode (area): capacity and anode
                                   # mass scale together, so the window is reached sooner
    coulombic_efficiency = 0.995   # the cell's own charge efficiency

Cell-to-cell spread in packs stays in the cell file ([pack]); this is the whole
pack against its datasheet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cellmodel.design import CellDesign
from cellmodel.errors import InputError, unknown_key

# Plausible ranges: outside them a scenario is a typo, not a test.
RANGES: dict[str, tuple[float, float]] = {
    "ocv_offset_mV": (-200.0, 200.0),
    "ocv_charge_offset_mV": (-200.0, 200.0),
    "ocv_discharge_offset_mV": (-200.0, 200.0),
    "hysteresis_rate_factor": (0.05, 20.0),
    "resistance_factor": (0.1, 10.0),
    "capacity_factor": (0.3, 1.5),
    "coulombic_efficiency": (0.9, 1.0),
}


@dataclass(frozen=True)
class Mismatch:
    """The drawn perturbation (numbers only); the defaults change nothing."""

    ocv_offset_mV: float = 0.0
    ocv_charge_offset_mV: float = 0.0
    ocv_discharge_offset_mV: float = 0.0
    hysteresis_rate_factor: float = 1.0
    resistance_factor: float = 1.0
    capacity_factor: float = 1.0
    coulombic_efficiency: float | None = None  # None: the design's

    @property
    def is_neutral(self) -> bool:
        return self == Mismatch()

    def as_dict(self) -> dict[str, float | None]:
        return dataclasses.asdict(self)

    def apply(self, design: CellDesign) -> CellDesign:
        """The simulated cell: `design` perturbed (a new CellDesign, named so in results)."""
        if self.is_neutral:
            return design
        ocv = design.ocv
        dv_chg = (self.ocv_offset_mV + self.ocv_charge_offset_mV) / 1000.0
        dv_dsg = (self.ocv_offset_mV + self.ocv_discharge_offset_mV) / 1000.0
        ocv = dataclasses.replace(
            ocv, charge_V=ocv.charge_V + dv_chg, discharge_V=ocv.discharge_V + dv_dsg
        )
        c = design.circuit
        circuit = dataclasses.replace(
            c,
            hysteresis_gamma=c.hysteresis_gamma * self.hysteresis_rate_factor,
            coulombic_efficiency=(
                c.coulombic_efficiency
                if self.coulombic_efficiency is None
                else self.coulombic_efficiency
            ),
        )
        # Resistance as the model ages it (R0, R1, R2 together, time constants with them).
        aging = dataclasses.replace(
            design.aging,
            resistance_growth=design.aging.resistance_growth * self.resistance_factor,
        )
        return dataclasses.replace(
            design,
            name=f"{design.name}+mismatch",
            facing_area_cm2=design.facing_area_cm2 * self.capacity_factor,
            ocv=ocv,
            circuit=circuit,
            aging=aging,
        )


def parse_mismatch(data: Any, source: str, seed: int) -> Mismatch:
    """The [mismatch] table, ranges drawn with `seed`; InputError names the key."""
    if data is None:
        return Mismatch()
    if not isinstance(data, Mapping):
        raise InputError(source, "mismatch", "must be a table")
    rng = np.random.default_rng([seed, 7])
    values: dict[str, float] = {}
    for key in sorted(RANGES):  # sorted: a key's draw never depends on the others' order
        draw = float(rng.uniform())
        if key in data:
            values[key] = _value(data[key], key, source, draw)
    for key in data:
        if key not in RANGES:
            raise InputError(source, f"mismatch.{key}", unknown_key(key, sorted(RANGES)))
    return Mismatch(**values)


def _value(raw: Any, key: str, source: str, draw: float) -> float:
    lo, hi = RANGES[key]
    field = f"mismatch.{key}"
    if isinstance(raw, list):
        if len(raw) != 2 or not all(_is_number(x) for x in raw) or raw[0] > raw[1]:
            raise InputError(source, field, f"a range must be [lo, hi] with lo <= hi, got {raw}")
        a, b = float(raw[0]), float(raw[1])
        value = a + (b - a) * draw
        bounds = (a, b)
    elif _is_number(raw):
        value = float(raw)
        bounds = (value, value)
    else:
        raise InputError(source, field, f"must be a number or [lo, hi], got {raw!r}")
    if bounds[0] < lo or bounds[1] > hi:
        raise InputError(source, field, f"{raw} outside the plausible {lo:g}..{hi:g}")
    return value


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and bool(np.isfinite(x))

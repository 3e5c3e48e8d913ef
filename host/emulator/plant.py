"""The physical side of the loop without I/O: cells, switches, balancing resistors and sensors.

`Plant.step(demand_A, dt_s)` gates the demanded current by the switch states of the
firmware's latest reply, applies its balancing bleed, advances the cell model and
measures the result. Current is positive on discharge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cellmodel.pack import PackModel, StepResult
from host.emulator.drive import bleed_currents, gate_current
from host.sensors import Reading, Sensors


@dataclass(frozen=True)
class PlantStep:
    demand_A: float
    applied_A: float
    result: StepResult
    reading: Reading


class Plant:
    def __init__(self, model: PackModel, sensors: Sensors, bleed_resistance_ohm: float) -> None:
        self.model = model
        self.sensors = sensors
        self.bleed_resistance_ohm = bleed_resistance_ohm
        # Until the firmware has answered, its switches are open (as after power-up).
        self.chg_on = False
        self.dsg_on = False
        self.balance_bits = 0

    def set_switches(self, chg_on: bool, dsg_on: bool, balance_bits: int) -> None:
        """The firmware's latest decision: it gates the next step."""
        self.chg_on, self.dsg_on, self.balance_bits = chg_on, dsg_on, balance_bits

    def measure(self) -> Reading:
        """Sensor readings of the present state (no time passes)."""
        m = self.model
        return self.sensors.read(m.v_V, m.current_A, m.temp_degC)

    def step(self, demand_A: float, dt_s: float) -> PlantStep:
        applied = gate_current(demand_A, self.chg_on, self.dsg_on)
        bleed = bleed_currents(self.model.v_V, self.balance_bits, self.bleed_resistance_ohm)
        result = self.model.step(applied, dt_s, bleed)
        # The current sensor sits in series: it sees the series current, not the bleed.
        reading = self.sensors.read(result.v_V, applied, result.temp_degC)
        return PlantStep(demand_A, applied, result, reading)

    def true_capacity_Ah(self) -> float:
        """Usable capacity of the series pack: its smallest cell."""
        cap: Any = self.model.capacity_Ah
        return float(np.min(cap))

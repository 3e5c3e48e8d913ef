"""The physical side of the loop without I/O: cells, switches, balancing resistors and sensors.

The plant is the one owner of the cell model and of the switch gates on the host
side. `Plant.step(demand_A, dt_s)` gates the demanded current by the switches the
firmware last commanded, applies its balancing bleed, advances the cells and
measures them; the PlantStep it returns carries everything scoring and logging
need (the truth after the step and the reading the firmware gets). Current is
positive on discharge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from cellmodel.circuit import PackState
from cellmodel.guards import GuardEvent
from cellmodel.pack import PackModel, StepResult
from host.sensors import Reading, Sensors, SensorsState

if TYPE_CHECKING:
    from cellmodel.design import CellDesign
    from cellmodel.experiment import StepController
    from host.scenarios import Scenario


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


@dataclass(frozen=True)
class PlantSnapshot:
    model: PackState
    sensors: SensorsState
    guard_event: GuardEvent | None


class GuardTripped(Exception):
    """The cells were asked to do what the model refuses (host ends the run with it)."""

    def __init__(self, event: GuardEvent) -> None:
        super().__init__(event.message)
        self.event = event


@dataclass(frozen=True)
class Gates:
    """The switches as they are: what the firmware commanded in its latest reply, and the
    current limits it asked the charger and the load to keep (A; None: no limit given)."""

    chg_on: bool = False
    dsg_on: bool = False
    balance_bits: int = 0
    ccl_A: float | None = None
    dcl_A: float | None = None


def limit_current(demand_A: float, gates: Gates) -> float:
    """What a charger or load that honours the BMS's limits draws (a CAN charger or an
    inverter does): "Charge at 1C" becomes "at most 1C", never more than CCL or DCL."""
    if demand_A < 0.0 and gates.ccl_A is not None:
        return max(demand_A, -gates.ccl_A)
    if demand_A > 0.0 and gates.dcl_A is not None:
        return min(demand_A, gates.dcl_A)
    return demand_A


@dataclass(frozen=True)
class PlantStep:
    """One sample of the plant: the demand, the switches that gated it, what flowed, the truth
    after it and its reading."""

    demand_A: float
    applied_A: float
    truth: StepResult
    reading: Reading
    gates: Gates
    dt_s: float
    limited: bool = False  # the charger or load held back to the BMS's limit

    @property
    def cell_v_V(self) -> NDArray[np.float64]:
        return self.truth.v_V


class Plant:
    def __init__(
        self,
        model: PackModel,
        sensors: Sensors,
        bleed_resistance_ohm: float,
        *,
        honour_limits: bool = True,
    ) -> None:
        """honour_limits: the charger and the load keep to the CCL and DCL of the latest reply."""
        self._model = model
        self.honour_limits = honour_limits
        self.sensors = sensors
        self.bleed_resistance_ohm = bleed_resistance_ohm
        # Until the firmware has answered, its switches are open (as after power-up).
        self.gates = Gates()
        self.guard_event: GuardEvent | None = None
        # The cells' capacities are drawn when the model is made (CellParams) and stay:
        # the series pack's, asked for at every sample, is taken once.
        self._true_capacity_Ah = float(np.min(model.capacity_Ah))

    @classmethod
    def for_scenario(cls, scenario: Scenario, design: CellDesign, n_temps: int) -> Plant:
        """The scenario's cells at its initial state, with a sensor chain of n_temps probes."""
        init = scenario.initial
        model = _start_model(scenario, design)
        if init.temp_degC is not None:
            model.temp_degC = np.full(model.n_cells, init.temp_degC)
        sensors = Sensors(scenario.sensors, model.n_cells, n_temps, scenario.seed)
        return cls(
            model,
            sensors,
            scenario.bleed_resistance_ohm,
            honour_limits=scenario.honour_bms_limits,
        )

    @property
    def n_cells(self) -> int:
        return self._model.n_cells

    def set_gates(
        self,
        chg_on: bool,
        dsg_on: bool,
        balance_bits: int,
        ccl_A: float | None = None,
        dcl_A: float | None = None,
    ) -> None:
        """The firmware's latest decision: it gates the next step."""
        self.gates = Gates(chg_on, dsg_on, balance_bits, ccl_A, dcl_A)

    @property
    def ambient_degC(self) -> float:
        return self._model.ambient_degC

    def set_ambient(self, degC: float) -> None:
        self._model.set_ambient(degC)

    def demand_A(self, ctrl: StepController, dt_s: float) -> float:
        """What a cycler step asks for over the next dt_s; it may read the cells (CV, power)."""
        return float(ctrl.demand_current_A(self._model, dt_s))

    def measure(self) -> PlantStep:
        """The present state and its reading, without letting time pass."""
        truth = self._model.result()
        reading = self.sensors.read(truth.v_V, self._model.current_A, truth.temp_degC)
        return PlantStep(0.0, 0.0, truth, reading, self.gates, 0.0)

    def step(self, demand_A: float, dt_s: float) -> PlantStep:
        """One period. A current the cells must not take (cellmodel.guards) raises GuardTripped
        before it flows; a state they must not be in is noted in `guard_event` after it."""
        g = self.gates
        asked = limit_current(demand_A, g) if self.honour_limits else demand_A
        applied = gate_current(asked, g.chg_on, g.dsg_on)
        bleed = bleed_currents(self._model.v_V, g.balance_bits, self.bleed_resistance_ohm)
        event = self._model.current_event(applied, bleed)
        if event is not None:
            self.guard_event = event
            raise GuardTripped(event)
        truth = self._model.step(applied, dt_s, bleed)
        self.guard_event = self._model.state_event()
        # The current sensor sits in series: it sees the series current, not the bleed.
        reading = self.sensors.read(truth.v_V, applied, truth.temp_degC)
        limited = asked != demand_A and applied == asked
        return PlantStep(demand_A, applied, truth, reading, g, dt_s, limited)

    # -- speculation (the lockstep pipeline) -------------------------------------------
    def snapshot(self) -> PlantSnapshot:
        """Everything a step changes: the cells, the sensor chain (its random draws too) and
        the guard's verdict; restore() puts it back exactly."""
        return PlantSnapshot(self._model.snapshot(), self.sensors.snapshot(), self.guard_event)

    def restore(self, snap: PlantSnapshot) -> None:
        self._model.restore(snap.model)
        self.sensors.restore(snap.sensors)
        self.guard_event = snap.guard_event

    def true_capacity_Ah(self) -> float:
        """Usable capacity of the series pack: its smallest cell."""
        return self._true_capacity_Ah


def _start_model(scenario: Scenario, design: CellDesign) -> PackModel:
    init = scenario.initial
    return PackModel(
        design,
        isothermal=scenario.isothermal,
        hysteresis=scenario.hysteresis,
        ambient_degC=scenario.ambient_degC,
        initial_soc=init.soc,
        initial_h=1.0 if init.branch == "discharge" else -1.0,
    )


def start_cell_soc(scenario: Scenario, design: CellDesign) -> tuple[float, ...]:
    """Each simulated cell's SOC at the scenario's start: the pack's drawn spread about
    initial.soc, as Plant.for_scenario starts it (a true state file holds these)."""
    return tuple(float(s) for s in _start_model(scenario, design).soc)

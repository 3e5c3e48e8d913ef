"""Per-cell circuit parameters and the pieces of the step both engines share.

PackModel (pack.py) owns the state and steps all cells at once with numpy;
fastpath.run_single integrates one cell over a whole current profile. Both take
their parameters from CellParams and their SOC-dependent resistance shapes from
mid_step_shapes(), evaluated with the same operations in the same order, so the
two engines cannot drift apart (tests/cellmodel/test_pack.py compares them).
This module imports neither engine.

Current is positive on discharge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cellmodel.design import AnodePotentialTables, CellDesign, Circuit
from cellmodel.ocv import BranchTable, Empty

T_REF_K = 298.15
ZERO_C_K = 273.15
R_GAS_J_MOL_K = 8.314462618
# Below this step length the RC forcing centre is within f = z/12 of mid-step and
# moving R_j there changes the voltage by under 0.2 mV even at SOC 0 and 60 degC,
# so short steps skip the correction and its cost.
CENTRE_CORRECTION_MIN_DT_S = 2.0


def ocv_empty(ap: AnodePotentialTables) -> Empty | None:
    """Where the cell's OCV collapses, in the design's SOC: from the anode's knee (at
    most SOC 0, the table's start) down by its last rise to its empty point, lithium
    fraction 0, where the guard rails stop a run (cellmodel.guards). None for an anode
    already empty at SOC 0: a cell file that says so carries its collapse in its own
    table, and the tables' linear extension goes on below."""
    soc_empty = ap.soc_at(0.0)
    soc_knee = min(0.0, ap.soc_at(ap.empty_knee_li_fraction))
    return Empty(soc_knee, soc_empty, -ap.empty_rise_V) if soc_empty < soc_knee else None


def anode_empty(ap: AnodePotentialTables) -> Empty | None:
    """The anode's own table: up by its last rise from the knee to lithium fraction 0."""
    knee = min(ap.empty_knee_li_fraction, float(ap.li_fraction[0]))
    return Empty(knee, 0.0, ap.empty_rise_V) if knee > 0.0 else None


@dataclass(frozen=True)
class CellParams:
    """The parameters of each cell (arrays of shape (n_cells,)), fixed for a model's life.

    Made by draw(): the design's nominal values with the pack's seeded spread and
    the aging factors applied.
    """

    circuit: Circuit
    hysteresis: bool
    capacity_Ah: np.ndarray
    anode_mass_g: np.ndarray
    resistance_factor: np.ndarray
    r0_ohm: np.ndarray
    r1_ohm: np.ndarray
    r2_ohm: np.ndarray
    inv_q_As: np.ndarray  # 1 / (3600 Q)
    util_per_soc: np.ndarray  # anode utilization (mAh/g) per unit SOC
    gamma: float  # hysteresis rate, 0 when hysteresis is off
    ocv: BranchTable
    anode: BranchTable
    x_per_util: float  # anode lithium fraction per mAh/g
    x_empty: float

    @classmethod
    def draw(
        cls, design: CellDesign, z_capacity: np.ndarray, z_resistance: np.ndarray, hysteresis: bool
    ) -> CellParams:
        """Parameters for standard-normal draws of the capacity and resistance spreads."""
        c = design.circuit
        p = design.pack
        loading = np.clip(1.0 + p.capacity_spread * z_capacity, 0.2, None)
        # Capacity spread is coating-loading/area spread of the whole cell: the anode
        # mass scales with it (N/P held), so a fresh cell spans the anode window,
        # 0 to C_N mAh/g, over its own SOC 0..1. Fade (lithium-inventory loss) takes
        # capacity but not anode mass: a faded cell tops out below C_N.
        anode_mass_g = design.anode_mass_g * loading
        capacity_Ah = design.capacity_Ah * loading * design.aging.capacity_retention
        factor = (
            np.clip(1.0 + p.resistance_spread * z_resistance, 0.2, None)
            * design.aging.resistance_growth
        )
        ap = design.anode_potential
        return cls(
            circuit=c,
            hysteresis=hysteresis,
            capacity_Ah=capacity_Ah,
            anode_mass_g=anode_mass_g,
            resistance_factor=factor,
            r0_ohm=c.r0_ohm * factor,
            r1_ohm=c.r1_ohm * factor,
            r2_ohm=c.r2_ohm * factor,
            inv_q_As=1.0 / (3600.0 * capacity_Ah),
            util_per_soc=capacity_Ah * 1000.0 / anode_mass_g,
            gamma=c.hysteresis_gamma if hysteresis else 0.0,
            ocv=BranchTable.from_branches(
                design.ocv.soc,
                design.ocv.charge_V,
                design.ocv.discharge_V,
                empty=ocv_empty(ap),
            ),
            anode=BranchTable.from_branches(
                ap.li_fraction, ap.lithiation_V, ap.delithiation_V, empty=anode_empty(ap)
            ),
            x_per_util=(ap.li_fraction_full - ap.li_fraction_empty) / design.c_n_mAh_g,
            x_empty=ap.li_fraction_empty,
        )

    def ocv_V(
        self, soc: np.ndarray, h: np.ndarray, temp_degC: np.ndarray, *, grid: bool = True
    ) -> np.ndarray:
        """Open-circuit voltage; grid as in BranchTable.lookup."""
        ocv = self.ocv.lookup(soc, h if self.hysteresis else None, grid=grid)
        dudt = self.circuit.dUdT_V_K
        if dudt:
            ocv += dudt * (temp_degC - (T_REF_K - ZERO_C_K))
        return ocv

    def hysteresis_heat_gap_V(self, soc: Any) -> np.ndarray:
        """Half the gap between the OCV branches at soc (>= 0; 0 without hysteresis).

        The heat a current |I| dissipates in the hysteresis is |I| x this x h^2 (see
        hysteresis_heat_W): the whole half-gap on a branch, none midway between.
        """
        if not self.hysteresis:
            return np.zeros_like(np.asarray(soc, dtype=float))
        # half = (discharge - charge) / 2 <= 0: the cell file keeps the charge branch on top.
        return -self.ocv.half_at(soc)

    def anode_potential_V(
        self, soc: np.ndarray, h: np.ndarray, v: np.ndarray, ocv: np.ndarray, *, grid: bool = True
    ) -> np.ndarray:
        """The silicon anode's potential vs Li; grid as in BranchTable.lookup."""
        x = self.x_empty + soc * self.util_per_soc * self.x_per_util
        pot = self.anode.lookup(x, h if self.hysteresis else None, grid=grid)
        # Charging (v > ocv) pulls the lithiating anode below its equilibrium.
        return pot - self.circuit.anode_polarization_share * (v - ocv)

    def arrhenius_at(self, degC: float) -> tuple[float, float, float]:
        """Resistance factors of R0, R1, R2 at one temperature (isothermal cells)."""
        c = self.circuit
        u = (1.0 / (degC + ZERO_C_K) - 1.0 / T_REF_K) / R_GAS_J_MOL_K
        return (
            float(np.exp(c.ea_r0_J_mol * u)),
            float(np.exp(c.ea_r1_J_mol * u)),
            float(np.exp(c.ea_r2_J_mol * u)),
        )

    def arrhenius(self, temp_degC: np.ndarray) -> tuple[Any, Any, Any]:
        """Resistance factors of R0, R1, R2 at each cell's temperature."""
        c = self.circuit
        u = (1.0 / (temp_degC + ZERO_C_K) - 1.0 / T_REF_K) * (1.0 / R_GAS_J_MOL_K)
        return np.exp(c.ea_r0_J_mol * u), np.exp(c.ea_r1_J_mol * u), np.exp(c.ea_r2_J_mol * u)

    def thermal_decay(self, dt_s: float) -> float:
        """exp(-dt hA / (m c)): how much of a temperature difference to ambient is left."""
        c = self.circuit
        return float(np.exp(-dt_s * c.h_W_K / c.thermal_mass_J_K))

    def hysteresis_decay(self, charge_As: Any) -> np.ndarray:
        """exp(-gamma |I| dt / (3600 Q)) for the charge |I| dt moved."""
        return np.exp((-self.gamma * charge_As) * self.inv_q_As)


def mid_step_shapes(c: Circuit, soc_mid: Any) -> tuple[Any, Any, Any, Any, Any]:
    """SOC shape factors of the resistances at mid-step: (x, y, shape0, rise, shape12).

    R0 scales with shape0 and R1, R2 with shape12 = shape0 + rise (the low-SOC
    rise); x is the SOC clamped to 0..1 and y = 2 x - 1.
    """
    x = np.clip(soc_mid, 0.0, 1.0)
    y = 2.0 * x - 1.0
    shape0 = 1.0 + c.soc_curvature * y * y
    rise = c.low_soc_rise * np.exp(x * (-1.0 / c.low_soc_width))
    return x, y, shape0, rise, shape0 + rise


def shape_slope(c: Circuit, x: Any, y: Any, rise: Any, soc_mid: Any, d_soc: Any) -> Any:
    """d(shape12)/dSOC times the step's SOC change; zero where the SOC is clamped."""
    return (4.0 * c.soc_curvature * y - rise * (1.0 / c.low_soc_width)) * (x == soc_mid) * d_soc


def end_shape0(c: Circuit, soc_end: Any) -> Any:
    """The R0 shape factor at the step's end SOC (the terminal voltage is read there)."""
    x_end = np.clip(soc_end, 0.0, 1.0)
    y_end = 2.0 * x_end - 1.0
    return 1.0 + c.soc_curvature * y_end * y_end


@dataclass
class PackState:
    """The dynamic state of the cells (arrays of shape (n_cells,)) and the model clock.

    current_A is the series current of the last step (positive discharge);
    cell_current_A adds each cell's balancing bleed; r0_ohm is the R0 the last
    terminal voltage was read with.
    """

    soc: np.ndarray
    h: np.ndarray
    v1: np.ndarray
    v2: np.ndarray
    temp_degC: np.ndarray
    ocv_V: np.ndarray
    v_V: np.ndarray
    t_s: float
    current_A: float
    cell_current_A: np.ndarray
    r0_ohm: Any

    def copy(self) -> PackState:
        return PackState(
            **{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(self).items()}
        )


@dataclass(frozen=True)
class ProfileRun:
    """Results of run_profile: arrays of shape (n_steps, n_cells) except t_s, current_A."""

    t_s: np.ndarray
    current_A: np.ndarray
    v_V: np.ndarray
    ocv_V: np.ndarray
    r0_ohm: np.ndarray
    soc: np.ndarray
    h: np.ndarray
    temp_degC: np.ndarray
    anode_util_mAh_g: np.ndarray
    anode_potential_V: np.ndarray

    @property
    def pack_v_V(self) -> np.ndarray:
        return self.v_V.sum(axis=1)

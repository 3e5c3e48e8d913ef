"""The cell design as data (CellDesign) and the quantities derived from it.

A CellDesign is what a cell file (cellmodel/cells/*.toml) holds after
validation: the electrode design in the claims' terms, the equivalent-circuit
and thermal parameters, the OCV branch tables, the silicon anode-potential
tables, the limits and the pack description. Everything that follows from the
electrode design (areal capacities, N/P, the claim-5 ratio, capacity, anode
mass, energy) is computed here, never stored in the file.

Current is positive on discharge throughout cellmodel.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

# Faraday-free unit bridges kept in one place.
_UM_TO_CM = 1e-4


@dataclass(frozen=True)
class Anode:
    """Negative electrode active layer and collector (claims 1-13)."""

    particle_diameter_um: float
    composition: dict[str, float]  # alloy mass fractions by element, summing to 1
    capacity_mAh_g: float  # C_N
    density_g_cm3: float  # D_N
    thickness_um: float
    binder: tuple[str, ...]
    conductive_additive: tuple[str, ...]
    collector_material: str
    collector_thickness_um: float


@dataclass(frozen=True)
class Cathode:
    material: str
    capacity_mAh_g: float  # C_P
    density_g_cm3: float  # D_P
    thickness_um: float
    collector_material: str
    collector_thickness_um: float


@dataclass(frozen=True)
class OcvTables:
    """Full-cell OCV branches vs SOC (0..1): charge (h = -1) and discharge (h = +1)."""

    soc: np.ndarray
    charge_V: np.ndarray
    discharge_V: np.ndarray


@dataclass(frozen=True)
class AnodePotentialTables:
    """Silicon potential vs Li against its lithium fraction, both branches.

    SOC 0 and 1 of the design cell map linearly to li_fraction_empty and
    li_fraction_full. Below empty_knee_li_fraction the potential climbs by a further
    empty_rise_V to the anode's empty point (lithium fraction 0): the cell's voltage
    collapses there (cellmodel.ocv.Empty).
    """

    li_fraction: np.ndarray
    lithiation_V: np.ndarray
    delithiation_V: np.ndarray
    li_fraction_empty: float
    li_fraction_full: float
    empty_knee_li_fraction: float = 0.01
    empty_rise_V: float = 1.0

    def soc_at(self, li_fraction: float) -> float:
        """The design cell's SOC at an anode lithium fraction (below 0 past empty): the
        anode's empty point, lithium fraction 0, is soc_at(0.0)."""
        return (li_fraction - self.li_fraction_empty) / (
            self.li_fraction_full - self.li_fraction_empty
        )


@dataclass(frozen=True)
class Limits:
    v_max_V: float
    v_min_V: float
    v_abuse_max_V: float
    v_abuse_min_V: float
    anode_potential_min_V: float
    window_top_mAh_g: float
    charge_temp_min_degC: float
    charge_temp_max_degC: float
    discharge_temp_min_degC: float
    discharge_temp_max_degC: float
    cv_cutoff_C: float
    max_charge_C: float
    max_discharge_C: float
    # The simulated cell's guard rails (cellmodel.guards) beyond the abuse voltages:
    # above this temperature (thermal abuse: SEI breakdown starts near 80-90 degC) or
    # this current the model stops rather than run on into states it does not describe.
    temp_abuse_max_degC: float = 80.0
    current_abuse_max_C: float = 20.0


@dataclass(frozen=True)
class Circuit:
    """Thevenin circuit at 25 degC and 50 % SOC plus its SOC/temperature laws.

    R_j(SOC, T) = R_j_ref * shape_j(SOC) * exp(Ea_j / R_gas * (1/T - 1/298.15 K)),
    shape_0 = 1 + soc_curvature (2 SOC - 1)^2, shape_1,2 = shape_0 + low_soc_rise
    exp(-SOC / low_soc_width). The capacitances C_j = tau_j / R_j_ref stay constant,
    so tau_j scales with R_j.
    """

    r0_ohm: float
    r1_ohm: float
    tau1_s: float
    r2_ohm: float
    tau2_s: float
    ea_r0_J_mol: float
    ea_r1_J_mol: float
    ea_r2_J_mol: float
    soc_curvature: float
    low_soc_rise: float
    low_soc_width: float
    dUdT_V_K: float
    hysteresis_gamma: float
    coulombic_efficiency: float
    anode_polarization_share: float
    thermal_mass_J_K: float
    h_W_K: float


@dataclass(frozen=True)
class Pack:
    """Cell-to-cell spread as relative 1-sigma (soc_spread: absolute SOC 1-sigma)."""

    capacity_spread: float
    resistance_spread: float
    soc_spread: float
    seed: int


@dataclass(frozen=True)
class Aging:
    """State of health of the cell the model simulates (the design stays the fresh cell).

    capacity_retention: fraction of the design capacity still cyclable, lost as
    lithium inventory (SEI repair), the dominant fade of silicon anodes; the anode
    mass stays, so a faded cell reaches only retention x C_N at full charge. The OCV
    branches keep their shape over the remaining SOC window (an assumption).
    resistance_growth: factor on R0, R1 and R2.
    """

    capacity_retention: float = 1.0
    resistance_growth: float = 1.0


@dataclass(frozen=True)
class CellDesign:
    name: str
    source: str
    description: str
    n_series: int
    facing_area_cm2: float
    anode: Anode
    cathode: Cathode
    ocv: OcvTables
    anode_potential: AnodePotentialTables
    limits: Limits
    circuit: Circuit
    pack: Pack
    aging: Aging = field(default_factory=Aging)

    @property
    def capacity_Ah(self) -> float:
        """Nominal per-cell capacity: facing area times the smaller areal capacity."""
        return cell_capacity_Ah(self)

    @property
    def anode_mass_g(self) -> float:
        """Anode active-layer mass per cell."""
        return anode_mass_g(self)

    @property
    def c_n_mAh_g(self) -> float:
        """Design C_N, the anode layer's capacity per gram over its used window."""
        return self.anode.capacity_mAh_g


def anode_areal_mAh_cm2(d: CellDesign) -> float:
    return d.anode.capacity_mAh_g * d.anode.density_g_cm3 * d.anode.thickness_um * _UM_TO_CM


def cathode_areal_mAh_cm2(d: CellDesign) -> float:
    return d.cathode.capacity_mAh_g * d.cathode.density_g_cm3 * d.cathode.thickness_um * _UM_TO_CM


def np_ratio(d: CellDesign) -> float:
    """N/P: anode over cathode areal capacity."""
    return anode_areal_mAh_cm2(d) / cathode_areal_mAh_cm2(d)


def volumetric_ratio(d: CellDesign) -> float:
    """(C_N x D_N) / (C_P x D_P), claim 5's first relation."""
    return (d.anode.capacity_mAh_g * d.anode.density_g_cm3) / (
        d.cathode.capacity_mAh_g * d.cathode.density_g_cm3
    )


def cell_capacity_Ah(d: CellDesign) -> float:
    areal = min(anode_areal_mAh_cm2(d), cathode_areal_mAh_cm2(d))
    return areal * d.facing_area_cm2 / 1000.0


def anode_mass_g(d: CellDesign) -> float:
    return d.anode.density_g_cm3 * d.anode.thickness_um * _UM_TO_CM * d.facing_area_cm2


def mean_discharge_V(d: CellDesign) -> float:
    """Mean of the discharge-branch OCV over SOC 0..1 (trapezoid rule)."""
    s, v = d.ocv.soc, d.ocv.discharge_V
    return float(np.sum(0.5 * (v[1:] + v[:-1]) * np.diff(s)))


def energy_Wh(d: CellDesign) -> float:
    """Per-cell energy at the mean discharge voltage."""
    return cell_capacity_Ah(d) * mean_discharge_V(d)


def dc_resistance_ohm(d: CellDesign, soc: float) -> float:
    """Steady-state resistance R0 + R1 + R2 of the fresh design at 25 degC and `soc`.

    The SOC shapes of sisn-cell.md section 4, as PackModel applies them: every R
    times 1 + curvature (2 SOC - 1)^2, and R1, R2 also + rise exp(-SOC / width).
    It is what a BMS uses to take the IR drop off a voltage read under current.
    """
    c = d.circuit
    shape = 1.0 + c.soc_curvature * (2.0 * soc - 1.0) ** 2
    rise = c.low_soc_rise * float(np.exp(-soc / c.low_soc_width))
    return c.r0_ohm * shape + (c.r1_ohm + c.r2_ohm) * (shape + rise)


def derived(d: CellDesign) -> dict[str, float]:
    """All derived design quantities, keyed with units in the names."""
    cap = cell_capacity_Ah(d)
    return {
        "anode_areal_mAh_cm2": anode_areal_mAh_cm2(d),
        "cathode_areal_mAh_cm2": cathode_areal_mAh_cm2(d),
        "np_ratio": np_ratio(d),
        "cn_dn_mAh_cm3": d.anode.capacity_mAh_g * d.anode.density_g_cm3,
        "cp_dp_mAh_cm3": d.cathode.capacity_mAh_g * d.cathode.density_g_cm3,
        "volumetric_ratio": volumetric_ratio(d),
        "capacity_Ah": cap,
        "anode_mass_g": anode_mass_g(d),
        "anode_utilization_at_full_mAh_g": cap * 1000.0 / anode_mass_g(d),
        "mean_discharge_V": mean_discharge_V(d),
        "energy_Wh": energy_Wh(d),
        "pack_capacity_Ah": cap,
        "pack_energy_Wh": energy_Wh(d) * d.n_series,
        "n_series": float(d.n_series),
    }


def nominal(d: CellDesign) -> CellDesign:
    """The design as its datasheet states it: the same file without its state of health
    ([aging]). What a BMS is configured for when nothing else is known about the cell."""
    return dataclasses.replace(d, aging=Aging())

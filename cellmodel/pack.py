"""Equivalent-circuit model of N series cells, vectorized over the cells.

Per cell: the classical Thevenin circuit (R0 and two RC pairs) on an OCV with
one-state hysteresis, a lumped thermal node to ambient, and coulomb counting
with a coulombic efficiency on charge. Current is positive on discharge:

    dSOC/dt  = -eta I / (3600 Q)            (eta = CE when charging, else 1)
    dV_j/dt  = -V_j / tau_j - I R_j / tau_j  (j = 1, 2)
    V        = OCV(SOC, h, T) - I R0 + V_1 + V_2
    dh/dt    = gamma |I| / (3600 Q) (sign(I) - h)
    m c dT/dt = I^2 R0 - I (V_1 + V_2) - I T dU/dT + |I| g(SOC) h^2 - hA (T - T_amb)

g is half the gap between the OCV branches. The hysteresis's term is the energy its
loop loses (on a branch, |I| g: a cell cycled between two SOCs on its branches turns
the whole loop's area into heat). Just after a reversal the OCV is still on the old
branch, above the branches' mean on discharge (below on charge): that extra voltage
and the heat are paid from energy the state holds, 3600 Q g h^2 / (2 gamma) (as a silicon
particle holds stress), which is gone at h = 0, where nothing is dissipated. So the
heat is never negative and a closed cycle conserves energy (tests/cellmodel/test_pack.py).

One step holds the current constant over dt (zero-order hold) and applies the
exact exponential solution to V_j, h and T, so any dt from 1 ms to 60 s is
stable. Within a step the resistances and time constants are frozen at the
step's mid-SOC (from the known coulomb count) and its starting temperature;
the heat rate uses the step-average RC voltages; the terminal voltage at the
end of the step uses R0 at the end SOC. The error from freezing is
second order in dt and far below 1 mV at the shipped parameters.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from cellmodel.circuit import (
    CENTRE_CORRECTION_MIN_DT_S,
    R_GAS_J_MOL_K,
    T_REF_K,
    ZERO_C_K,
    CellParams,
    PackState,
    ProfileRun,
    end_shape0,
    mid_step_shapes,
    shape_slope,
)
from cellmodel.design import CellDesign
from cellmodel.errors import InputError
from cellmodel.fastpath import run_single
from cellmodel.guards import GuardEvent, GuardRails
from cellmodel.smallpack import (
    ANODE_FAST_MAX_CELLS,
    FAST_PATH_MAX_CELLS,
    Advanced,
    Ambient,
    CellState,
    SmallPack,
    np_max,
    pairwise_sum,
)

__all__ = [
    "CENTRE_CORRECTION_MIN_DT_S",
    "FAST_PATH_MAX_CELLS",
    "R_GAS_J_MOL_K",
    "T_REF_K",
    "ZERO_C_K",
    "PackModel",
    "PackState",
    "ProfileRun",
    "StepResult",
    "with_cells",
]

# The state arrays and scalars that snapshot() copies and restore() sets.
_STATE_FIELDS = tuple(PackState.__dataclass_fields__)


class StepResult:
    """Per-cell results at the end of a step (arrays of shape (n_cells,)).

    current_A is the series current held over the step (positive discharge);
    cell_current_A adds each cell's balancing bleed. The anode quantities are
    computed on first access, so a loop that never reads them does not pay
    for them. The arrays are the model's own (never modified in place by it):
    treat them as read-only.
    """

    __slots__ = (
        "t_s",
        "current_A",
        "cell_current_A",
        "v_V",
        "ocv_V",
        "soc",
        "h",
        "temp_degC",
        "pack_v_V",
        "_model",
        "_anode_potential_V",
    )

    def __init__(
        self,
        model: PackModel,
        t_s: float,
        current_A: float,
        cell_current_A: np.ndarray,
        v_V: np.ndarray,
        ocv_V: np.ndarray,
        soc: np.ndarray,
        h: np.ndarray,
        temp_degC: np.ndarray,
        pack_v_V: float | None = None,
    ) -> None:
        self._model = model
        self.t_s = t_s
        self.current_A = current_A
        self.cell_current_A = cell_current_A
        self.v_V = v_V
        self.ocv_V = ocv_V
        self.soc = soc
        self.h = h
        self.temp_degC = temp_degC
        self.pack_v_V = float(v_V.sum()) if pack_v_V is None else pack_v_V
        self._anode_potential_V: np.ndarray | None = None

    @property
    def anode_util_mAh_g(self) -> np.ndarray:
        return self.soc * self._model.params.util_per_soc

    @property
    def anode_potential_V(self) -> np.ndarray:
        if self._anode_potential_V is None:
            self._anode_potential_V = self._model.anode_potential_of(
                self.soc, self.h, self.v_V, self.ocv_V
            )
        return self._anode_potential_V

    def __repr__(self) -> str:
        return (
            f"StepResult(t_s={self.t_s!r}, current_A={self.current_A!r}, v_V={self.v_V!r}, "
            f"soc={self.soc!r}, h={self.h!r}, temp_degC={self.temp_degC!r})"
        )


class PackModel:
    """N series cells (design.n_series) as numpy state arrays of shape (n_cells,).

    initial_soc: a float (default 1.0) spread by design.pack.soc_spread for packs
    (shifted so no cell leaves 0..1), or an array taken as is. initial_h: default
    -1 (charge branch) for cells at or above half charge, +1 below; hysteresis=False
    fixes h at 0, the branch mean. Cell temperatures start at ambient. seed
    overrides design.pack.seed for the capacity, resistance and SOC draws (packs
    only; a single cell is the nominal design).

    Packs of up to FAST_PATH_MAX_CELLS cells take the scalar fast path
    (cellmodel.smallpack) in step, the guard checks, cv_current_A and
    terminal_voltage_V: the same results bit for bit, several times faster.
    fast_path=False keeps the vectorized engine, the reference the tests compare with.

    The model is the one owner of the cells' state (the attributes soc, h, v1,
    v2, temp_degC, ocv_V, v_V, t_s, current_A, cell_current_A, r0_ohm); the
    per-cell parameters are in `params` (CellParams).
    """

    def __init__(
        self,
        design: CellDesign,
        *,
        isothermal: bool = False,
        hysteresis: bool = True,
        ambient_degC: float = 25.0,
        initial_soc: float | np.ndarray | None = None,
        initial_h: float | np.ndarray | None = None,
        seed: int | None = None,
        fast_path: bool = True,
    ) -> None:
        self.design = design
        self.isothermal = isothermal
        self.hysteresis = hysteresis
        n = design.n_series
        self.n_cells = n

        # Always draw all three so one spread's value never shifts another's draws.
        rng = np.random.default_rng(design.pack.seed if seed is None else seed)
        z_q, z_r, z_s = rng.standard_normal((3, n))
        if n == 1:
            z_q = z_r = z_s = np.zeros(1)
        self.params = CellParams.draw(design, z_q, z_r, hysteresis)
        self.anode_mass_g = self.params.anode_mass_g
        self.capacity_Ah = self.params.capacity_Ah
        self.resistance_factor = self.params.resistance_factor
        self.guards = GuardRails.for_design(design)
        self._small = SmallPack(self.params) if fast_path and n <= FAST_PATH_MAX_CELLS else None
        self._a_th_cache: dict[float, float] = {}
        self._arr_cache: tuple[float, float, float, float] | None = None
        self._decay_key = -1.0
        self._decay_val = np.ones(n)

        soc0 = self._initial_soc(initial_soc, z_s)
        self.soc: np.ndarray = soc0
        self.h: np.ndarray = self._initial_h(soc0, initial_h)
        self.v1: np.ndarray = np.zeros(n)
        self.v2: np.ndarray = np.zeros(n)
        self.ambient_degC = float(ambient_degC)
        self.temp_degC: np.ndarray = np.full(n, self.ambient_degC)
        self.t_s = 0.0
        self.current_A = 0.0
        self.cell_current_A: np.ndarray = np.zeros(n)
        self.r0_ohm: Any = self.params.r0_ohm
        ocv = self.params.ocv_V(self.soc, self.h, self.temp_degC)
        self.ocv_V: np.ndarray = ocv
        self.v_V: np.ndarray = ocv.copy()

    def _initial_soc(self, initial_soc: float | np.ndarray | None, z_s: np.ndarray) -> np.ndarray:
        if initial_soc is None:
            initial_soc = 1.0
        if np.ndim(initial_soc) != 0:
            return self._cell_array(initial_soc, "initial_soc")
        soc0 = float(initial_soc) + self.design.pack.soc_spread * z_s
        # Keep the drawn pattern: shift rather than clip, as after a charge that
        # stopped when the highest cell was full (or a discharge at the lowest).
        if soc0.max() > 1.0:
            soc0 -= soc0.max() - 1.0
        if soc0.min() < 0.0:
            soc0 -= soc0.min()
        return np.clip(soc0, 0.0, 1.0)

    def _initial_h(self, soc0: np.ndarray, initial_h: float | np.ndarray | None) -> np.ndarray:
        if not self.hysteresis:
            h0: Any = 0.0
        elif initial_h is None:
            # A cell above half charge was most likely last charged, so it sits on
            # the charge branch; below half, on the discharge branch.
            h0 = np.where(soc0 >= 0.5, -1.0, 1.0)
        else:
            h0 = initial_h
        return np.clip(np.broadcast_to(np.asarray(h0, float), (self.n_cells,)).copy(), -1, 1)

    # ----- state access -------------------------------------------------
    def _cell_array(self, values: Any, what: str) -> np.ndarray:
        arr = np.asarray(values, dtype=float)
        if arr.ndim == 0:
            return np.full(self.n_cells, float(arr))
        if arr.shape != (self.n_cells,):
            raise InputError("PackModel", what, f"needs shape ({self.n_cells},), got {arr.shape}")
        return arr.copy()

    @property
    def pack_v_V(self) -> float:
        return float(self.v_V.sum())

    @property
    def anode_util_mAh_g(self) -> np.ndarray:
        """Lithium in the anode over its active-layer mass; C_N at SOC 1 for the design cell."""
        return self.soc * self.params.util_per_soc

    @property
    def anode_potential_V(self) -> np.ndarray:
        return self.anode_potential_of(self.soc, self.h, self.v_V, self.ocv_V)

    def anode_potential_of(
        self, soc: np.ndarray, h: np.ndarray, v_V: np.ndarray, ocv_V: np.ndarray
    ) -> np.ndarray:
        """The anode potential of cells in the given state (CellParams.anode_potential_V)."""
        small = self._small if self.n_cells <= ANODE_FAST_MAX_CELLS else None
        if small is not None and soc.shape == (self.n_cells,):
            pot = small.anode_potential_V(soc.tolist(), h.tolist(), v_V.tolist(), ocv_V.tolist())
            if pot is not None:
                return np.array(pot)
        return self.params.anode_potential_V(soc, h, v_V, ocv_V)

    def set_ambient(self, degC: float) -> None:
        self.ambient_degC = float(degC)
        if self.isothermal:
            self.temp_degC = np.full(self.n_cells, self.ambient_degC)

    def set_soc(self, soc: float | np.ndarray) -> None:
        self.soc = self._cell_array(soc, "soc")

    # ----- guard rails (cellmodel.guards) ----------------------------------
    def current_event(
        self, current_A: float, bleed_A: np.ndarray | None = None
    ) -> GuardEvent | None:
        """The guard event a series current (plus bleed) would cause, before it flows."""
        small, bleed = self._small_for(bleed_A)
        if small is not None and self.guards.current_within(current_A, bleed):
            return None
        i: Any = current_A if bleed_A is None else current_A + np.asarray(bleed_A, dtype=float)
        return self.guards.check_current(i, self.t_s)

    def state_event(self) -> GuardEvent | None:
        """The guard event of the present state (SOC, cell voltage, temperature), or None."""
        if self._small is not None and self.guards.state_within(
            self.soc.tolist(), self.v_V.tolist(), self.temp_degC.tolist()
        ):
            return None
        return self.guards.check_state(self.soc, self.v_V, self.temp_degC, self.t_s)

    def snapshot(self) -> PackState:
        """A copy of the full dynamic state, for restore()."""
        return PackState(**{k: getattr(self, k) for k in _STATE_FIELDS}).copy()

    def restore(self, state: PackState) -> None:
        """Set the dynamic state (copied) from snapshot() or an engine's end state."""
        for k, v in vars(state).items():
            setattr(self, k, v.copy() if isinstance(v, np.ndarray) else v)

    def result(self, pack_v_V: float | None = None) -> StepResult:
        """The present state as a StepResult (pack_v_V: the sum of v_V when known)."""
        return StepResult(
            self,
            self.t_s,
            self.current_A,
            self.cell_current_A,
            self.v_V,
            self.ocv_V,
            self.soc,
            self.h,
            self.temp_degC,
            pack_v_V,
        )

    # ----- the scalar fast path (cellmodel.smallpack) -----------------------
    def _small_for(self, bleed_A: np.ndarray | None) -> tuple[SmallPack | None, list[float] | None]:
        """The scalar engine and the bleed as floats; no engine when this call is for the
        vectorized one (a large pack, or a bleed that is not one value per cell)."""
        small = self._small
        if small is None or bleed_A is None:
            return small, None
        bleed = np.asarray(bleed_A, dtype=float)
        if bleed.shape != (self.n_cells,):
            return None, None
        return small, bleed.tolist()

    def _cell_state(self) -> CellState:
        return CellState(
            self.soc.tolist(),
            self.h.tolist(),
            self.v1.tolist(),
            self.v2.tolist(),
            self.temp_degC.tolist(),
        )

    def _ambient(self, dt_s: float) -> Ambient:
        if self.isothermal:
            return Ambient(self.ambient_degC, self.arrhenius(self.temp_degC), 1.0)
        return Ambient(self.ambient_degC, None, self._thermal_decay(dt_s))

    def _commit(self, adv: Advanced) -> None:
        """Take the fast path's state after a step, as arrays (rows of one allocation)."""
        rows = [adv.soc, adv.v1, adv.v2, adv.ocv_V, adv.v_V, adv.cell_current_A, adv.r0_ohm]
        if adv.h is not None:
            rows.append(adv.h)
        if adv.temp_degC is not None:
            rows.append(adv.temp_degC)
        flat: list[float] = []
        for r in rows:
            flat += r
        soc, v1, v2, ocv, v, cells, r0, *rest = np.array(flat).reshape(len(rows), self.n_cells)
        self.soc, self.v1, self.v2, self.ocv_V, self.v_V = soc, v1, v2, ocv, v
        self.cell_current_A, self.r0_ohm = cells, r0
        if adv.h is not None:
            self.h = rest[0]
        if adv.temp_degC is not None:
            self.temp_degC = rest[-1]

    # ----- model pieces ---------------------------------------------------
    def arrhenius(self, temp_degC: np.ndarray) -> tuple[Any, Any, Any]:
        """Resistance factors of R0, R1, R2: floats at ambient when isothermal (cached)."""
        if not self.isothermal:
            return self.params.arrhenius(temp_degC)
        cached = self._arr_cache
        if cached is not None and cached[0] == self.ambient_degC:
            return cached[1], cached[2], cached[3]
        arr = self.params.arrhenius_at(self.ambient_degC)
        self._arr_cache = (self.ambient_degC, *arr)
        return arr

    def _thermal_decay(self, dt_s: float) -> float:
        a = self._a_th_cache.get(dt_s)
        if a is None:
            a = self.params.thermal_decay(dt_s)
            if len(self._a_th_cache) < 64:
                self._a_th_cache[dt_s] = a
        return a

    def _decay(self, charge_As: float) -> np.ndarray:
        """Hysteresis decay exp(-gamma |I| dt / (3600 Q)) per cell; cached for constant steps."""
        if self._decay_key != charge_As:
            self._decay_val = self.params.hysteresis_decay(charge_As)
            self._decay_key = charge_As
        return self._decay_val

    def _hysteresis_after(self, i_cell: Any, dt_s: float, per_cell: bool) -> np.ndarray:
        p = self.params
        if not p.gamma:
            return self.h
        if not per_cell:
            if i_cell == 0.0:
                return self.h
            s = 1.0 if i_cell > 0 else -1.0
            return s + (self.h - s) * self._decay(abs(i_cell) * dt_s)
        s = np.sign(i_cell)
        decay = np.exp((-p.gamma * dt_s) * np.abs(i_cell) * p.inv_q_As)
        return s + (self.h - s) * decay

    def _temperature_after(
        self,
        i_cell: Any,
        r0: Any,
        v1n: np.ndarray,
        v2n: np.ndarray,
        h_n: np.ndarray,
        soc_mid: Any,
        dt_s: float,
    ) -> np.ndarray:
        if self.isothermal:
            return self.temp_degC
        c = self.design.circuit
        v_rc = 0.5 * (self.v1 + v1n + self.v2 + v2n)
        # Ohmic, RC and reversible (entropic) heat, then the hysteresis's loss: the step's
        # mean of h^2 (trapezoid, as the RC voltages) times |I| and the half-gap.
        h2 = 0.5 * (self.h * self.h + h_n * h_n)
        hyst_W = np.abs(i_cell) * h2 * self.params.hysteresis_heat_gap_V(soc_mid)
        heat_W = i_cell * (i_cell * r0 - v_rc - (self.temp_degC + ZERO_C_K) * c.dUdT_V_K) + hyst_W
        a_th = self._thermal_decay(dt_s)
        rise = heat_W * (1.0 / c.h_W_K)
        return self.ambient_degC + (self.temp_degC - self.ambient_degC) * a_th + rise * (1.0 - a_th)

    def _advance(self, current_A: float, dt_s: float, bleed_A: np.ndarray | None) -> tuple:
        """The state after dt at constant current, without committing it."""
        c = self.design.circuit
        p = self.params
        if bleed_A is None:
            i_cell: Any = float(current_A)
            eta: Any = c.coulombic_efficiency if i_cell < 0 else 1.0
        else:
            i_cell = current_A + np.asarray(bleed_A, dtype=float)
            eta = np.where(i_cell < 0, c.coulombic_efficiency, 1.0)
        d_soc = (eta * dt_s) * i_cell * p.inv_q_As
        soc_n = self.soc - d_soc
        soc_mid = self.soc - 0.5 * d_soc
        x, y, shape0, rise, shape12 = mid_step_shapes(c, soc_mid)
        arr0, arr1, arr2 = self.arrhenius(self.temp_degC)
        r0 = p.r0_ohm * shape0 * arr0
        k1 = shape12 * arr1
        k2 = shape12 * arr2
        z1 = (dt_s / c.tau1_s) / k1
        z2 = (dt_s / c.tau2_s) / k2
        a1 = np.exp(-z1)
        a2 = np.exp(-z2)
        if dt_s >= CENTRE_CORRECTION_MIN_DT_S:
            # An RC voltage at the step's end weighs its forcing by exp(-(dt - t)/tau),
            # centred at dt/2 + f dt, f = 1/2 - 1/z + 1/(e^z - 1): take R_j there
            # (linearized in SOC) so steps much longer than tau stay exact to 2nd order.
            slope = shape_slope(c, x, y, rise, soc_mid, d_soc)
            k1 = k1 - slope * (0.5 - 1.0 / z1 + a1 / (1.0 - a1)) * arr1
            k2 = k2 - slope * (0.5 - 1.0 / z2 + a2 / (1.0 - a2)) * arr2
        v1n = a1 * self.v1 - (1.0 - a1) * (p.r1_ohm * k1) * i_cell
        v2n = a2 * self.v2 - (1.0 - a2) * (p.r2_ohm * k2) * i_cell
        h_n = self._hysteresis_after(i_cell, dt_s, bleed_A is not None)
        temp_n = self._temperature_after(i_cell, r0, v1n, v2n, h_n, soc_mid, dt_s)
        # The terminal voltage is read at the end of the step, so its R0 is the end-SOC one.
        r0_end = p.r0_ohm * end_shape0(c, soc_n) * arr0
        ocv_n = p.ocv_V(soc_n, h_n, temp_n)
        v_n = ocv_n - i_cell * r0_end + v1n + v2n
        return soc_n, v1n, v2n, h_n, temp_n, ocv_n, v_n, i_cell, r0_end

    # ----- stepping -------------------------------------------------------
    def step(self, current_A: float, dt_s: float, bleed_A: np.ndarray | None = None) -> StepResult:
        """Hold the series current (positive discharge) for dt_s; bleed_A adds per-cell drain."""
        small, bleed = self._small_for(bleed_A)
        if small is not None:
            adv = small.advance(self._cell_state(), current_A, dt_s, bleed, self._ambient(dt_s))
            if adv is not None:
                self._commit(adv)
                self.t_s += dt_s
                self.current_A = float(current_A)
                return self.result(adv.pack_v_V)
        return self._step_vectorized(current_A, dt_s, bleed_A)

    def _step_vectorized(
        self, current_A: float, dt_s: float, bleed_A: np.ndarray | None
    ) -> StepResult:
        soc_n, v1n, v2n, h_n, temp_n, ocv_n, v_n, i_cell, r0 = self._advance(
            current_A, dt_s, bleed_A
        )
        self.r0_ohm = r0
        self.soc, self.v1, self.v2, self.h, self.temp_degC = soc_n, v1n, v2n, h_n, temp_n
        self.ocv_V, self.v_V = ocv_n, v_n
        self.t_s += dt_s
        self.current_A = float(current_A)
        self.cell_current_A = (
            i_cell if isinstance(i_cell, np.ndarray) else np.full(self.n_cells, i_cell)
        )
        return self.result()

    def terminal_voltage_V(self, current_A: float, bleed_A: np.ndarray | None = None) -> np.ndarray:
        """Cell voltages if the current switched to current_A now (the R0 step only)."""
        small, bleed = self._small_for(bleed_A)
        if small is not None:
            adv = small.advance(self._cell_state(), current_A, 0.0, bleed, self._ambient(0.0))
            if adv is not None:
                now = zip(self.ocv_V.tolist(), self.v1.tolist(), self.v2.tolist(), strict=True)
                cells = zip(now, adv.cell_current_A, adv.r0_ohm, strict=True)
                return np.array([o + v1 + v2 - i * r0 for (o, v1, v2), i, r0 in cells])
        _, _, _, _, _, _, _, i_cell, r0 = self._advance(current_A, 0.0, bleed_A)
        return self.ocv_V + self.v1 + self.v2 - i_cell * r0

    def cv_current_A(
        self,
        v_target_V: float,
        dt_s: float,
        bleed_A: np.ndarray | None = None,
        *,
        pack: bool = False,
    ) -> float:
        """Series current that ends the next dt_s with the highest cell (or the pack) at target.

        Over one step the circuit is linear in I given the ZOH solution: V_end =
        A - B I with B = R0 + (1-a1) R1 + (1-a2) R2 + eta dt/(3600 Q) dOCV/dSOC.
        That solve is exact for the RC network; the OCV curvature, the hysteresis
        update and the mid-step resistances are then absorbed by two corrections
        evaluated with the true step, leaving residuals far below 1 uV.
        """
        small, fast_bleed = self._small_for(bleed_A)
        if small is not None:
            i_fast = self._cv_current_fast(small, v_target_V, dt_s, fast_bleed, pack)
            if i_fast is not None:
                return i_fast
        bleed = np.zeros(self.n_cells) if bleed_A is None else np.asarray(bleed_A, float)
        i_guess = 0.0
        for _ in range(3):
            b = self._cv_slope(i_guess, dt_s, bleed)
            v = self._advance(i_guess, dt_s, bleed_A)[6]
            if pack:
                i_guess = i_guess + (float(v.sum()) - v_target_V) / float(b.sum())
            else:
                # V_end_i(I) ~ v_i - b_i (I - I_guess); every cell must end at or below target.
                i_guess = float(np.max(i_guess + (v - v_target_V) / b))
        return i_guess

    def _cv_current_fast(
        self,
        small: SmallPack,
        v_target_V: float,
        dt_s: float,
        bleed: list[float] | None,
        pack: bool,
    ) -> float | None:
        """cv_current_A's iterations on the scalar engine; None when it meets a NaN."""
        state = self._cell_state()
        amb = self._ambient(dt_s)
        # The state does not change between the iterations, nor its Arrhenius factors.
        arrhenius = small.arrhenius(state.temp_degC, amb)
        zeros = [0.0] * self.n_cells if bleed is None else bleed
        i_guess = 0.0
        for _ in range(3):
            b = small.cv_slope(state, i_guess, dt_s, zeros, arrhenius)
            adv = small.advance(state, i_guess, dt_s, bleed, amb, arrhenius)
            if adv is None:
                return None
            if pack:
                i_guess = i_guess + (adv.pack_v_V - v_target_V) / pairwise_sum(b)
            else:
                steps = zip(adv.v_V, b, strict=True)
                i_guess = np_max([i_guess + (v - v_target_V) / bk for v, bk in steps])
        return i_guess

    def _cv_slope(self, i_series: float, dt_s: float, bleed: np.ndarray) -> np.ndarray:
        """-dV_end/dI of each cell over the next dt_s at series current i_series."""
        c = self.design.circuit
        p = self.params
        i_cell = i_series + bleed
        eta = np.where(i_cell < 0, c.coulombic_efficiency, 1.0)
        d_soc = eta * dt_s * i_cell * p.inv_q_As
        x = np.clip(self.soc - 0.5 * d_soc, 0.0, 1.0)
        shape0 = 1.0 + c.soc_curvature * (2 * x - 1) ** 2
        shape12 = shape0 + c.low_soc_rise * np.exp(-x / c.low_soc_width)
        arr0, arr1, arr2 = self.arrhenius(self.temp_degC)
        a1 = np.exp(-dt_s / (c.tau1_s * shape12 * arr1))
        a2 = np.exp(-dt_s / (c.tau2_s * shape12 * arr2))
        h = self.h if self.hysteresis else 0.0
        d_ocv = p.ocv.slope(self.soc - d_soc, h)
        return (
            p.r0_ohm * shape0 * arr0
            + (1 - a1) * p.r1_ohm * shape12 * arr1
            + (1 - a2) * p.r2_ohm * shape12 * arr2
            + eta * dt_s * p.inv_q_As * d_ocv
        )

    def run_profile(self, currents_A: np.ndarray, dt_s: float | np.ndarray) -> ProfileRun:
        """Step through a current sequence; row k is the state at the end of step k.

        A single cell takes a scalar fast path (same equations, plain floats);
        a pack steps the vectorized model.
        """
        currents = np.asarray(currents_A, dtype=float).ravel()
        dts = np.broadcast_to(np.asarray(dt_s, dtype=float), currents.shape).copy()
        if np.any(dts < 0):
            raise InputError("run_profile", "dt_s", "time steps must not be negative")
        if self.n_cells > 1:
            return self._run_steps(currents, dts)
        arrhenius = self.arrhenius(self.temp_degC) if self.isothermal else None
        run, end = run_single(
            self.params, self.snapshot(), currents, dts, self.ambient_degC, arrhenius
        )
        self.restore(end)
        return run

    def _run_steps(self, currents: np.ndarray, dts: np.ndarray) -> ProfileRun:
        """run_profile by repeated vectorized steps (packs)."""
        n, m = currents.shape[0], self.n_cells
        cols = {k: np.empty((n, m)) for k in ("v", "ocv", "r0", "soc", "h", "T", "util", "pot")}
        t_s = np.empty(n)
        for k in range(n):
            res = self.step(float(currents[k]), float(dts[k]))
            t_s[k] = res.t_s
            cols["v"][k] = res.v_V
            cols["ocv"][k] = res.ocv_V
            cols["r0"][k] = self.r0_ohm
            cols["soc"][k] = res.soc
            cols["h"][k] = res.h
            cols["T"][k] = res.temp_degC
            cols["util"][k] = res.anode_util_mAh_g
            cols["pot"][k] = res.anode_potential_V
        return ProfileRun(
            t_s=t_s,
            current_A=currents.copy(),
            v_V=cols["v"],
            ocv_V=cols["ocv"],
            r0_ohm=cols["r0"],
            soc=cols["soc"],
            h=cols["h"],
            temp_degC=cols["T"],
            anode_util_mAh_g=cols["util"],
            anode_potential_V=cols["pot"],
        )


def with_cells(design: CellDesign, n_series: int) -> CellDesign:
    """The same cell as a pack of n_series (for benchmarks and tests)."""
    return replace(design, n_series=int(n_series))

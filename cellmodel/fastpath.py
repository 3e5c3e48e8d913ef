"""The single-cell engine of PackModel.run_profile: one cell over a whole current profile.

PackModel.step advances all cells by one step with numpy; for one cell most of
that time is numpy's per-call overhead. This engine splits the same step into
what depends only on the current sequence (coulomb count, SOC shape factors,
and for an isothermal cell the RC decay factors: computed for all steps at once
with numpy), the recurrences that must run in order (RC voltages, hysteresis,
temperature with its Arrhenius feedback: one loop over Python floats), and the
outputs that feed nothing back (OCV, terminal voltage, anode quantities: numpy
again). Every expression is PackModel._advance's, with the same operations in
the same order, so an isothermal cell matches PackModel.step bit for bit; with
the thermal feedback the Arrhenius and RC factors come from math.exp inside the
loop, which may differ from numpy's vectorized exp in the last bit.

It reads parameters and a start state and returns rows and an end state; the
model (the one owner of the state) commits it. Current is positive on discharge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


@dataclass(frozen=True)
class _Schedule:
    """What each step k needs that does not depend on the recurrences (arrays over k)."""

    soc_end: np.ndarray
    r0_shaped: np.ndarray  # R0 * shape0 (times the Arrhenius factor in the loop)
    shape12: np.ndarray
    slope: np.ndarray
    dt_tau1: np.ndarray
    dt_tau2: np.ndarray
    h_decay: np.ndarray
    centre: np.ndarray  # the step is long enough for the RC centre correction
    heat_gap: np.ndarray  # the hysteresis's half-gap at mid-step, for its heat


@dataclass(frozen=True)
class _Trajectory:
    """The recurrences' values at the end of each step."""

    v1: np.ndarray
    v2: np.ndarray
    h: np.ndarray
    temp_degC: np.ndarray
    arr0: np.ndarray | float  # the Arrhenius factor of R0 each step used


def run_single(
    params: CellParams,
    start: PackState,
    currents: np.ndarray,
    dts: np.ndarray,
    ambient_degC: float,
    isothermal_arrhenius: tuple[float, float, float] | None,
) -> tuple[ProfileRun, PackState]:
    """Step one cell through currents[k] held for dts[k]; rows are the ends of the steps.

    isothermal_arrhenius: the fixed resistance factors of an isothermal cell, or
    None to follow its temperature. Returns the rows and the state after the last step.
    """
    if currents.size == 0:
        return _empty_run(), start.copy()
    sched = _schedule(params, float(start.soc[0]), currents, dts)
    if isothermal_arrhenius is not None:
        h = _hysteresis(float(start.h[0]), currents, sched.h_decay, bool(params.gamma))
        traj = _rc_isothermal(params, start, currents, sched, h, isothermal_arrhenius)
    else:
        traj = _rc_thermal(params, start, currents, dts, sched, ambient_degC)
    return _outputs(params, start, currents, dts, sched, traj)


def _schedule(params: CellParams, soc0: float, currents: np.ndarray, dts: np.ndarray) -> _Schedule:
    c = params.circuit
    inv_q = params.inv_q_As[0]
    eta = np.where(currents < 0, c.coulombic_efficiency, 1.0)
    d_soc = (eta * dts) * currents * inv_q
    # Sequential subtraction, as step by step (a cumulative sum would round differently).
    soc = np.subtract.accumulate(np.concatenate(([soc0], d_soc)))
    soc_mid = soc[:-1] - 0.5 * d_soc
    x, y, shape0, rise, shape12 = mid_step_shapes(c, soc_mid)
    return _Schedule(
        soc_end=soc[1:],
        r0_shaped=params.r0_ohm[0] * shape0,
        shape12=shape12,
        slope=shape_slope(c, x, y, rise, soc_mid, d_soc),
        dt_tau1=dts / c.tau1_s,
        dt_tau2=dts / c.tau2_s,
        h_decay=params.hysteresis_decay(np.abs(currents) * dts),
        centre=dts >= CENTRE_CORRECTION_MIN_DT_S,
        heat_gap=params.hysteresis_heat_gap_V(soc_mid),
    )


def _hysteresis(h0: float, currents: np.ndarray, decay: np.ndarray, active: bool) -> np.ndarray:
    """The hysteresis state after each step (unchanged at zero current or gamma 0)."""
    if not active:
        return np.full(currents.size, h0)
    out = np.empty(currents.size)
    h = h0
    for k, (i, d) in enumerate(zip(currents.tolist(), decay.tolist(), strict=True)):
        if i != 0.0:
            s = 1.0 if i > 0 else -1.0
            h = s + (h - s) * d
        out[k] = h
    return out


def _rc_factors(
    sched: _Schedule, arr1: float | np.ndarray, arr2: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorized RC decay a_j and forcing (1 - a_j) R_j k_j of every step (fixed Arrhenius)."""
    k1 = sched.shape12 * arr1
    k2 = sched.shape12 * arr2
    z1 = sched.dt_tau1 / k1
    z2 = sched.dt_tau2 / k2
    a1 = np.exp(-z1)
    a2 = np.exp(-z2)
    c = sched.centre
    if c.any():
        k1 = k1.copy()
        k2 = k2.copy()
        k1[c] = k1[c] - sched.slope[c] * (0.5 - 1.0 / z1[c] + a1[c] / (1.0 - a1[c])) * arr1
        k2[c] = k2[c] - sched.slope[c] * (0.5 - 1.0 / z2[c] + a2[c] / (1.0 - a2[c])) * arr2
    return a1, a2, k1, k2


def _rc_isothermal(
    params: CellParams,
    start: PackState,
    currents: np.ndarray,
    sched: _Schedule,
    h: np.ndarray,
    arrhenius: tuple[float, float, float],
) -> _Trajectory:
    arr0, arr1, arr2 = arrhenius
    a1, a2, k1, k2 = _rc_factors(sched, arr1, arr2)
    b1 = ((1.0 - a1) * (params.r1_ohm[0] * k1)).tolist()
    b2 = ((1.0 - a2) * (params.r2_ohm[0] * k2)).tolist()
    n = currents.size
    out1 = [0.0] * n
    out2 = [0.0] * n
    v1 = float(start.v1[0])
    v2 = float(start.v2[0])
    for k, (i, d1, d2) in enumerate(zip(currents.tolist(), a1.tolist(), a2.tolist(), strict=True)):
        v1 = d1 * v1 - b1[k] * i
        v2 = d2 * v2 - b2[k] * i
        out1[k] = v1
        out2[k] = v2
    temp = np.full(n, float(start.temp_degC[0]))
    return _Trajectory(np.asarray(out1), np.asarray(out2), h, temp, arr0)


def _rc_thermal(
    params: CellParams,
    start: PackState,
    currents: np.ndarray,
    dts: np.ndarray,
    sched: _Schedule,
    ambient_degC: float,
) -> _Trajectory:
    """RC voltages, hysteresis and temperature in one loop: each step's resistances follow
    the temperature."""
    c = params.circuit
    n = currents.size
    exp = math.exp
    ea0, ea1, ea2 = c.ea_r0_J_mol, c.ea_r1_J_mol, c.ea_r2_J_mol
    inv_rg = 1.0 / R_GAS_J_MOL_K
    inv_tref = 1.0 / T_REF_K
    dudt = c.dUdT_V_K
    inv_hw = 1.0 / c.h_W_K
    r1 = float(params.r1_ohm[0])
    r2 = float(params.r2_ohm[0])
    a_th_by_dt: dict[float, float] = {}
    r0s, sh12, slope = sched.r0_shaped.tolist(), sched.shape12.tolist(), sched.slope.tolist()
    t1, t2, centre = sched.dt_tau1.tolist(), sched.dt_tau2.tolist(), sched.centre.tolist()
    h_decay, gap = sched.h_decay.tolist(), sched.heat_gap.tolist()
    out1, out2, out_t, out_e0, out_h = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
    v1, v2, h = float(start.v1[0]), float(start.v2[0]), float(start.h[0])
    gamma = bool(params.gamma)
    temp, amb = float(start.temp_degC[0]), ambient_degC
    for k, (i, dt) in enumerate(zip(currents.tolist(), dts.tolist(), strict=True)):
        h0 = h
        if gamma and i != 0.0:
            s = 1.0 if i > 0 else -1.0
            h = s + (h - s) * h_decay[k]
        u = (1.0 / (temp + ZERO_C_K) - inv_tref) * inv_rg
        e0, e1, e2 = exp(ea0 * u), exp(ea1 * u), exp(ea2 * u)
        r0 = r0s[k] * e0
        k1 = sh12[k] * e1
        k2 = sh12[k] * e2
        z1 = t1[k] / k1
        z2 = t2[k] / k2
        a1 = exp(-z1)
        a2 = exp(-z2)
        if centre[k]:
            k1 = k1 - slope[k] * (0.5 - 1.0 / z1 + a1 / (1.0 - a1)) * e1
            k2 = k2 - slope[k] * (0.5 - 1.0 / z2 + a2 / (1.0 - a2)) * e2
        v1n = a1 * v1 - (1.0 - a1) * (r1 * k1) * i
        v2n = a2 * v2 - (1.0 - a2) * (r2 * k2) * i
        heat = (
            i * (i * r0 - 0.5 * (v1 + v1n + v2 + v2n) - (temp + ZERO_C_K) * dudt)
            + abs(i) * (0.5 * (h0 * h0 + h * h)) * gap[k]
        )
        a_th = a_th_by_dt.get(dt)
        if a_th is None:
            a_th = a_th_by_dt[dt] = params.thermal_decay(dt)
        temp = amb + (temp - amb) * a_th + heat * inv_hw * (1.0 - a_th)
        v1, v2 = v1n, v2n
        out1[k], out2[k], out_t[k], out_e0[k], out_h[k] = v1, v2, temp, e0, h
    return _Trajectory(
        np.asarray(out1), np.asarray(out2), np.asarray(out_h), np.asarray(out_t), np.asarray(out_e0)
    )


def _outputs(
    params: CellParams,
    start: PackState,
    currents: np.ndarray,
    dts: np.ndarray,
    sched: _Schedule,
    traj: _Trajectory,
) -> tuple[ProfileRun, PackState]:
    """Terminal voltage, OCV and anode quantities of every row, and the end state."""
    soc = sched.soc_end
    # The terminal voltage is read at the end of the step, so its R0 is the end-SOC one.
    r0_end = params.r0_ohm[0] * end_shape0(params.circuit, soc) * traj.arr0
    ocv = params.ocv_V(soc, traj.h, traj.temp_degC, grid=False)
    v = ocv - currents * r0_end + traj.v1 + traj.v2
    t_s = np.add.accumulate(np.concatenate(([start.t_s], dts)))[1:]
    end = PackState(
        soc=soc[-1:].copy(),
        h=traj.h[-1:].copy(),
        v1=traj.v1[-1:].copy(),
        v2=traj.v2[-1:].copy(),
        temp_degC=traj.temp_degC[-1:].copy(),
        ocv_V=ocv[-1:].copy(),
        v_V=v[-1:].copy(),
        t_s=float(t_s[-1]),
        current_A=float(currents[-1]),
        cell_current_A=currents[-1:].copy(),
        r0_ohm=r0_end[-1:].copy(),
    )

    def col(a: np.ndarray) -> np.ndarray:
        return a.reshape(-1, 1)

    run = ProfileRun(
        t_s=t_s,
        current_A=currents.copy(),
        v_V=col(v),
        ocv_V=col(ocv),
        r0_ohm=col(r0_end),
        soc=col(soc),
        h=col(traj.h),
        temp_degC=col(traj.temp_degC),
        anode_util_mAh_g=col(soc * params.util_per_soc[0]),
        anode_potential_V=col(params.anode_potential_V(soc, traj.h, v, ocv, grid=False)),
    )
    return run, end


def _empty_run() -> ProfileRun:
    empty = np.empty((0, 1))
    return ProfileRun(
        t_s=np.empty(0),
        current_A=np.empty(0),
        v_V=empty,
        ocv_V=empty,
        r0_ohm=empty,
        soc=empty,
        h=empty,
        temp_degC=empty,
        anode_util_mAh_g=empty,
        anode_potential_V=empty,
    )

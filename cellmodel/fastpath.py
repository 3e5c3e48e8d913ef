"""run_profile's engines: a scalar loop for one cell, repeated vectorized steps for packs.

The single-cell path splits the step of PackModel._advance into what depends
only on the current sequence (coulomb count, SOC shape factors: computed for
all steps at once with numpy), the recurrences that must run in order (RC
voltages, hysteresis, temperature with its Arrhenius feedback: one tight loop
over Python floats), and the outputs that feed nothing back (OCV, terminal
voltage, anode quantities: numpy again afterwards). The equations are the
same as PackModel.step, so the two agree to rounding.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from cellmodel.pack import PackModel, ProfileRun


def run_single(model: PackModel, currents: np.ndarray, dts: np.ndarray) -> ProfileRun:
    from cellmodel.pack import (
        CENTRE_CORRECTION_MIN_DT_S as min_dt_centre,
    )
    from cellmodel.pack import R_GAS_J_MOL_K, T_REF_K, ZERO_C_K, ProfileRun

    c = model.design.circuit
    n = currents.shape[0]
    inv_q = float(model._inv_q_As[0])
    eta = np.where(currents < 0, model._ce, 1.0)
    d_soc = eta * dts * currents * inv_q
    soc_end = float(model.soc[0]) - np.cumsum(d_soc)
    soc_start = np.concatenate(([float(model.soc[0])], soc_end[:-1]))
    soc_mid = soc_start - 0.5 * d_soc
    x = np.clip(soc_mid, 0.0, 1.0)
    y = 2.0 * x - 1.0
    shape0 = 1.0 + c.soc_curvature * y * y
    rise = c.low_soc_rise * np.exp(x * (-1.0 / c.low_soc_width))
    shape12 = shape0 + rise
    # See PackModel._advance: R_j is taken where the RC forcing is centred.
    slope = (
        (4.0 * c.soc_curvature * y - rise * (1.0 / c.low_soc_width)) * (x == soc_mid) * d_soc
    ).tolist()
    if model._gamma:
        decay = np.exp((-model._gamma * inv_q) * dts * np.abs(currents))
        sgn = np.sign(currents)
    else:
        decay = np.ones(n)
        sgn = np.zeros(n)

    r0_base = (float(model._r0[0]) * shape0).tolist()
    sh12 = shape12.tolist()
    r1 = float(model._r1[0])
    r2 = float(model._r2[0])
    m1 = (-dts / c.tau1_s / shape12).tolist()
    m2 = (-dts / c.tau2_s / shape12).tolist()
    cur = currents.tolist()
    dec = decay.tolist()
    sg = sgn.tolist()
    dtl = dts.tolist()

    exp = math.exp
    v1 = float(model.v1[0])
    v2 = float(model.v2[0])
    h = float(model.h[0])
    temp = float(model.temp_degC[0])
    amb = model.ambient_degC
    iso = model.isothermal
    ea0, ea1, ea2 = c.ea_r0_J_mol, c.ea_r1_J_mol, c.ea_r2_J_mol
    inv_rg = 1.0 / R_GAS_J_MOL_K
    inv_tref = 1.0 / T_REF_K
    dudt = c.dUdT_V_K
    inv_hw = 1.0 / c.h_W_K
    th_rate = -c.h_W_K / c.thermal_mass_J_K
    if iso:
        e0, e1, e2 = model._arrhenius(model.temp_degC)
        e0, e1, e2 = float(e0), float(e1), float(e2)
    else:
        e0 = e1 = e2 = 1.0
    a_th_by_dt: dict[float, float] = {}

    out_v1 = [0.0] * n
    out_v2 = [0.0] * n
    out_h = [0.0] * n
    out_t = [0.0] * n
    out_r0 = [0.0] * n
    for k in range(n):
        i = cur[k]
        if not iso:
            u = (1.0 / (temp + ZERO_C_K) - inv_tref) * inv_rg
            e0 = exp(ea0 * u)
            e1 = exp(ea1 * u)
            e2 = exp(ea2 * u)
        r0 = r0_base[k] * e0
        z1 = m1[k] / e1
        z2 = m2[k] / e2
        a1 = exp(z1)
        a2 = exp(z2)
        if dtl[k] >= min_dt_centre:
            sl = slope[k]
            sh = sh12[k]
            k1 = (sh * e1 - sl * (0.5 + 1.0 / z1 + a1 / (1.0 - a1)) * e1) * r1
            k2 = (sh * e2 - sl * (0.5 + 1.0 / z2 + a2 / (1.0 - a2)) * e2) * r2
        else:
            k1 = sh12[k] * e1 * r1
            k2 = sh12[k] * e2 * r2
        v1n = a1 * v1 - (1.0 - a1) * k1 * i
        v2n = a2 * v2 - (1.0 - a2) * k2 * i
        s = sg[k]
        h = s + (h - s) * dec[k]
        if not iso:
            heat = i * (i * r0 - 0.5 * (v1 + v1n + v2 + v2n) - (temp + ZERO_C_K) * dudt)
            dt = dtl[k]
            a_th = a_th_by_dt.get(dt)
            if a_th is None:
                a_th = a_th_by_dt[dt] = exp(dt * th_rate)
            temp = amb + (temp - amb) * a_th + heat * inv_hw * (1.0 - a_th)
        v1 = v1n
        v2 = v2n
        out_v1[k] = v1
        out_v2[k] = v2
        out_h[k] = h
        out_t[k] = temp
        out_r0[k] = r0

    v_rc = np.add(out_v1, out_v2)
    h_arr = np.asarray(out_h)
    t_arr = np.asarray(out_t) if not iso else np.full(n, temp)
    # Heat used the mid-step R0; the voltage at the step's end takes the end-SOC R0.
    x_end = np.clip(soc_end, 0.0, 1.0)
    y_end = 2.0 * x_end - 1.0
    r0_arr = np.asarray(out_r0) * ((1.0 + c.soc_curvature * y_end * y_end) / shape0)
    ocv = model._ocv_of(soc_end, h_arr, t_arr)
    v = ocv - currents * r0_arr + v_rc
    if n:
        model.soc = soc_end[-1:].copy()
        model.v1 = np.array([v1])
        model.v2 = np.array([v2])
        model.h = h_arr[-1:].copy()
        model.temp_degC = t_arr[-1:].copy()
        model.ocv_V = ocv[-1:].copy()
        model.v_V = v[-1:].copy()
        model.current_A = float(currents[-1])
        model.cell_current_A = currents[-1:].copy()
    t0 = model.t_s
    t_s = t0 + np.cumsum(dts)
    if n:
        model.t_s = float(t_s[-1])

    def col(a: np.ndarray) -> np.ndarray:
        return a.reshape(n, 1)

    return ProfileRun(
        t_s=t_s,
        current_A=currents.copy(),
        v_V=col(v),
        ocv_V=col(ocv),
        r0_ohm=col(r0_arr),
        soc=col(soc_end),
        h=col(h_arr),
        temp_degC=col(t_arr),
        anode_util_mAh_g=col(soc_end * model._util_per_soc[0]),
        anode_potential_V=col(model._anode_potential(soc_end, h_arr, v, ocv)),
    )


def run_vectorized(model: PackModel, currents: np.ndarray, dts: np.ndarray) -> ProfileRun:
    from cellmodel.pack import ProfileRun

    n, m = currents.shape[0], model.n_cells
    cols = {k: np.empty((n, m)) for k in ("v", "ocv", "r0", "soc", "h", "T", "util", "pot")}
    t_s = np.empty(n)
    for k in range(n):
        res = model.step(float(currents[k]), float(dts[k]))
        r0 = model.r0_ohm
        t_s[k] = res.t_s
        cols["v"][k] = res.v_V
        cols["ocv"][k] = res.ocv_V
        cols["r0"][k] = r0
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

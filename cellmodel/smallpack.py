"""The scalar fast path of PackModel's per-sample calls for small packs.

Why it exists: the closed loop steps the model once per sample, thousands of times a
second. For a pack of a few cells nearly all of a vectorized step's time is numpy's
per-call overhead (some 60 ufunc calls of about 0.5 us each, whatever the cell count),
so the same arithmetic on Python floats, one cell after the other, is several times
faster up to FAST_PATH_MAX_CELLS cells. Larger packs keep the vectorized engine.

Exactness: every expression here is the vectorized one's (PackModel._advance and
_cv_slope, CellParams.ocv_V and anode_potential_V) with the same operations in the
same order, so on IEEE doubles the results are bit for bit those of the vectorized
engine, which stays the reference (tests/cellmodel/test_smallpack.py runs both side by
side). Where a numpy routine is not plain arithmetic it is either called as is or
replicated and checked against numpy:

- exp: numpy's SIMD exp and math.exp differ in the last bit on about 5 % of
  arguments, so every exp is np.exp (on a list or a Python float: the same inner loop
  as on the vectorized engine's arrays, which the tests check);
- np.interp, np.clip, np.sign, np.max and np.sum's pairwise summation: replicated
  (ScalarTable, _clip, _sign, np_max, pairwise_sum) and tested against numpy;
- NaN: np.interp of NaN may return a table value (on a flat segment, depending on its
  search), which cannot be replicated; the fast path answers None whenever a terminal
  voltage (or an anode potential lookup) is NaN, and the model runs the vectorized engine
  instead (a NaN SOC or OCV always makes the terminal voltage NaN).

Current is positive on discharge.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import NamedTuple

import numpy as np

from cellmodel.circuit import (
    CENTRE_CORRECTION_MIN_DT_S,
    R_GAS_J_MOL_K,
    T_REF_K,
    ZERO_C_K,
    CellParams,
)
from cellmodel.ocv import BranchTable

# Measured (thread CPU time, 2 s steps, this repository's 2-core machine): a scalar step
# costs about 7.5 us plus 1.9 us per cell, a vectorized one 35-45 us whatever the cell count
# up to about 100; they meet near 17 cells (cv_current_A's iterations near 24). 16 is also
# the protocol's largest pack (docs/protocol.md), so every closed-loop pack takes the path.
FAST_PATH_MAX_CELLS = 16
# The anode potential alone (two table lookups per cell, no exp) stays with numpy from here:
# 4 us whatever the count against 0.7 us plus 0.27 us per cell on floats.
ANODE_FAST_MAX_CELLS = 12
# np.exp on a list costs about 0.8 us plus 0.02 us per value, on one Python float about 0.1 us.
_EXP_BATCH_MIN = 6
_np_exp = np.exp
_T25_DEGC = T_REF_K - ZERO_C_K


def _exp_all(args: list[float]) -> list[float]:
    """np.exp of each argument, as Python floats."""
    if len(args) < _EXP_BATCH_MIN:
        return [float(_np_exp(a)) for a in args]
    return _np_exp(args).tolist()


def _clip(x: float, lo: float, hi: float) -> float:
    """np.clip of one float (keeps -0.0 at lo = 0.0 and NaN, as numpy does)."""
    return lo if x < lo else (hi if x > hi else x)


def _sign(x: float) -> float:
    """np.sign of one float (0.0 for both zeros, NaN for NaN)."""
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else (0.0 if x == 0.0 else x))


def _h_per_cell(h: list[float], cells: list[float], decay: list[float]) -> list[float]:
    """Hysteresis under per-cell currents: s + (h - s) decay with s = np.sign(i)."""
    out: list[float] = []
    for hk, i, d in zip(h, cells, decay, strict=True):
        s = _sign(i)
        out.append(s + (hk - s) * d)
    return out


def np_max(values: list[float]) -> float:
    """np.max of a list: NaN when any value is NaN."""
    for v in values:
        if v != v:
            return v
    return max(values)


def _pairwise(a: list[float], start: int, n: int) -> float:
    # numpy's pairwise_sum (umath loops_utils.h.src): 8 accumulators below 128 values.
    if n < 8:
        res = 0.0
        for k in range(start, start + n):
            res += a[k]
        return res
    if n <= 128:
        r0, r1, r2, r3, r4, r5, r6, r7 = a[start : start + 8]
        k = start + 8
        stop = start + n - n % 8
        while k < stop:
            r0 += a[k]
            r1 += a[k + 1]
            r2 += a[k + 2]
            r3 += a[k + 3]
            r4 += a[k + 4]
            r5 += a[k + 5]
            r6 += a[k + 6]
            r7 += a[k + 7]
            k += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while k < start + n:
            res += a[k]
            k += 1
        return res
    half = n // 2
    half -= half % 8
    return _pairwise(a, start, half) + _pairwise(a, start + half, n - half)


def pairwise_sum(values: list[float]) -> float:
    """float(np.sum(values)) of a list of floats, bit for bit (numpy adds its sum to 0.0)."""
    return 0.0 + _pairwise(values, 0, len(values))


class ScalarTable:
    """BranchTable.lookup (np.interp) and BranchTable.slope on one Python float at a time."""

    def __init__(self, table: BranchTable) -> None:
        x = table.x.tolist()
        self.x = x
        self.mid = table.mid.tolist()
        self.half = table.half.tolist()
        self.last = len(x) - 1
        # np.interp's slope of segment j: (y[j+1] - y[j]) / (x[j+1] - x[j]).
        self.s_mid = [(self.mid[j + 1] - self.mid[j]) / (x[j + 1] - x[j]) for j in range(self.last)]
        self.s_half = [
            (self.half[j + 1] - self.half[j]) / (x[j + 1] - x[j]) for j in range(self.last)
        ]

    def _segment(self, x: float) -> tuple[int, float | None]:
        """(j, x - x_j) inside segment j, or (j, None) on breakpoint j or beyond an end, where
        np.interp takes the table's value itself."""
        j = bisect_right(self.x, x) - 1
        if j < 0:
            return 0, None
        if j < self.last and self.x[j] != x:
            return j, x - self.x[j]
        return j, None

    def value(self, x: float, h: float | None) -> float:
        """mid(x) + h half(x) (h None: mid(x)); NaN for NaN (np.interp may differ there)."""
        if x != x:
            return x
        j, dx = self._segment(x)
        if dx is not None:
            m = self.s_mid[j] * dx + self.mid[j]
            return m if h is None else m + h * (self.s_half[j] * dx + self.half[j])
        m = self.mid[j]
        return m if h is None else m + h * self.half[j]

    def half_at(self, x: float) -> float:
        """BranchTable.half_at: half(x) alone (np.interp)."""
        if x != x:
            return x
        j, dx = self._segment(x)
        return self.half[j] if dx is None else self.s_half[j] * dx + self.half[j]

    def slope(self, x: float, h: float) -> float:
        """BranchTable.slope: d value / dx of the segment holding x, 0 outside the table."""
        j = min(max(bisect_right(self.x, x) - 1, 0), self.last - 1)
        if not self.x[0] <= x <= self.x[-1]:
            return 0.0
        dx = self.x[j + 1] - self.x[j]
        s_mid = (self.mid[j + 1] - self.mid[j]) / dx
        s_half = (self.half[j + 1] - self.half[j]) / dx
        return s_mid + h * s_half


class CellState(NamedTuple):
    """The dynamic state the step reads, one Python float per cell."""

    soc: list[float]
    h: list[float]
    v1: list[float]
    v2: list[float]
    temp_degC: list[float]


class Ambient(NamedTuple):
    """What the step needs from the model besides the state.

    arrhenius: the fixed resistance factors (R0, R1, R2) of isothermal cells, else None
    (each cell's come from its temperature); a_th: exp(-dt hA / (m c)) of this step.
    """

    degC: float
    arrhenius: tuple[float, float, float] | None
    a_th: float


class Advanced(NamedTuple):
    """The state after a step (lists over cells); h or temp_degC None: unchanged."""

    soc: list[float]
    v1: list[float]
    v2: list[float]
    h: list[float] | None
    temp_degC: list[float] | None
    ocv_V: list[float]
    v_V: list[float]
    cell_current_A: list[float]
    r0_ohm: list[float]
    pack_v_V: float


class SmallPack:
    """The per-cell parameters as Python floats and the scalar step, CV slope and anode
    potential of PackModel for packs of up to FAST_PATH_MAX_CELLS cells."""

    def __init__(self, params: CellParams) -> None:
        c = params.circuit
        self.params = params
        self.c = c
        self.n_cells = int(params.r0_ohm.size)
        self.r0 = params.r0_ohm.tolist()
        self.r1 = params.r1_ohm.tolist()
        self.r2 = params.r2_ohm.tolist()
        self.inv_q = params.inv_q_As.tolist()
        self.util_per_soc = params.util_per_soc.tolist()
        self.hysteresis = params.hysteresis
        self.ocv = ScalarTable(params.ocv)
        self.anode = ScalarTable(params.anode)
        self._decay_key = -1.0
        self._decay: list[float] = []

    # ----- the step -------------------------------------------------------------
    # Three passes over the cells with one np.exp call between them; per-cell values
    # travel as plain tuples (a NamedTuple per cell would cost more than the arithmetic).
    def advance(
        self,
        s: CellState,
        current_A: float,
        dt_s: float,
        bleed_A: list[float] | None,
        amb: Ambient,
        arrhenius: list[tuple[float, float, float]] | None = None,
    ) -> Advanced | None:
        """PackModel._advance on Python floats; None when a result is NaN.

        arrhenius: each cell's resistance factors at its present temperature when the
        caller has them already (CV iterations), else computed here.
        """
        n = self.n_cells
        i_series = float(current_A)
        cells = [i_series] * n if bleed_A is None else [i_series + b for b in bleed_A]
        mids, args = self._mid_step(s, cells, dt_s)
        if arrhenius is None and amb.arrhenius is None:
            args += self._arrhenius_args(s.temp_degC)
        per_cell_h = bleed_A is not None and bool(self.params.gamma)
        if per_cell_h:
            g = -self.params.gamma * dt_s
            args += [g * abs(i) * q for i, q in zip(cells, self.inv_q, strict=True)]
        e = _exp_all(args)
        if arrhenius is None:
            arrhenius = self._arrhenius_from(e, n, amb)
        rcs, z = self._rc(mids, e, arrhenius, dt_s)
        a = _exp_all(z)
        if per_cell_h:
            h_n = _h_per_cell(s.h, cells, e[len(e) - n :])
        else:
            h_n = self._h_series(s.h, i_series, dt_s)
        return self._end(s, cells, mids, rcs, a, h_n, amb, dt_s)

    def _mid_step(self, s: CellState, cells: list[float], dt_s: float) -> tuple[list, list[float]]:
        """Pass 1: coulomb count and mid-step SOC shapes (circuit.mid_step_shapes), and the
        exp arguments of the low-SOC rise. Per cell (i, d_soc, soc_end, soc_mid, x, y, shape0)."""
        c = self.c
        ce = c.coulombic_efficiency
        curv = c.soc_curvature
        neg_inv_w = -1.0 / c.low_soc_width
        mids = []
        args: list[float] = []
        for i, soc, q in zip(cells, s.soc, self.inv_q, strict=True):
            d = ((ce if i < 0 else 1.0) * dt_s) * i * q
            soc_mid = soc - 0.5 * d
            x = 0.0 if soc_mid < 0.0 else (1.0 if soc_mid > 1.0 else soc_mid)  # _clip
            y = 2.0 * x - 1.0
            mids.append((i, d, soc - d, soc_mid, x, y, 1.0 + curv * y * y))
            args.append(x * neg_inv_w)
        return mids, args

    def _arrhenius_args(self, temps: list[float]) -> list[float]:
        """CellParams.arrhenius's exp arguments, three per cell (R0, R1, R2)."""
        c = self.c
        ea0, ea1, ea2 = c.ea_r0_J_mol, c.ea_r1_J_mol, c.ea_r2_J_mol
        inv_tref = 1.0 / T_REF_K
        inv_rg = 1.0 / R_GAS_J_MOL_K
        out: list[float] = []
        for t in temps:
            u = (1.0 / (t + ZERO_C_K) - inv_tref) * inv_rg
            out += (ea0 * u, ea1 * u, ea2 * u)
        return out

    def _arrhenius_from(
        self, e: list[float], start: int, amb: Ambient
    ) -> list[tuple[float, float, float]]:
        if amb.arrhenius is not None:
            return [amb.arrhenius] * self.n_cells
        return [(e[k], e[k + 1], e[k + 2]) for k in range(start, start + 3 * self.n_cells, 3)]

    def arrhenius(self, temps: list[float], amb: Ambient) -> list[tuple[float, float, float]]:
        """Each cell's resistance factors (R0, R1, R2) at its temperature."""
        if amb.arrhenius is not None:
            return [amb.arrhenius] * self.n_cells
        return self._arrhenius_from(_exp_all(self._arrhenius_args(temps)), 0, amb)

    def _rc(
        self, mids: list, e: list[float], arrhenius: list[tuple[float, float, float]], dt_s: float
    ) -> tuple[list, list[float]]:
        """Pass 2: the resistances at mid-step SOC and start temperature, and the RC decays'
        exp arguments -z1, -z2. Per cell (rise, arr0, arr1, arr2, r0, k1, k2, z1, z2)."""
        c = self.c
        lsr = c.low_soc_rise
        dt_tau1 = dt_s / c.tau1_s
        dt_tau2 = dt_s / c.tau2_s
        out = []
        z: list[float] = []
        for m, e_rise, (arr0, arr1, arr2), r0 in zip(mids, e, arrhenius, self.r0, strict=False):
            shape0 = m[6]
            rise = lsr * e_rise
            shape12 = shape0 + rise
            k1 = shape12 * arr1
            k2 = shape12 * arr2
            z1 = dt_tau1 / k1
            z2 = dt_tau2 / k2
            out.append((rise, arr0, arr1, arr2, r0 * shape0 * arr0, k1, k2, z1, z2))
            z += (-z1, -z2)
        return out, z

    def _h_series(self, h: list[float], i: float, dt_s: float) -> list[float] | None:
        """Hysteresis under the series current alone (PackModel._hysteresis_after); None:
        unchanged."""
        if not self.params.gamma or i == 0.0:
            return None
        charge = abs(i) * dt_s
        if self._decay_key != charge:
            g = -self.params.gamma * charge
            self._decay = _exp_all([g * q for q in self.inv_q])
            self._decay_key = charge
        s = 1.0 if i > 0 else -1.0
        return [s + (hk - s) * d for hk, d in zip(h, self._decay, strict=True)]

    def _end(
        self,
        s: CellState,
        cells: list[float],
        mids: list,
        rcs: list,
        a: list[float],
        h_n: list[float] | None,
        amb: Ambient,
        dt_s: float,
    ) -> Advanced | None:
        """Pass 3: RC voltages (with the forcing-centre correction of long steps), temperature
        (PackModel._temperature_after), R0 at the end SOC, OCV and terminal voltage."""
        c = self.c
        curv = c.soc_curvature
        curv4 = 4.0 * curv
        inv_w = 1.0 / c.low_soc_width
        centre = dt_s >= CENTRE_CORRECTION_MIN_DT_S
        dudt = c.dUdT_V_K
        thermal = amb.arrhenius is None
        t_amb, a_th = amb.degC, amb.a_th
        inv_hw = 1.0 / c.h_W_K
        keep = 1.0 - a_th
        lookup = self.ocv.value
        hs: list = (s.h if h_n is None else h_n) if self.hysteresis else [None] * self.n_cells
        half_at = self.ocv.half_at
        rows = []
        per_cell = zip(
            mids,
            rcs,
            a[0::2],
            a[1::2],
            s.v1,
            s.v2,
            s.temp_degC,
            s.h,
            hs,
            self.r0,
            self.r1,
            self.r2,
            strict=True,
        )
        for m, rc, a1, a2, v1, v2, t, h0, h, r0k, r1k, r2k in per_cell:
            i, d, soc_end, soc_mid, x, y, _ = m
            rise, arr0, arr1, arr2, r0, k1, k2, z1, z2 = rc
            if centre:
                slope = (curv4 * y - rise * inv_w) * (1.0 if x == soc_mid else 0.0) * d
                k1 = k1 - slope * (0.5 - 1.0 / z1 + a1 / (1.0 - a1)) * arr1
                k2 = k2 - slope * (0.5 - 1.0 / z2 + a2 / (1.0 - a2)) * arr2
            v1_end = a1 * v1 - (1.0 - a1) * (r1k * k1) * i
            v2_end = a2 * v2 - (1.0 - a2) * (r2k * k2) * i
            if thermal:
                heat = i * (i * r0 - 0.5 * (v1 + v1_end + v2 + v2_end) - (t + ZERO_C_K) * dudt)
                if h is not None:  # the hysteresis's loss (PackModel._temperature_after)
                    heat += abs(i) * (0.5 * (h0 * h0 + h * h)) * -half_at(soc_mid)
                t = t_amb + (t - t_amb) * a_th + heat * inv_hw * keep
            x = 0.0 if soc_end < 0.0 else (1.0 if soc_end > 1.0 else soc_end)  # _clip
            y = 2.0 * x - 1.0
            r = r0k * (1.0 + curv * y * y) * arr0
            o = lookup(soc_end, h)
            if dudt:
                o += dudt * (t - _T25_DEGC)
            rows.append((v1_end, v2_end, t, r, o, o - i * r + v1_end + v2_end))
        v1n, v2n, temps, r0_end, ocv, v = map(list, zip(*rows, strict=True))
        pack_v = pairwise_sum(v)
        if pack_v != pack_v:
            return None
        soc = [m[2] for m in mids]
        temp_n = temps if thermal else None
        return Advanced(soc, v1n, v2n, h_n, temp_n, ocv, v, cells, r0_end, pack_v)

    # ----- CV holds -------------------------------------------------------------
    def cv_slope(
        self,
        s: CellState,
        i_series: float,
        dt_s: float,
        bleed_A: list[float],
        arrhenius: list[tuple[float, float, float]],
    ) -> list[float]:
        """PackModel._cv_slope: -dV_end/dI of each cell over the next dt_s."""
        c = self.c
        ce = c.coulombic_efficiency
        curv = c.soc_curvature
        w = c.low_soc_width
        pre: list[tuple[float, float, float]] = []
        for i, soc, q in zip([i_series + b for b in bleed_A], s.soc, self.inv_q, strict=True):
            eta = ce if i < 0 else 1.0
            d = eta * dt_s * i * q
            x = _clip(soc - 0.5 * d, 0.0, 1.0)
            pre.append((eta, d, x))
        rise = _exp_all([-x / w for _, _, x in pre])
        shapes: list[tuple[float, float]] = []
        args1: list[float] = []
        args2: list[float] = []
        for (_, _, x), r, (_, arr1, arr2) in zip(pre, rise, arrhenius, strict=True):
            y = 2 * x - 1
            shape0 = 1.0 + curv * (y * y)  # numpy squares y ** 2 as y * y
            shape12 = shape0 + c.low_soc_rise * r
            shapes.append((shape0, shape12))
            args1.append(-dt_s / (c.tau1_s * shape12 * arr1))
            args2.append(-dt_s / (c.tau2_s * shape12 * arr2))
        a1s = _exp_all(args1)
        a2s = _exp_all(args2)
        out: list[float] = []
        for k, (eta, d, _) in enumerate(pre):
            arr0, arr1, arr2 = arrhenius[k]
            shape0, shape12 = shapes[k]
            d_ocv = self.ocv.slope(s.soc[k] - d, s.h[k] if self.hysteresis else 0.0)
            out.append(
                self.r0[k] * shape0 * arr0
                + (1 - a1s[k]) * self.r1[k] * shape12 * arr1
                + (1 - a2s[k]) * self.r2[k] * shape12 * arr2
                + eta * dt_s * self.inv_q[k] * d_ocv
            )
        return out

    # ----- anode ----------------------------------------------------------------
    def anode_potential_V(
        self, soc: list[float], h: list[float], v: list[float], ocv: list[float]
    ) -> list[float] | None:
        """CellParams.anode_potential_V on Python floats; None when a result is NaN."""
        p = self.params
        x_empty = p.x_empty
        x_per_util = p.x_per_util
        share = p.circuit.anode_polarization_share
        lookup = self.anode.value
        hyst = self.hysteresis
        out: list[float] = []
        for k, soc_k in enumerate(soc):
            x = x_empty + soc_k * self.util_per_soc[k] * x_per_util
            pot = lookup(x, h[k] if hyst else None)
            if pot != pot:
                return None
            out.append(pot - share * (v[k] - ocv[k]))
        return out

"""Each cell's resistance now, and a factor on the design's learned from current steps.

The design gives the DC resistance (R0 + R1 + R2) at 25 degC and mid SOC (r_cell_uohm),
its shape over SOC (r_soc_pct on the OCV tables' ocv_soc_cpct: R1 and R2 rise steeply near
empty), R0 alone (r0_uohm), and their temperature factors (r_temp_pct, r0_temp_pct over
r_temp_ddegC). A real cell differs (spread, ageing, a resistance the datasheet does not
state) by a factor, learned per cell from
current steps: when the current changes by at least C/4 between two samples
at most 2 s apart, at a SOC between 20 and 80 % and a temperature inside the learning
gate, each cell's voltage change over the current change is R0 plus the RC pairs' start
(dt x r_step_uohm_s: the pairs' capacitances, which neither temperature nor ageing
change); that over the design's R0 at the coldest reading is the factor's evidence. The
factor follows the average of the first 16 steps, then moves 1/16 of the way at each,
within 50 .. 400 % of the design's. Why 2 s: the pairs' start is linear only while dt is
short against their time constants (the default cell's first pair 10 s): a step over 2 s
reads the factor 1.1 % low, over 5 s 6.5 % and over 10 s 22 % (a plating limit on an R
that low is optimistic). A board sampling slower never learns it and keeps the bounds
(bounded(); the readings' R at the middle of its span).

Per sample, for each cell: r_dc (the DC resistance: what a steady current drops, for
limits that must hold for minutes and for IR-free readings at rest and full), r0 (the
instant part), r_int (the resistance over one control interval, R0 + the RC pairs' start:
for the voltage limits of the next interval), all in uohm and at most 10 ohm.

Current is positive on discharge.
"""

from array import array

from bms.intmath import interp, muldiv

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:

    def const(x):
        return x


_R_MAX = const(10000000)  # uohm: 10 ohm (keeps I x R a small int)
_STEP_MAX_DT = const(2000)
_STEP_C = const(4)  # a step of at least C/4 teaches the resistance
_WEIGHT = const(16)
_FAC_MIN = const(5000)  # the learned factor's bounds: 50 % .. 400 % of the design, cpct
_FAC_MAX = const(40000)


def ir_of(mA, r_uohm):
    """mA x r_uohm in mV, floored towards 0 and signed as mA (|mA| <= 1e5, 0 <= r_uohm <=
    1e7). Split on the resistance, so that no product passes 2**30 on a 32-bit port (split
    on the current, 999 mA x 10 ohm did): (r // 1000) x mA <= 1e9, (r % 1000) x mA <= 1e8."""
    a = mA if mA >= 0 else -mA
    whole = r_uohm // 1000
    v = (whole * a + (r_uohm - whole * 1000) * a // 1000) // 1000
    return v if mA >= 0 else -v


def i_of(mV, r_uohm):
    """The current in mA that drops mV over r_uohm, signed as mV, floored; mV held to
    -1000..1000 (a headroom beyond a volt allows more than any cell takes, and keeps
    mV x 1e6 a small int). An r_uohm of 0 (r_cell_uohm 0: no IR terms, or a resistance
    scaled by its smallest factors) is taken as 1: any current (it divided by zero)."""
    mV = -1000 if mV < -1000 else (1000 if mV > 1000 else mV)
    return mV * 1000000 // (r_uohm if r_uohm > 0 else 1)


class Resistance:
    def __init__(self, n):
        # learned factor on the design, cpct: _FAC_MIN.._FAC_MAX, an unsigned short
        self.fac = array("H", [10000] * n)
        self.n_ev = 0  # steps learned from
        self.last_mV = array("H", bytes(2 * n))
        self.last_mA = None  # the previous plausible sample's current (None: no step spans it)
        self.r_dc = array("i", bytes(4 * n))
        self.r_int = array("i", bytes(4 * n))
        self.r0 = array("i", bytes(4 * n))
        self.f0 = 100  # R0's temperature factor now, percent
        # cells whose bleed resistor was on as this sample's voltages were read (core.py step
        # sets it, soc.py ir_mV adds their bleed to the IR drop; here, not in the estimator,
        # whose attribute table one more entry grew by 96 B of heap)
        self.bleeding = 0

    def bounded(self, r_uohm):
        """One of this cell's resistances as a safety limit may take it: until a current step
        has taught the resistance (n_ev 0), at its bound, twice the design's (issue 9's aged
        cell), within _R_MAX; as learned afterwards."""
        if self.n_ev:
            return r_uohm
        return r_uohm * 2 if r_uohm < _R_MAX // 2 else _R_MAX

    def tau_pct(self, cfg, n):
        """The RC pairs' time constants now against the design's at 25 degC and mid SOC, in
        percent: their capacitances hold (see above), so they scale with the design's
        resistance over SOC and temperature, the largest cell's (cold, near empty: ten
        times and more). Not with the learned factor: its evidence is mostly R0's, and the
        pairs' time constants are no longer for an R0 that grew (a matrix run at twice the
        resistance read its rests 0.8 % further off with it)."""
        ref = cfg.r_cell_uohm  # the design's r_dc
        r = 0
        for k in range(n):
            f = self.fac[k]
            d = muldiv(self.r_dc[k], 10000, f if f > _FAC_MIN else _FAC_MIN)  # <= 2e7
            if d > r:
                r = d
        return muldiv(r, 100, ref) if ref > 0 else 100

    def ir_mV(self, k, mA):
        """Cell k's DC IR drop at mA (signed as mA)."""
        return ir_of(mA, self.r_dc[k])

    def update(self, cfg, t_ddegC, soc, n, dt_ms):
        """This sample's resistances of n cells at their SOC (cpct) and t_ddegC (the
        coldest reading less the sensor bound; 250 without sensors)."""
        rt = cfg.r_temp_ddegC
        m = len(rt)
        f_dc = interp(rt, cfg.r_temp_pct, m, t_ddegC)
        self.f0 = f0 = interp(rt, cfg.r0_temp_pct, m, t_ddegC)
        r_c = cfg.r_cell_uohm
        xs = cfg.ocv_soc_cpct
        ys = cfg.r_soc_pct
        m = len(xs)
        dt = dt_ms if dt_ms > 100 else 100
        rc = cfg.r_step_uohm_s * dt // 1000  # <= 1e5 x 1e4
        r0 = muldiv(cfg.r0_uohm, f0, 100)
        facs = self.fac
        r_dc = self.r_dc
        r_0 = self.r0
        r_int = self.r_int
        for k in range(n):
            base = muldiv(r_c, interp(xs, ys, m, soc[k]), 100)  # <= 1e6 x 2000 / 100
            if base < 1:
                base = 1
            fac = facs[k]
            r = muldiv(muldiv(base, f_dc, 100), fac, 10000)
            r_dc[k] = r if r < _R_MAX else _R_MAX
            r = muldiv(r0, fac, 10000)
            r = r if r < _R_MAX else _R_MAX
            r_0[k] = r
            r += rc
            r_int[k] = r if r < _R_MAX else _R_MAX

    def learn(self, cfg, cells, n, mA, dt_ms, ok):
        """A sample of plausible cells (ok: its SOC and temperature inside the gates too):
        learn from a current step since the previous one, then remember this one."""
        last_mA = self.last_mA
        d_mA = 0 if last_mA is None else mA - last_mA
        a = d_mA if d_mA >= 0 else -d_mA
        if ok and a >= cfg.capacity_mAh // _STEP_C and dt_ms <= _STEP_MAX_DT:
            # R0 now in 10 uohm (>= 1, config_rules): in 0.1 mohm, a 2.5 mohm R0 at 95 % of
            # it (2.375) was read as 2.3, the factor 3 % high
            expected = muldiv(cfg.r0_uohm, self.f0, 1000)
            rc = cfg.r_step_uohm_s * dt_ms // 1000
            w = self.n_ev + 1 if self.n_ev < _WEIGHT else _WEIGHT
            lo = _FAC_MIN
            hi = _FAC_MAX
            last = self.last_mV
            for k in range(n):
                dv = last[k] - cells[k] if d_mA > 0 else cells[k] - last[k]
                if 0 < dv <= 1000:
                    r = dv * 1000000 // a - rc  # uohm
                    f = muldiv(r, 1000, expected) if r > 0 else 0  # cpct of the design's R0
                    f = lo if f < lo else (hi if f > hi else f)
                    self.fac[k] += (f - self.fac[k]) // w
            if self.n_ev < 65535:
                self.n_ev += 1
        for k in range(n):
            self.last_mV[k] = cells[k]
        self.last_mA = mA

"""Per sample: each cell's anode utilization and potential, the window bounds, CCL and DCL.

Current is positive on discharge; CCL and DCL are magnitudes (mA): the largest charge and
discharge current the BMS allows now. All per cell, the pack takes the worst.

Utilization (dmAhg). A cell's count q over the anode mass is its utilization if it lost
capacity as lithium (fade); if it lost electrode (a smaller cell than the design, its
anode mass shrunk with it) the utilization is its SOC times the design's utilization at
full (util_full = capacity / anode mass). The firmware cannot tell which, so it takes the
larger. The window top's bound uses the count plus k x its credible half-width
(window_k_pct) plus the branch interval's reach up (soc.py). While charging on the known
charge branch the voltage bounds it too, whatever the capacity: the OCV is at most the
cell voltage less the least IR drop it can have (half of its R0: the RC pairs only add to
the drop), plus the table's uncertainty (ocv_unc_mV) and the hysteresis' rest; the
charge-branch SOC of that is an upper bound. The window top's bound is the lower of the
two, and the charge stops when the fullest cell's reaches window_top_dmAhg. At the voltage
limit (CV) the limit itself decides: the bound is the nominal reading there (the OCV table
puts SOC 1 at v_max, so a window top at the design's full utilization is the voltage
limit's to keep), and below it the bound is capped at the reading just below v_max (the
table's uncertainty would otherwise read that top 20 mV early: a slow charge stopped
short of CV). The bound rises only while charge flows: at rest or on discharge it keeps
the lowest value it had since (the utilization cannot grow without charge, and a rested
cell at full is no reason to open CHG); under a charge within rest_current_mA (a rest's
noise, or a trickle) the voltage may raise it but not lower it.

The bottom's bound: discharge stops at the window bottom only when the estimate is
confident, i.e. the cell's count is at the bottom and the upper end of its credible
interval (count + half-width + the branch interval's reach up) lies within
5 % of capacity above it. The bound is the count plus what that upper
end holds beyond the slack: an unsure cell (half-width above the slack, a boot without
state with the branch unknown) keeps its bound above the bottom and the voltage limits
decide, so no cell that may hold more than the slack of usable charge is ever cut.

Anode potential (mV vs Li, the cell nearest plating): the silicon curve of the branch
(anode_lith_mV when lithiating, anode_delith_mV when delithiating, against
anode_util_dmAhg) at the cell's utilization, less anode_share_pct of the cell's
overpotential (its voltage less the OCV of that branch at its SOC). With the branch
unknown, the lower of the two. For the limit, unless the cell is known to sit on the
discharge branch (delithiated: a charge pulse starts from the higher curve), the
lithiation curve at u_anode (the count's utilization or the nominal voltage reading's,
whichever is higher; the window top's bound when the charge branch is not known) and the
DC IR drop of the present current as the overpotential (a SOC error moves the OCV the
measured overpotential is read against by 1.5 V per unit near full; the IR drop does not
depend on it). Over the next interval the potential falls by the share of (I_new R_int -
I_now R0): R0 jumps with the current, the RC pairs add at most dt/C.

CCL, each cell's smallest of:
- the anode limit: the current that keeps the potential above anode_min_mV +
  anode_margin_mV over the next interval (_anode: conservative on the SOC and the
  overpotential, unless the cell is known to be delithiated), and never below the current
  that, held, settles it there (the one-step limit takes the RC pairs as settled at the
  present current, which they are not after a change: where R_dc is well above R_int it
  swung between full and 0 from one sample to the next, 0 <-> 11 A on a 20 Ah cell's
  charge). The floor is safe: a current stepped down to it from a one-interval pulse
  leaves the pairs' polarization below the floor's own settled value;
- the voltage limit: v_max (plus the cell-voltage sensor's bound v_sense_mV, so a charger
  holding a true v_max is never throttled by a reading a little high) reached over the
  next interval (interval resistance, at its bound until a current step taught it, as
  the anode limit takes it: with the design's, a cold cell at twice it under 2C pulses
  went 175 mV below v_min, the DCL swinging between 4 A and 1 A);
- the derating table at the coldest and the hottest reading (less / plus the sensor
  bound): cold charging first; a row that raises the limit only 1 degC past its edge
  (_T_HYST), so a probe's noise at an edge does not flicker it (_least: compared with the
  row below, since another term may hold the limit under the row itself).
The caller (core.py) also sets the CCL to 0 from the full calibration (the end of CV at
taper_mA) until a discharge of 5 % releases it (soc.py's full_done).
DCL: v_min (less v_sense_mV) over the next interval and its derating table. A cell already
past its voltage limit gets a limit below the present current (by the excess over the
interval resistance), so a charger or load that keeps to it is held at the limit; OV and UV
trip beyond these aims (ov_mV, uv_mV), for one that does not. Neither is above i_range_mA.
The caller sets a limit to 0 while its switch is blocked.
"""

from array import array

from bms.intmath import interp, of_1e4, step_at
from bms.ocv import CHARGE, DISCHARGE
from bms.resistance import i_of, ir_of

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:

    def const(x):
        return x


_NONE = const(0x3FFFFFFF)
# ddegC: a derating row that raises a limit counts only this far past its edge (_least), 10
# sigma of a probe's noise
_T_HYST = const(10)
_R_LO_PCT = const(50)  # the least resistance a reading under charge assumes: half the learned
# The window bottom trips only when the credible upper end lies within 5 % of capacity above
# it (_cell: cap // 20): issue 9's "no discharge blocked while a cell holds more than 5 %".
# A constant, not a configuration key: a key costs every board heap for the Config's table.


def _util(q_mAs, cap_mAs, mass_mg, util_full):
    """The larger of the count's and the SOC's utilization (see the module docstring), dmAhg.

    The count's: q mAs / 3600 * 10 / (mass mg / 1000) = 25 q / (9 m), its exact floor
    without a product beyond 2**30: with q = a m + r (0 <= r < m), 25 q / m = 25 a + 25 r / m.
    Bounds from the config limits: m >= 10 mg and q < 2**28 mAs give 25 a < 25 * 2**28 / 10
    < 2**30; m <= 1e6 mg gives 25 r < 2.5e7. The callers' q is at most 3 capacities (the
    count, k x its half-width and the reach up): 2.2e8 < 2**28 at the largest capacity.
    """
    if q_mAs <= 0:
        return 0
    a = q_mAs // mass_mg
    u = (a * 25 + (q_mAs - a * mass_mg) * 25 // mass_mg) // 9
    # SOC in cpct, to 0.1 % (q <= 3 cap); q x 10 passes 2**30 above 1.07e8 mAs (cells of
    # 15 Ah and more near full with their uncertainty): there the division comes first
    d = cap_mAs // 1000 + 1
    s = q_mAs * 10 // d if q_mAs < 107374182 else q_mAs // d * 10
    s = s if s < 30000 else 30000
    v = s * util_full // 10000  # <= 30000 x 30000
    return v if v > u else u


class Limits:
    def __init__(self):
        self.util_full = 0  # the design's utilization at SOC 1, dmAhg (update())
        self.util = 0  # the fullest cell's utilization (its count), dmAhg
        self.top = _NONE  # the window top's bound (fullest cell), dmAhg
        self.bottom = 0  # the window bottom's bound (emptiest cell), dmAhg
        self.anode_mV = 0  # the lowest cell's anode potential estimate
        self.ccl_mA = 0
        self.dcl_mA = 0
        self.cell_util = array("H")  # each cell's utilization, dmAhg: the Bms's array

    def update(self, cfg, est, res, ocv, cells, n, cur_mA, t_cold, t_hot, cv):
        """One sample of n plausible cells. cur_mA: the counted current; t_cold/t_hot: the
        coldest and hottest readings with the sensor bound (None: no sensors); cv: charging
        at the voltage limit (max cell >= v_max - full_band_mV). What is the same for every
        cell (the branch, the voltage limits with the sensor's bound) is read once."""
        self.util_full = cfg.capacity_mAh * 10000 // cfg.anode_mass_mg  # <= 2e8
        known = est.known
        chg_known = cur_mA < 0 and known and est.branch == CHARGE
        dsg_known = known and est.branch == DISCHARGE
        dv_mV = cfg.ocv_unc_mV + est.hysteresis_mV() if chg_known else 0
        chg = -cur_mA if cur_mA < 0 else 0
        dsg = cur_mA if cur_mA > 0 else 0
        ccl = cfg.i_range_mA
        dcl = ccl
        if t_cold is not None:
            # a row that would raise a limit above its last value counts only _T_HYST past
            # its edge (the readings that much further out): without it a probe's noise at
            # an edge flickered the limit between rows (a charge at 2 degC, read less the
            # sensor bound at the 0 degC edge: the CCL between 400 mA and 0 every few seconds)
            ccl = _least(ccl, cfg.ccl_temp_ddegC, cfg.ccl_temp_mA, t_cold, t_hot, self.ccl_mA)
            dcl = _least(dcl, cfg.dcl_temp_ddegC, cfg.dcl_temp_mA, t_cold, t_hot, self.dcl_mA)
        prev_top = self.top
        self.top = 0
        self.bottom = _NONE
        self.util = 0
        self.anode_mV = _NONE
        # the sensor's bound: never below a true v_max, never above a true v_min
        v_hi = cfg.v_max_mV + cfg.v_sense_mV
        v_lo = cfg.v_min_mV - cfg.v_sense_mV
        r_int = res.r_int
        cv = chg_known and cv
        for k in range(n):
            mV = cells[k]
            # at its bound until a current step taught it, as for the anode (Resistance.bounded)
            r = res.bounded(r_int[k])
            v = self._cell(
                cfg, est, res, ocv, mV, k, chg, cv, chg_known, dsg_known, dv_mV, prev_top
            )
            if v < ccl:
                ccl = v
            v = chg + i_of(v_hi - mV, r)
            if v < ccl:
                ccl = v
            v = dsg + i_of(mV - v_lo, r)
            if v < dcl:
                dcl = v
        if cur_mA >= 0 and prev_top < self.top:
            self.top = prev_top  # the bound rises only while charge flows (see the docstring)
        self.ccl_mA = ccl if ccl > 0 else 0
        self.dcl_mA = dcl if dcl > 0 else 0

    def _cell(self, cfg, est, res, ocv, mV, k, chg, cv, chg_known, dsg_known, dv_mV, floor):
        """Cell k's utilization, window bounds and anode potential into the pack's; returns
        the current that keeps its anode above anode_min_mV + anode_margin_mV over the next
        interval (the window part first, then the anode's: see below)."""
        uf = self.util_full
        cap = est.learner.cap[k]
        mass = cfg.anode_mass_mg
        q = est.q[k]
        unc = est.unc[k]
        u = _util(q, cap, mass, uf)
        self.cell_util[k] = u if u < 65535 else 65535
        if u > self.util:
            self.util = u
        up = est.ext_up[k]
        # k x unc as of_1e4 (unc <= cap <= 7.2e7: unc x k would pass 2**30)
        top = _util(q + of_1e4(unc, cfg.window_k_pct * 100) + up, cap, mass, uf)
        # the bottom: the count, raised by what the credible upper end holds beyond the
        # slack (an unsure cell's bound stays above the bottom: the voltage limits decide);
        # the slack is 1/20 of the capacity (of_1e4(cap, 500), exactly)
        over = unc + up - cap // 20
        bot = _util(q + over, cap, mass, uf) if over > 0 else u
        if bot < self.bottom:
            self.bottom = bot
        u_anode = top
        if chg_known:
            # the utilization the anode is at, for its potential: the larger of the count's
            # and the nominal reading's (DC IR drop), never above the window top's bound
            read = ocv.soc_ext(CHARGE, mV - ir_of(chg, res.r_dc[k]))
            v = (read if read > 0 else 0) * uf // 10000
            u_anode = v if v > u else u
            # on the known charge branch the voltage bounds the SOC from above: the OCV is at
            # most V less the least IR drop (R0 at half: the RC pairs only add to it),
            # plus the table's and the hysteresis' uncertainty. At the voltage limit (CV) the
            # limit itself decides: the nominal reading with the DC resistance at half. A
            # charge within rest_current_mA is a rest's noise: its reading may raise the bound
            # (a trickle past the top) but not lower it below the last (floor): the relaxed
            # voltage after a charge stopped is the rest correction's to read (read at once,
            # it released a window top the charge had reached, and a charger that ignores the
            # CCL started again 6 s later, into a cell at 84 %, at 3C)
            if cv:
                read = ocv.soc_ext(CHARGE, mV - ir_of(chg, res.r_dc[k] * _R_LO_PCT // 100))
            else:
                r_lo = res.r0[k] * _R_LO_PCT // 100  # <= 1e7 x 100
                x = mV - ir_of(chg, r_lo) + dv_mV
                # at the voltage limit the limit keeps the window (above): a bound there is
                # capped just below it (a C/10 charge of the default cell read its top at
                # 4.178 V, 97.7 %, opened CHG and never reached CV or full)
                v = cfg.v_max_mV - 1
                read = ocv.soc_ext(CHARGE, x if x < v else v)
            v = (read if read > 0 else 0) * uf // 10000
            if chg <= cfg.rest_current_mA and v < floor:
                v = floor
            if v < top:
                top = v
        if top > self.top:
            self.top = top
        if u_anode > top:
            u_anode = top
        # The anode: its estimate, then its limit (the module docstring's "Anode potential")
        au = cfg.anode_util_dmAhg
        na = len(au)
        share = cfg.anode_share_pct
        s = est.soc[k]
        if dsg_known:
            phi = interp(au, cfg.anode_delith_mV, na, u)
            phi -= share * (mV - ocv.mV_at(DISCHARGE, s)) // 100
        else:
            phi = interp(au, cfg.anode_lith_mV, na, u)
            phi -= share * (mV - ocv.mV_at(CHARGE, s)) // 100
            if not est.known:
                d = interp(au, cfg.anode_delith_mV, na, u)
                d -= share * (mV - ocv.mV_at(DISCHARGE, s)) // 100
                if d < phi:
                    phi = d
        if phi < self.anode_mV:
            self.anode_mV = phi
        # Until a current step has taught the resistance, the limit takes it at its bound
        # (Resistance.bounded; with the design's, an aged cell charged at 1C from below the
        # learning gate held 2 A to 4.2 V and its anode reached 45 mV)
        r_dc = res.bounded(res.r_dc[k])
        r0 = res.bounded(res.r0[k])
        r_int = res.bounded(res.r_int[k])
        lim = cfg.anode_min_mV + cfg.anode_margin_mV
        steady = 0
        if not dsg_known:
            phi = interp(au, cfg.anode_lith_mV, na, u_anode)
            # the current that, held, settles the potential at the limit: the floor of the
            # one-step limit below (the module docstring's CCL)
            steady = i_of((phi - lim) * 100 // share, r_dc)
            phi -= share * ir_of(chg, r_dc) // 100
        budget = (phi - lim) * 100 // share
        if chg:
            budget += ir_of(chg, r0)
        v = i_of(budget, r_int)
        return v if v > steady else steady


def _least(limit, ts, ms, t_cold, t_hot, prev):
    """The least of limit and the step table (ts, ms) at both temperatures, read _T_HYST
    further out unless the last limit (prev) was above that: the row below an edge holds
    until the readings are _T_HYST past it, the row above while the limit stays above the
    row below. prev is the final limit, which another term may hold under the row itself,
    so it is compared with the row below: compared with the row, a plating-bound charge
    read at 1 degC was cut to 0 and back every few samples."""
    m = len(ts)
    for h in (_T_HYST, 0):
        v = step_at(ts, ms, m, t_cold - h)
        w = step_at(ts, ms, m, t_hot + h)
        v = v if v < w else w
        if v >= prev:
            break
    return v if v < limit else limit

"""State-of-charge estimator for a silicon anode: counting, hysteresis branch, rest correction.

Current is positive on discharge. The estimate is the counted charge q_mAs
(CoulombCounter) against the learned capacity, with an uncertainty unc_mAs that
grows with counted charge (gain error) and time (offset up to the deadband).

Silicon's OCV keeps a charge/discharge gap at rest, so a voltage reading means
something only on a known branch:
- the branch is the direction of the last current that moved at least
  branch_switch_cpct of capacity (gamma = 40 moves ~95 % of the way in 7.5 % SOC);
  a reversal of more than 1/32 of that makes the branch unknown until it completes;
- after a rest (|I| <= rest_current_mA for rest_time_ms and |dV/dt| of the mean
  cell voltage <= rest_dvdt_uV_s over rest_window_ms) the estimate is blended
  with the OCV reading of the known branch, weighted by both uncertainties;
  with the branch unknown it is only clamped between the two branch readings;
- full-charge reset at the end of the CV taper (max cell >= v_max - full_band,
  charge current <= taper_mA for full_time_ms); empty calibration when the
  minimum cell reaches v_min + empty_band while discharging at <= empty_current_mA.

The SOC scale is the OCV tables': SOC 0 is the discharge-branch OCV at the
anode window bottom, SOC 1 the charge-branch OCV at the window top. The voltage
limits do not sit on it: the cut-off lies below SOC 0 at low rates and the CV end
a little below SOC 1. So both calibrations set the SOC read from their branch at
the IR-free voltage (V + I R, R at SOC 1 (r_full_mohm) or at SOC 0 (r_empty_mohm);
I < 0 on charge), clamped to 0..10000, with an uncertainty that includes the IR
term's error; the rest correction reads the same IR-free OCV. A reading past a
table's end is extended by the end slope and the distance past the end counts as
uncertainty. A rest reading more than 3 sigma from the count replaces it (a wrong
state file, a sensor fault, or a faded capacity: the learning anchor stays, so the
point can teach the capacity). Every calibration point is offered to capacity
learning (capacity.py).

Boot with a persisted state: check_restored() compares it with the first sample's
voltage on the restored branch when the cell is near rest, and takes the voltage if
they are more than boot_check_cpct apart.

Boot without a persisted state: SOC from the first sample's mean cell voltage
(IR-compensated with r_cell_mohm) with the branch unknown. The truth lies
between the charge-branch reading (lower SOC) and the discharge-branch reading;
we take the LOWER one (conservative for remaining charge and for discharge
decisions; on charge the v_max backstop and the full reset correct it) and
report half the gap plus ocv_unc_cpct as the uncertainty.
"""

from bms.intmath import isqrt, of_1e4, ratio_1e4
from bms.ocv import CHARGE, DISCHARGE

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:

    def const(x):
        return x


_CAP_MS = const(0x3FFFFFFF)
# flag bits as in faults.F_* (repeated as consts so they fold at compile time)
_F_RESTING = const(1 << 2)
_F_SOC_FROM_VOLTAGE = const(1 << 6)
_F_BRANCH_KNOWN = const(1 << 3)
_F_BRANCH_DSG = const(1 << 4)
_F_FULL_CAL = const(1 << 7)
_F_EMPTY_CAL = const(1 << 8)
_F_VOLTAGE_CORRECTION = const(1 << 9)


def soc_of(q_mAs, cap_mAs):
    """Signed SOC in cpct of q_mAs (|q| <= 2 cap)."""
    if q_mAs >= 0:
        return ratio_1e4(q_mAs, cap_mAs)
    return -ratio_1e4(-q_mAs, cap_mAs)


def mAs_of(soc_cpct, cap_mAs):
    """Signed charge of soc_cpct (|soc| <= 10000)."""
    if soc_cpct >= 0:
        return of_1e4(cap_mAs, soc_cpct)
    return -of_1e4(cap_mAs, -soc_cpct)


class SocEstimator:
    def __init__(self, cfg, ocv, counter, learner):
        self.cfg = cfg
        self.ocv = ocv
        self.counter = counter
        self.learner = learner
        self.unc_mAs = 0
        self.unc_rem = 0  # mA*ms of uncertainty not yet in unc_mAs
        self.branch = -1  # CHARGE, DISCHARGE or -1: never known
        self.known = False
        self.rev_dir = -1  # direction of the current run (CHARGE/DISCHARGE)
        self.rev_mAs = 0  # charge moved in that run
        self.rest_ms = 0
        self.win_ms = 0
        self.win_mV = 0
        self.dvdt_ok = False
        self.resting = False
        self.rest_done = False
        self.full_ms = 0
        self.full_done = False
        self.empty_done = False
        self.rd_cpct = 0  # the last read()
        self.need_init = True  # no persisted state: initialise from the first sample's voltage
        self.need_check = False  # a restored state: check it against the first sample
        self.flags = 0  # sticky this boot: _F_FULL_CAL, _F_EMPTY_CAL
        self.sample_flags = 0  # resting, branch, correction: this sample

    def init_from_voltage(self, current_mA, mean_mV):
        cfg = self.cfg
        ocv = self.ocv
        cap = self.learner.cap_mAs
        v = mean_mV + current_mA * cfg.r_cell_mohm // 1000
        lo = ocv.soc_at(CHARGE, v)
        hi = ocv.soc_at(DISCHARGE, v)
        self.counter.set_mAs(of_1e4(cap, lo))
        u = (hi - lo) // 2 + cfg.ocv_unc_cpct
        if u > 10000:
            u = 10000
        self.unc_mAs = of_1e4(cap, u)
        self.branch = -1
        self.known = False
        self.need_init = False
        self.flags |= _F_SOC_FROM_VOLTAGE
        self.learner.invalidate()

    def check_restored(self, current_mA, mean_mV):
        """First sample after a restored state: the file may be stale (the cell was charged,
        discharged or swapped while the BMS was off). A cell near rest whose voltage, on
        the restored branch (both branches when it is unknown), puts it further than
        boot_check_cpct from the restored SOC is taken at its voltage. The margin is wide
        because a cell just powered up may not be relaxed yet."""
        self.need_check = False
        cfg = self.cfg
        if current_mA > cfg.rest_current_mA or current_mA < -cfg.rest_current_mA:
            return
        ocv = self.ocv
        cap = self.learner.cap_mAs
        v = mean_mV + current_mA * cfg.r_cell_mohm // 1000
        if self.known:
            lo = ocv.soc_at(self.branch, v)
            hi = lo
        else:
            lo = ocv.soc_at(CHARGE, v)
            hi = ocv.soc_at(DISCHARGE, v)
        est = soc_of(self.counter.q_mAs, cap)
        m = cfg.boot_check_cpct
        if est < lo - m:
            new = lo
        elif est > hi + m:
            new = hi
        else:
            return
        self.counter.set_mAs(mAs_of(new, cap))
        u = (hi - lo) // 2 + m // 2 + cfg.ocv_unc_cpct
        self.unc_mAs = of_1e4(cap, u if u < 10000 else 10000)
        self.learner.invalidate()
        self.flags |= _F_SOC_FROM_VOLTAGE

    def read(self, branch, mV, dv_mV):
        """SOC reading of an IR-free voltage on a known branch: sets self.rd_cpct (extended past
        the table's ends) and returns its uncertainty in cpct, excluding the table floor: the
        SOC span of +-dv_mV, plus the whole distance past an end (real curves steepen there,
        so the cell lies between the extended reading and the end)."""
        ocv = self.ocv
        x = ocv.soc_ext(branch, mV)
        self.rd_cpct = x
        u = (ocv.soc_ext(branch, mV + dv_mV) - ocv.soc_ext(branch, mV - dv_mV)) >> 1
        if x < 0:
            u -= x
        elif x > 10000:
            u += x - 10000
        return u

    def _calibrate(self, branch, u):
        """A full or empty calibration: the last read() (clamped to 0..10000) +- u cpct on
        `branch` becomes the count and a learning point; returns the new uncertainty in mAs."""
        s = self.rd_cpct
        s = 0 if s < 0 else (10000 if s > 10000 else s)
        lrn = self.learner
        lrn.point(self.cfg, s, u)
        cap = lrn.cap_mAs
        self.counter.set_mAs(of_1e4(cap, s))
        self.branch = branch
        self.known = True
        return of_1e4(cap, u if u < 10000 else 10000)

    def gap(self):
        """The sample interval was clamped: charge went uncounted."""
        self.learner.invalidate()
        self.unc_mAs += self.learner.cap_mAs // 100

    def update(self, dt, cur, mean_mV, min_mV, max_mV):
        """One sample: dt in ms (clamped), cur in mA after deadband (positive discharge)."""
        cfg = self.cfg
        c = self.counter
        lrn = self.learner
        cap = lrn.cap_mAs
        c.add(cur, dt)
        dq = c.dq_mAs
        lrn.count(dq)
        q = c.q_mAs
        if q > cap * 2:
            c.set_mAs(cap * 2)
            lrn.invalidate()
        elif q < -cap:
            c.set_mAs(-cap)
            lrn.invalidate()
        sflags = 0

        # uncertainty: gain error on |I| plus the uncounted deadband, per ms
        a = cur if cur >= 0 else -cur
        k = a // 1000
        g = cfg.unc_gain_ppm
        e = k * g // 1000 + (a - k * 1000) * g // 1000000 + cfg.deadband_mA  # <= 1.1e4
        u = self.unc_rem + e * dt  # <= 1.1e8
        w = u // 1000
        self.unc_rem = u - w * 1000
        unc = self.unc_mAs + w
        if unc > cap:
            unc = cap

        # hysteresis branch from the direction of the charge moved
        if cur != 0:
            d = DISCHARGE if cur > 0 else CHARGE
            if d != self.rev_dir:
                self.rev_dir = d
                self.rev_mAs = 0
            m = self.rev_mAs + (dq if dq >= 0 else -dq)
            if m > cap:
                m = cap
            self.rev_mAs = m
            sw = of_1e4(cap, cfg.branch_switch_cpct)
            if d == self.branch:
                if not self.known and m >= sw:
                    self.known = True
            elif m >= sw:
                self.branch = d
                self.known = True
            elif m > sw >> 5:
                self.known = False

        # rest detection on sample time
        if a <= cfg.rest_current_mA:
            r = self.rest_ms + dt
            self.rest_ms = r if r < _CAP_MS else _CAP_MS
            wm = self.win_ms + dt
            if wm >= cfg.rest_window_ms:
                dv = mean_mV - self.win_mV
                if dv < 0:
                    dv = -dv
                if dv > 1000:
                    dv = 1000
                # uV/s test without division: dv mV * 1e6 <= rate uV/s * window ms (both <= 1e9)
                self.dvdt_ok = dv * 1000000 <= cfg.rest_dvdt_uV_s * wm
                self.win_mV = mean_mV
                wm = 0
            self.win_ms = wm
        else:
            self.rest_ms = 0
            self.win_ms = 0
            self.win_mV = mean_mV
            self.dvdt_ok = False
            self.rest_done = False
        resting = self.rest_ms >= cfg.rest_time_ms and self.dvdt_ok
        self.resting = resting

        # full-charge reset at the end of the CV taper: the charge-branch SOC of the
        # IR-free voltage (SOC 1 is the charge-branch OCV at v_max; the taper current still
        # lifts the terminal voltage above the OCV, so the cell is a little below 1 here)
        ocv = self.ocv
        if cur < 0 and -cur <= cfg.taper_mA and max_mV >= cfg.v_max_mV - cfg.full_band_mV:
            f = self.full_ms + dt
            self.full_ms = f if f < _CAP_MS else _CAP_MS
            if f >= cfg.full_time_ms and not self.full_done:
                ir = -cur * cfg.r_full_mohm // 1000  # <= 1e5 mA x 1e3 mohm / 1e3
                # the IR term is known to about half (RC lag, R's SOC and temperature laws)
                u = cfg.full_unc_cpct + self.read(CHARGE, max_mV - ir, ir >> 1)
                unc = self._calibrate(CHARGE, u)
                cap = lrn.cap_mAs
                self.full_done = True
                self.flags |= _F_FULL_CAL
        else:
            self.full_ms = 0
        if self.full_done:
            if c.q_mAs > cap:
                c.set_mAs(cap)  # held at v_max the charge-branch OCV stays below SOC 1
            elif cur > 0 and c.q_mAs < cap - cap // 20:
                self.full_done = False

        # empty calibration at the cut-off under low current: the discharge-branch SOC of
        # the IR-free voltage (the cut-off lies below SOC 0 at low rates; the table's end
        # clamps the reading to 0 there). The counter then follows the cell below 0.
        if (
            cur > 0
            and cur <= cfg.empty_current_mA
            and min_mV <= cfg.v_min_mV + cfg.empty_band_mV
            and not self.empty_done
        ):
            ir = cur * cfg.r_empty_mohm // 1000
            # R rises steeply near empty and in the cold: the whole IR term is uncertain
            u = cfg.empty_unc_cpct + self.read(DISCHARGE, min_mV + ir, ir)
            unc = self._calibrate(DISCHARGE, u)
            cap = lrn.cap_mAs
            self.empty_done = True
            self.flags |= _F_EMPTY_CAL
        if self.empty_done and cur < 0 and c.q_mAs > cap // 20:
            self.empty_done = False

        # voltage correction once per rest, on the same IR-free OCV scale (|I| is small here)
        if resting and not self.rest_done:
            self.rest_done = True
            est = soc_of(c.q_mAs, cap)
            v = mean_mV + cur * cfg.r_cell_mohm // 1000
            if self.known:
                uv = cfg.ocv_unc_cpct + self.read(self.branch, v, cfg.ocv_unc_mV)
                sv = self.rd_cpct
                if uv > 10000:
                    uv = 10000
                uc = ratio_1e4(unc, cap) // 10  # 0.1 % units keep squares <= 1e6
                u10 = uv // 10
                a2 = uc * uc
                b2 = u10 * u10
                d = sv - est
                d = (d if d >= 0 else -d) // 10  # |d| <= 2e4 cpct
                if d * d > 9 * (a2 + b2):
                    # more than 3 sigma apart: the estimate is wrong, not the rested
                    # voltage on a known branch. Either the count started wrong (a wrong
                    # state file: no anchor then) or the capacity it is divided by is (a
                    # faded cell: the charge counted since the anchor is right). So the
                    # anchor stays, and the point below learns the capacity from it.
                    est = sv
                    unc = of_1e4(cap, uv)
                    kpm = 1000
                else:
                    kpm = a2 * 1000 // (a2 + b2) if a2 + b2 > 0 else 0
                    est += (sv - est) * kpm // 1000
                lrn.point(cfg, sv, uv)
                cap = lrn.cap_mAs
                c.set_mAs(mAs_of(est, cap))
                if kpm < 1000:
                    # posterior spread: sqrt(uc^2 (1 - K)), in cpct
                    un = isqrt(a2 * (1000 - kpm) // 1000) * 10
                    unc = of_1e4(cap, un if un > 10 else 10)
                sflags |= _F_VOLTAGE_CORRECTION
            else:
                lo = ocv.soc_at(CHARGE, v)
                hi = ocv.soc_at(DISCHARGE, v)
                if est < lo:
                    c.set_mAs(mAs_of(lo, cap))
                elif est > hi:
                    c.set_mAs(mAs_of(hi, cap))
                half = of_1e4(cap, (hi - lo) // 2 + cfg.ocv_unc_cpct)
                if unc > half:
                    unc = half
        self.unc_mAs = unc

        if resting:
            sflags |= _F_RESTING
        if self.known:
            sflags |= _F_BRANCH_KNOWN
        if self.branch == DISCHARGE:
            sflags |= _F_BRANCH_DSG
        self.sample_flags = sflags | self.flags

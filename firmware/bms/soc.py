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
        self.unc_rem_mAms = 0  # uncertainty not yet in unc_mAs, 0..999 mA*ms
        self.branch = -1  # CHARGE, DISCHARGE or -1: never known
        self.known = False
        self.rev_dir = -1  # direction of the current run (CHARGE/DISCHARGE)
        self.rev_mAs = 0  # charge moved in that run
        self.rest_ms = 0  # time at |I| <= rest_current_mA
        self.window_ms = 0  # time into the dV/dt window
        self.window_mV = 0  # mean cell voltage at the window's start
        self.dvdt_ok = False  # the last full window was flat enough
        self.rest_done = False  # this rest's voltage correction was applied
        self.full_ms = 0  # time in the CV taper's end conditions
        self.full_done = False
        self.empty_done = False
        self.reading_cpct = 0  # the last read()
        self.need_init = True  # no persisted state: initialise from the first sample's voltage
        self.need_check = False  # a restored state: check it against the first sample
        self.flags = 0  # sticky this boot: _F_FULL_CAL, _F_EMPTY_CAL
        self.sample_flags = 0  # resting, branch, correction: this sample

    def init_from_voltage(self, current_mA, mean_mV):
        cfg = self.cfg
        ocv = self.ocv
        cap_mAs = self.learner.cap_mAs
        ocv_mV = mean_mV + current_mA * cfg.r_cell_mohm // 1000
        chg_cpct = ocv.soc_at(CHARGE, ocv_mV)
        dsg_cpct = ocv.soc_at(DISCHARGE, ocv_mV)
        self.counter.set_mAs(of_1e4(cap_mAs, chg_cpct))
        unc_cpct = (dsg_cpct - chg_cpct) // 2 + cfg.ocv_unc_cpct
        if unc_cpct > 10000:
            unc_cpct = 10000
        self.unc_mAs = of_1e4(cap_mAs, unc_cpct)
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
        cap_mAs = self.learner.cap_mAs
        ocv_mV = mean_mV + current_mA * cfg.r_cell_mohm // 1000
        if self.known:
            lo_cpct = ocv.soc_at(self.branch, ocv_mV)
            hi_cpct = lo_cpct
        else:
            lo_cpct = ocv.soc_at(CHARGE, ocv_mV)
            hi_cpct = ocv.soc_at(DISCHARGE, ocv_mV)
        count_cpct = soc_of(self.counter.q_mAs, cap_mAs)
        margin_cpct = cfg.boot_check_cpct
        if count_cpct < lo_cpct - margin_cpct:
            new_cpct = lo_cpct
        elif count_cpct > hi_cpct + margin_cpct:
            new_cpct = hi_cpct
        else:
            return
        self.counter.set_mAs(mAs_of(new_cpct, cap_mAs))
        unc_cpct = (hi_cpct - lo_cpct) // 2 + margin_cpct // 2 + cfg.ocv_unc_cpct
        self.unc_mAs = of_1e4(cap_mAs, unc_cpct if unc_cpct < 10000 else 10000)
        self.learner.invalidate()
        self.flags |= _F_SOC_FROM_VOLTAGE

    def read(self, branch, mV, dv_mV):
        """SOC reading of an IR-free voltage on a known branch: sets self.reading_cpct
        (extended past the table's ends) and returns its uncertainty in cpct, excluding the
        table floor: the SOC span of +-dv_mV, plus the whole distance past an end (real
        curves steepen there, so the cell lies between the extended reading and the end)."""
        ocv = self.ocv
        reading_cpct = ocv.soc_ext(branch, mV)
        self.reading_cpct = reading_cpct
        unc_cpct = (ocv.soc_ext(branch, mV + dv_mV) - ocv.soc_ext(branch, mV - dv_mV)) >> 1
        if reading_cpct < 0:
            unc_cpct -= reading_cpct
        elif reading_cpct > 10000:
            unc_cpct += reading_cpct - 10000
        return unc_cpct

    def _calibrate(self, branch, unc_cpct):
        """A full or empty calibration: the last read() (clamped to 0..10000) +- unc_cpct on
        `branch` becomes the count, its uncertainty and a learning point."""
        soc_cpct = self.reading_cpct
        soc_cpct = 0 if soc_cpct < 0 else (10000 if soc_cpct > 10000 else soc_cpct)
        lrn = self.learner
        lrn.point(self.cfg, soc_cpct, unc_cpct)
        cap_mAs = lrn.cap_mAs
        self.counter.set_mAs(of_1e4(cap_mAs, soc_cpct))
        self.branch = branch
        self.known = True
        self.unc_mAs = of_1e4(cap_mAs, unc_cpct if unc_cpct < 10000 else 10000)

    def gap(self):
        """The sample interval was clamped: charge went uncounted."""
        self.learner.invalidate()
        self.unc_mAs += self.learner.cap_mAs // 100

    # -- one sample, step by step (each a method: a call costs no heap, tests/firmware/
    # test_alloc.py; the running uncertainty lives in self.unc_mAs throughout) ----------
    def update(self, dt_ms, current_mA, mean_mV, min_mV, max_mV):
        """One sample: dt_ms clamped to max_dt_ms, current_mA after the deadband (positive on
        discharge), the cells' mean, minimum and maximum voltage."""
        dq_mAs = self._count(dt_ms, current_mA)
        self._grow_uncertainty(dt_ms, current_mA)
        if current_mA != 0:
            self._track_branch(current_mA, dq_mAs)
        resting = self._detect_rest(dt_ms, current_mA, mean_mV)
        self._full_calibration(dt_ms, current_mA, max_mV)
        self._empty_calibration(current_mA, min_mV)
        sample_flags = 0
        if resting:
            sample_flags = _F_RESTING
            if not self.rest_done:
                self.rest_done = True
                sample_flags |= self._rest_correction(current_mA, mean_mV)
        if self.known:
            sample_flags |= _F_BRANCH_KNOWN
        if self.branch == DISCHARGE:
            sample_flags |= _F_BRANCH_DSG
        self.sample_flags = sample_flags | self.flags

    def _count(self, dt_ms, current_mA):
        """Count the sample's charge into the counter and capacity learning; keep the count
        within -1..2 capacities. Returns the change counted (before the clamp), in mAs."""
        counter = self.counter
        lrn = self.learner
        cap_mAs = lrn.cap_mAs
        counter.add(current_mA, dt_ms)
        dq_mAs = counter.dq_mAs
        lrn.count(dq_mAs)
        q_mAs = counter.q_mAs
        if q_mAs > cap_mAs * 2:
            counter.set_mAs(cap_mAs * 2)
            lrn.invalidate()
        elif q_mAs < -cap_mAs:
            counter.set_mAs(-cap_mAs)
            lrn.invalidate()
        return dq_mAs

    def _grow_uncertainty(self, dt_ms, current_mA):
        """The count's uncertainty grows by the gain error on |I| plus the uncounted deadband,
        per ms; it never exceeds the capacity."""
        cfg = self.cfg
        abs_mA = current_mA if current_mA >= 0 else -current_mA
        whole_A = abs_mA // 1000
        gain_ppm = cfg.unc_gain_ppm
        # split at 1 A so each product stays small: rate <= 1e5 mA x 0.1 + 1000 = 1.1e4 mA
        rate_mA = (
            whole_A * gain_ppm // 1000
            + (abs_mA - whole_A * 1000) * gain_ppm // 1000000
            + cfg.deadband_mA
        )
        total_mAms = self.unc_rem_mAms + rate_mA * dt_ms  # <= 1.1e8
        grown_mAs = total_mAms // 1000
        self.unc_rem_mAms = total_mAms - grown_mAs * 1000
        unc_mAs = self.unc_mAs + grown_mAs
        cap_mAs = self.learner.cap_mAs
        self.unc_mAs = unc_mAs if unc_mAs < cap_mAs else cap_mAs

    def _track_branch(self, current_mA, dq_mAs):
        """The hysteresis branch from the direction of the charge moved (current_mA != 0)."""
        direction = DISCHARGE if current_mA > 0 else CHARGE
        if direction != self.rev_dir:
            self.rev_dir = direction
            self.rev_mAs = 0
        cap_mAs = self.learner.cap_mAs
        moved_mAs = self.rev_mAs + (dq_mAs if dq_mAs >= 0 else -dq_mAs)
        if moved_mAs > cap_mAs:
            moved_mAs = cap_mAs
        self.rev_mAs = moved_mAs
        switch_mAs = of_1e4(cap_mAs, self.cfg.branch_switch_cpct)
        if direction == self.branch:
            if not self.known and moved_mAs >= switch_mAs:
                self.known = True
        elif moved_mAs >= switch_mAs:
            self.branch = direction
            self.known = True
        elif moved_mAs > switch_mAs >> 5:
            self.known = False

    def _detect_rest(self, dt_ms, current_mA, mean_mV):
        """Rest on sample time: |I| <= rest_current_mA for rest_time_ms, and the mean cell
        voltage's |dV/dt| <= rest_dvdt_uV_s over the last full rest_window_ms."""
        cfg = self.cfg
        if -cfg.rest_current_mA <= current_mA <= cfg.rest_current_mA:
            rest_ms = self.rest_ms
            # saturates below 2**30 without forming a larger sum (dt_ms <= 1e4)
            self.rest_ms = rest_ms + dt_ms if rest_ms < _CAP_MS - dt_ms else _CAP_MS
            window_ms = self.window_ms + dt_ms  # < rest_window_ms + dt_ms <= 1.1e5
            if window_ms >= cfg.rest_window_ms:
                dv_mV = mean_mV - self.window_mV
                if dv_mV < 0:
                    dv_mV = -dv_mV
                if dv_mV > 1000:
                    dv_mV = 1000
                # uV/s test without division: dv mV * 1e6 <= rate uV/s * window ms (both <= 1e9)
                self.dvdt_ok = dv_mV * 1000000 <= cfg.rest_dvdt_uV_s * window_ms
                self.window_mV = mean_mV
                window_ms = 0
            self.window_ms = window_ms
        else:
            self.rest_ms = 0
            self.window_ms = 0
            self.window_mV = mean_mV
            self.dvdt_ok = False
            self.rest_done = False
        return self.rest_ms >= cfg.rest_time_ms and self.dvdt_ok

    def _full_calibration(self, dt_ms, current_mA, max_mV):
        """Full-charge reset at the end of the CV taper: the charge-branch SOC of the IR-free
        voltage (SOC 1 is the charge-branch OCV at v_max; the taper current still lifts the
        terminal voltage above the OCV, so the cell is a little below 1 here). Held at full
        while on charge; released by a discharge below 95 %."""
        cfg = self.cfg
        if (
            current_mA < 0
            and -current_mA <= cfg.taper_mA
            and max_mV >= cfg.v_max_mV - cfg.full_band_mV
        ):
            full_ms = self.full_ms
            full_ms = full_ms + dt_ms if full_ms < _CAP_MS - dt_ms else _CAP_MS
            self.full_ms = full_ms
            if full_ms >= cfg.full_time_ms and not self.full_done:
                ir_mV = -current_mA * cfg.r_full_mohm // 1000  # <= 1e5 mA x 1e3 mohm / 1e3
                # the IR term is known to about half (RC lag, R's SOC and temperature laws)
                unc_cpct = cfg.full_unc_cpct + self.read(CHARGE, max_mV - ir_mV, ir_mV >> 1)
                self._calibrate(CHARGE, unc_cpct)
                self.full_done = True
                self.flags |= _F_FULL_CAL
        else:
            self.full_ms = 0
        if self.full_done:
            counter = self.counter
            cap_mAs = self.learner.cap_mAs
            if counter.q_mAs > cap_mAs:
                counter.set_mAs(cap_mAs)  # held at v_max the charge-branch OCV stays below SOC 1
            elif current_mA > 0 and counter.q_mAs < cap_mAs - cap_mAs // 20:
                self.full_done = False

    def _empty_calibration(self, current_mA, min_mV):
        """Empty calibration at the cut-off under low current: the discharge-branch SOC of the
        IR-free voltage (the cut-off lies below SOC 0 at low rates; the table's end clamps the
        reading to 0 there). The counter then follows the cell below 0. Re-armed by a charge
        above 5 %."""
        cfg = self.cfg
        if (
            current_mA > 0
            and current_mA <= cfg.empty_current_mA
            and min_mV <= cfg.v_min_mV + cfg.empty_band_mV
            and not self.empty_done
        ):
            ir_mV = current_mA * cfg.r_empty_mohm // 1000
            # R rises steeply near empty and in the cold: the whole IR term is uncertain
            unc_cpct = cfg.empty_unc_cpct + self.read(DISCHARGE, min_mV + ir_mV, ir_mV)
            self._calibrate(DISCHARGE, unc_cpct)
            self.empty_done = True
            self.flags |= _F_EMPTY_CAL
        if self.empty_done and current_mA < 0 and self.counter.q_mAs > self.learner.cap_mAs // 20:
            self.empty_done = False

    def _rest_correction(self, current_mA, mean_mV):
        """Once per rest, on the IR-free OCV scale (|I| is small here): blend with the reading
        on a known branch, else clamp between the branches' readings. Returns the sample flag
        it earns (_F_VOLTAGE_CORRECTION or 0)."""
        ocv_mV = mean_mV + current_mA * self.cfg.r_cell_mohm // 1000
        if self.known:
            self._correct_on_branch(ocv_mV)
            return _F_VOLTAGE_CORRECTION
        self._clamp_between_branches(ocv_mV)
        return 0

    def _correct_on_branch(self, ocv_mV):
        """Blend the count with the OCV reading of the known branch, weighted by both
        uncertainties (two Gaussian estimates: gain = var_count / (var_count + var_reading),
        posterior spread sqrt(var_count (1 - gain))); more than 3 sigma apart the reading
        replaces the count. The point is offered to capacity learning."""
        cfg = self.cfg
        lrn = self.learner
        cap_mAs = lrn.cap_mAs
        count_cpct = soc_of(self.counter.q_mAs, cap_mAs)
        read_unc_cpct = cfg.ocv_unc_cpct + self.read(self.branch, ocv_mV, cfg.ocv_unc_mV)
        reading_cpct = self.reading_cpct
        if read_unc_cpct > 10000:
            read_unc_cpct = 10000
        # in 0.1 % units the squares stay <= 1e6
        count_unc_pml = ratio_1e4(self.unc_mAs, cap_mAs) // 10
        read_unc_pml = read_unc_cpct // 10
        count_var = count_unc_pml * count_unc_pml
        read_var = read_unc_pml * read_unc_pml
        dist_pml = reading_cpct - count_cpct
        dist_pml = (dist_pml if dist_pml >= 0 else -dist_pml) // 10  # |dist| <= 2e4 cpct
        if dist_pml * dist_pml > 9 * (count_var + read_var):
            # more than 3 sigma apart: the estimate is wrong, not the rested voltage on a
            # known branch. Either the count started wrong (a wrong state file: no anchor
            # then) or the capacity it is divided by is (a faded cell: the charge counted
            # since the anchor is right). So the anchor stays, and the point below learns
            # the capacity from it.
            new_cpct = reading_cpct
            self.unc_mAs = of_1e4(cap_mAs, read_unc_cpct)
            gain_pml = 1000
        else:
            total_var = count_var + read_var
            gain_pml = count_var * 1000 // total_var if total_var > 0 else 0
            new_cpct = count_cpct + (reading_cpct - count_cpct) * gain_pml // 1000
        lrn.point(cfg, reading_cpct, read_unc_cpct)
        cap_mAs = lrn.cap_mAs
        self.counter.set_mAs(mAs_of(new_cpct, cap_mAs))
        if gain_pml < 1000:
            # posterior spread: sqrt(count_unc^2 (1 - gain)), in cpct
            post_cpct = isqrt(count_var * (1000 - gain_pml) // 1000) * 10
            self.unc_mAs = of_1e4(cap_mAs, post_cpct if post_cpct > 10 else 10)

    def _clamp_between_branches(self, ocv_mV):
        """Branch unknown: the cell lies between the charge-branch reading (lower SOC) and the
        discharge-branch one; clamp the count there, and its uncertainty to half the gap."""
        ocv = self.ocv
        cap_mAs = self.learner.cap_mAs
        lo_cpct = ocv.soc_at(CHARGE, ocv_mV)
        hi_cpct = ocv.soc_at(DISCHARGE, ocv_mV)
        count_cpct = soc_of(self.counter.q_mAs, cap_mAs)
        if count_cpct < lo_cpct:
            self.counter.set_mAs(mAs_of(lo_cpct, cap_mAs))
        elif count_cpct > hi_cpct:
            self.counter.set_mAs(mAs_of(hi_cpct, cap_mAs))
        half_mAs = of_1e4(cap_mAs, (hi_cpct - lo_cpct) // 2 + self.cfg.ocv_unc_cpct)
        if self.unc_mAs > half_mAs:
            self.unc_mAs = half_mAs

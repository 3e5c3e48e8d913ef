"""Protections: per-fault debounce on sample time, release thresholds, latching abuse faults.

Current is positive on discharge. A fault trips when its condition has held
for its delay, measured on sample time from the first sample that showed it
(delay 0: at once), and releases when its release condition has held for its
release delay. Faults in faults.LATCHING never release here; only clear().

Readings that say nothing are never taken for good news:
- A cell reading out of its plausible range (cell_valid_min_mV..cell_valid_max_mV)
  feeds no voltage protection: for OV and UV a trip already under way keeps
  running, none starts and none releases (SENSOR_RANGE opens both switches).
- Abuse faults latch only when confirmed: the condition on two plausible samples
  in a row, at least abuse_delay_ms (and 1 ms) of sample time apart, so one
  glitch (a 0 or 65,535 mV reading, a bit error the host's CRC missed) never latches.
- A frozen channel (SENSOR_FROZEN, both switches open): a cell reading bit-identical for
  frozen_ms while current flowed, or the current reading bit-identical for frozen_ms while
  the cells' voltage moved against it (current_frozen). A stuck current sensor would
  otherwise leave the count, and with it the anode window, where it stuck while a charger
  went on filling the cell. The current channel's fault holds until its reading changes.
- A sample with fewer temperature readings than configured (n_temps) is a sensor
  fault (SENSOR_RANGE). The readings it has still trip; no temperature fault
  releases, and one already under way keeps running. The first complete set of
  readings after one that was missing (or after boot) gets no debounce: a sensor
  that drops out every other sample never earns the benefit of the doubt.
Bounds: |current| <= i_range_mA <= 1e5 (clamped by the caller), so the UV IR
compensation current x uv_ir_mohm stays <= 1e8; timers saturate at 2**30 - 1.
"""

from array import array

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:

    def const(x):
        return x


_CAP_MS = const(0x3FFFFFFF)
_CONFIRMED_MS = const(1 << 24)  # a trip timer past every delay limit (600,000 ms); + dt < 2**30
_MAX_CELLS = const(16)
# Fault bits as in faults.py, folded at compile time (tests/firmware/test_fault_consts.py
# checks the copies): a module attribute per bit would cost heap on the chip.
_N_FAULTS = const(19)
_OV = const(1 << 0)
_UV = const(1 << 1)
_OC_CHG = const(1 << 2)
_OC_DSG = const(1 << 3)
_SC = const(1 << 4)
_OT_CHG = const(1 << 5)
_UT_CHG = const(1 << 6)
_OT_DSG = const(1 << 7)
_UT_DSG = const(1 << 8)
_OV_ABUSE = const(1 << 9)
_UV_ABUSE = const(1 << 10)
_WIN_TOP = const(1 << 11)
_WIN_BOTTOM = const(1 << 12)
_SENSOR_RANGE = const(1 << 13)
_SENSOR_FROZEN = const(1 << 14)
_CCL_EXCEEDED = const(1 << 17)
_DCL_EXCEEDED = const(1 << 18)
_LATCHING = const(_SC | _OV_ABUSE | _UV_ABUSE)
_NO_READING = const(1 << 29)  # no current reading yet (outside +-i_range_mA)
_FREE_mV = const(1 << 20)  # a move the reading explains, however large


class Protection:
    def __init__(self):
        self.faults = 0
        self.latched = 0
        self.pending = 0  # trip condition seen, delay running
        self.releasing = 0  # release condition seen, release delay running
        self.t_trip = array("i", bytes(4 * _N_FAULTS))
        self.t_rel = array("i", bytes(4 * _N_FAULTS))
        self.last_mV = array("H", bytes(2 * _MAX_CELLS))
        self.frozen_ms = array("i", bytes(4 * _MAX_CELLS))
        self.t_known = False  # the last sample had every configured temperature reading
        # the current channel's frozen check (current_frozen): its last reading (mA), how
        # long it has read exactly that (ms; -1 the sample it changed), the cells' mean
        # voltage's lowest and highest since (mV), how far it may rise from the one and fall
        # from the other (-1 both once it did: it stays convicted)
        self.ih = array("i", bytes(4 * 6))
        self.ih[0] = _NO_READING
        self.i_frozen = False  # SENSOR_FROZEN for the current channel (the Bms stops counting)

    def clear(self, mask):
        """Drop the latched faults in mask; return them. A fault whose condition persists trips
        again on the next sample that shows it: its confirmation stands (an abuse condition
        seen on two samples needs no new pair)."""
        cleared = self.latched & mask
        self.faults &= ~cleared
        self.latched &= ~cleared
        self.pending |= cleared
        for i in range(_N_FAULTS):
            if cleared & (1 << i):
                self.t_trip[i] = _CONFIRMED_MS
        return cleared

    def _deb(self, i, bit, trip, release, delay, rel_delay, dt):
        if self.faults & bit:
            if self.latched & bit:
                return
            if release:
                if self.releasing & bit:
                    t = self.t_rel[i] + dt
                    if t > _CAP_MS:
                        t = _CAP_MS
                else:
                    self.releasing |= bit
                    t = 0
                if t >= rel_delay:
                    self.faults &= ~bit
                    self.releasing &= ~bit
                else:
                    self.t_rel[i] = t
            else:
                self.releasing &= ~bit
        elif trip:
            if self.pending & bit:
                t = self.t_trip[i] + dt
                if t > _CAP_MS:
                    t = _CAP_MS
            else:
                self.pending |= bit
                t = 0
            if t >= delay:
                self.faults |= bit
                self.pending &= ~bit
                self.releasing &= ~bit
                if bit & _LATCHING:
                    self.latched |= bit
            else:
                self.t_trip[i] = t
        else:
            self.pending &= ~bit

    def _frozen(self, cfg, dt, cells, n, a_mA):
        """True when a cell reading stayed bit-identical for frozen_ms while current flowed.

        Time near v_max does not count: a charger in CV holds the top cell still on purpose.
        """
        flowing = a_mA >= cfg.frozen_min_mA
        cv_mV = cfg.v_max_mV - cfg.full_band_mV
        lim = cfg.frozen_ms
        last = self.last_mV
        fm = self.frozen_ms
        frozen = False
        for k in range(n):
            v = cells[k]
            if v != last[k]:
                last[k] = v
                fm[k] = 0
            elif flowing and v < cv_mV:
                t = fm[k] + dt
                if t > lim:
                    t = lim
                fm[k] = t
                if t >= lim:
                    frozen = True
            elif fm[k] >= lim:
                frozen = True
        return frozen

    def current_frozen(self, cfg, dt, raw_mA, n, b):
        """True when the current reading stayed bit-identical for frozen_ms while the cells'
        mean voltage (at the tables' temperature) moved against it since it last changed:
        rose from its lowest or fell from its highest since then by more than it allows.

        A real current sensor's reading carries noise; one that repeats itself exactly may
        still be right (a noiseless rig, a quiet sensor at rest), so only the cells can convict
        it. Against it: a rise while it reads a discharge or nothing, a fall while it reads a
        charge or nothing (the deadband: nothing), beyond frozen_i_mV plus the relaxation its
        last step can still bring (the step times each cell's DC resistance: the RC pairs
        settling, in the step's direction only). A stuck reading of 0 mA under a charger, of a
        small discharge, or of the last charge current once the charger stopped, each moves
        the cells that way. Readings of implausible cells (SENSOR_RANGE) convict nothing."""
        h = self.ih
        if not cfg.frozen_i_mV:
            return False  # off: the board measures no current
        if raw_mA != h[0]:  # it moved: a hold may start at the next sample
            h[4] = raw_mA - h[0] if h[0] != _NO_READING else 0  # the step, until then
            h[0] = raw_mA
            h[1] = -1  # the hold's allowances are due (a noisy reading never gets that far)
            self.i_frozen = False
            return False
        if h[1] < 0:  # the first sample of a hold
            step = h[4]
            a = step if step >= 0 else -step  # <= 2 x i_range_mA; ir_of takes 1e5
            r = b.res.r_dc
            m = 0  # the cell with the largest resistance relaxes the most
            for k in range(n):
                if r[k] > r[m]:
                    m = k
            ir = b.res.ir_mV(m, a if a < 100000 else 100000)
            db = cfg.deadband_mA
            lim = cfg.frozen_i_mV
            # a discharge (its OCV falls) or a step up (the RC pairs relax down) may lower the
            # voltage; a charge or a step down may raise it
            h[4] = _FREE_mV if raw_mA <= -db else lim + (ir if step < 0 else 0)
            h[5] = _FREE_mV if raw_mA >= db else lim + (ir if step > 0 else 0)
            h[1] = 0
            # the voltage's extremes start here
            h[2] = _FREE_mV
            h[3] = -_FREE_mV
        t = h[1] + dt
        h[1] = t if t < _CAP_MS else _CAP_MS
        if b.cells_ok:
            v = b.mean_cell_mV - b.ocv.shift_mV
            if v < h[2]:
                h[2] = v
            if v > h[3]:
                h[3] = v
            if v - h[2] > h[4] or h[3] - v > h[5]:
                h[4] = -1
                h[5] = -1
        was = self.i_frozen
        self.i_frozen = h[4] < 0 and h[1] >= cfg.frozen_ms
        return self.i_frozen and not was

    def step(self, cfg, dt, cells, n, cur, range_bad, min_mV, max_mV, nt, min_t, max_t, b):
        """Evaluate every protection for one sample; cur is the clamped current (mA), b the
        Bms: its limits.py results of this sample (the window bounds, b.lim) and the CCL and
        DCL it gave with the sample before (b.ccl_mA, b.dcl_mA, not yet replaced)."""
        rel = cfg.release_delay_ms
        chg = -cur if cur < 0 else 0
        dsg = cur if cur > 0 else 0
        a = chg + dsg
        self._voltages(cfg, dt, dsg, min_mV, max_mV, rel)
        orel = cfg.oc_release_ms
        v = cfg.oc_chg_mA
        self._deb(2, _OC_CHG, chg > v, chg <= v, cfg.oc_chg_delay_ms, orel, dt)
        v = cfg.oc_dsg_mA
        self._deb(3, _OC_DSG, dsg > v, dsg <= v, cfg.oc_dsg_delay_ms, orel, dt)
        self._deb(4, _SC, dsg > cfg.sc_mA, False, 0, 0, dt)
        missing = nt < cfg.n_temps
        self._temperatures(cfg, dt, nt, missing, min_t, max_t, rel)
        # The window top: the fullest cell's bound (limits.py). The bottom (0 = SOC 0) trips
        # only when even the emptiest cell's upper bound is there; the UV cut-off opens DSG
        # on its own, and the bottom releases once the bound is back above it by the
        # hysteresis (charging, or a rest correction that finds the cell fuller).
        lim = b.lim
        v = cfg.window_top_dmAhg
        h = cfg.window_hyst_dmAhg
        self._deb(11, _WIN_TOP, lim.top >= v, lim.top <= v - h, 0, 0, dt)
        v = cfg.window_bottom_dmAhg
        self._deb(12, _WIN_BOTTOM, lim.bottom <= v, lim.bottom >= v + h, 0, 0, dt)
        bad = range_bad or missing
        self._deb(13, _SENSOR_RANGE, bad, not bad, cfg.sensor_delay_ms, rel, dt)
        frozen = self._frozen(cfg, dt, cells, n, a) or self.i_frozen
        self._deb(14, _SENSOR_FROZEN, frozen, not frozen, 0, rel, dt)
        # a current above the limit the charger or load was given with the last sample, by
        # 10 % plus cl_margin_mA, for cl_delay_ms
        d = cfg.cl_delay_ms
        v = b.ccl_mA
        v += v // 10 + cfg.cl_margin_mA
        self._deb(17, _CCL_EXCEEDED, chg > v, chg <= v, d, orel, dt)
        v = b.dcl_mA
        v += v // 10 + cfg.cl_margin_mA
        self._deb(18, _DCL_EXCEEDED, dsg > v, dsg <= v, d, orel, dt)

    def _voltages(self, cfg, dt, dsg, min_mV, max_mV, rel):
        """OV, UV and the abuse limits, fed only by a sample whose cell readings are plausible."""
        if min_mV < cfg.cell_valid_min_mV or max_mV > cfg.cell_valid_max_mV:
            p = self.pending
            self._deb(0, _OV, (p & _OV) != 0, False, cfg.ov_delay_ms, rel, dt)
            self._deb(1, _UV, (p & _UV) != 0, False, cfg.uv_delay_ms, rel, dt)
            self.pending &= ~(_OV_ABUSE | _UV_ABUSE)  # the run of plausible samples is broken
            return
        self._deb(0, _OV, max_mV > cfg.ov_mV, max_mV <= cfg.ov_release_mV, cfg.ov_delay_ms, rel, dt)
        uv_mV = min_mV + dsg * cfg.uv_ir_mohm // 1000
        self._deb(1, _UV, uv_mV < cfg.uv_mV, min_mV >= cfg.uv_release_mV, cfg.uv_delay_ms, rel, dt)
        # at least 1 ms: the first sample showing abuse only starts the count, the next trips
        ad = cfg.abuse_delay_ms or 1
        self._deb(9, _OV_ABUSE, max_mV > cfg.v_abuse_max_mV, False, ad, 0, dt)
        self._deb(10, _UV_ABUSE, min_mV < cfg.v_abuse_min_mV, False, ad, 0, dt)

    def _temperatures(self, cfg, dt, nt, missing, min_t, max_t, rel):
        """OT/UT for charge and discharge; `missing`: fewer readings than configured."""
        if nt == 0 and not missing:
            # no sensor configured and none sent: no temperature protection to run
            self.faults &= ~(_OT_CHG | _UT_CHG | _OT_DSG | _UT_DSG)
            self.pending &= ~(_OT_CHG | _UT_CHG | _OT_DSG | _UT_DSG)
            return
        if missing:
            # unknown is not cool: what the readings present show may trip, a trip under
            # way keeps running, nothing releases
            self.t_known = False
            p = self.pending
            have = nt > 0
            lim = cfg.t_chg_max_ddegC
            td = cfg.t_delay_ms
            self._deb(5, _OT_CHG, (have and max_t > lim) or (p & _OT_CHG) != 0, False, td, rel, dt)
            lim = cfg.t_chg_min_ddegC
            self._deb(6, _UT_CHG, (have and min_t < lim) or (p & _UT_CHG) != 0, False, td, rel, dt)
            lim = cfg.t_dsg_max_ddegC
            self._deb(7, _OT_DSG, (have and max_t > lim) or (p & _OT_DSG) != 0, False, td, rel, dt)
            lim = cfg.t_dsg_min_ddegC
            self._deb(8, _UT_DSG, (have and min_t < lim) or (p & _UT_DSG) != 0, False, td, rel, dt)
            return
        # the first complete readings after a gap in them (or after boot) trip at once
        td = cfg.t_delay_ms if self.t_known else 0
        self.t_known = True
        h = cfg.t_hyst_ddegC
        lim = cfg.t_chg_max_ddegC
        self._deb(5, _OT_CHG, max_t > lim, max_t <= lim - h, td, rel, dt)
        lim = cfg.t_chg_min_ddegC
        self._deb(6, _UT_CHG, min_t < lim, min_t >= lim + h, td, rel, dt)
        lim = cfg.t_dsg_max_ddegC
        self._deb(7, _OT_DSG, max_t > lim, max_t <= lim - h, td, rel, dt)
        lim = cfg.t_dsg_min_ddegC
        self._deb(8, _UT_DSG, min_t < lim, min_t >= lim + h, td, rel, dt)

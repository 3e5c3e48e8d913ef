"""Protections: per-fault debounce on sample time, release thresholds, latching abuse faults.

Current is positive on discharge. A fault trips when its condition has held
for its delay, measured on sample time from the first sample that showed it
(delay 0: at once), and releases when its release condition has held for its
release delay. Faults in faults.LATCHING never release here; only clear().
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
_MAX_CELLS = const(16)
# Fault bits as in faults.py, folded at compile time (tests/firmware/test_fault_consts.py
# checks the copies): a module attribute per bit would cost heap on the chip.
_N_FAULTS = const(17)
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
_LATCHING = const(_SC | _OV_ABUSE | _UV_ABUSE)


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

    def clear(self):
        """Drop the latched faults (they re-trip if their condition persists); return them."""
        cleared = self.latched
        self.faults &= ~cleared
        self.latched = 0
        self.pending &= ~cleared
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

    def step(self, cfg, dt, cells, n, cur, range_bad, min_mV, max_mV, nt, min_t, max_t, util):
        """Evaluate every protection for one sample; cur is the clamped current (mA)."""
        rel = cfg.release_delay_ms
        chg = -cur if cur < 0 else 0
        dsg = cur if cur > 0 else 0
        a = chg + dsg
        self._deb(0, _OV, max_mV > cfg.ov_mV, max_mV <= cfg.ov_release_mV, cfg.ov_delay_ms, rel, dt)
        uv_mV = min_mV + dsg * cfg.uv_ir_mohm // 1000
        self._deb(1, _UV, uv_mV < cfg.uv_mV, min_mV >= cfg.uv_release_mV, cfg.uv_delay_ms, rel, dt)
        orel = cfg.oc_release_ms
        lim = cfg.oc_chg_mA
        self._deb(2, _OC_CHG, chg > lim, chg <= lim, cfg.oc_chg_delay_ms, orel, dt)
        lim = cfg.oc_dsg_mA
        self._deb(3, _OC_DSG, dsg > lim, dsg <= lim, cfg.oc_dsg_delay_ms, orel, dt)
        self._deb(4, _SC, dsg > cfg.sc_mA, False, 0, 0, dt)
        if nt > 0:
            h = cfg.t_hyst_ddegC
            td = cfg.t_delay_ms
            lim = cfg.t_chg_max_ddegC
            self._deb(5, _OT_CHG, max_t > lim, max_t <= lim - h, td, rel, dt)
            lim = cfg.t_chg_min_ddegC
            self._deb(6, _UT_CHG, min_t < lim, min_t >= lim + h, td, rel, dt)
            lim = cfg.t_dsg_max_ddegC
            self._deb(7, _OT_DSG, max_t > lim, max_t <= lim - h, td, rel, dt)
            lim = cfg.t_dsg_min_ddegC
            self._deb(8, _UT_DSG, min_t < lim, min_t >= lim + h, td, rel, dt)
        else:
            self.faults &= ~(_OT_CHG | _UT_CHG | _OT_DSG | _UT_DSG)
        ad = cfg.abuse_delay_ms
        self._deb(9, _OV_ABUSE, max_mV > cfg.v_abuse_max_mV, False, ad, 0, dt)
        self._deb(10, _UV_ABUSE, min_mV < cfg.v_abuse_min_mV, False, ad, 0, dt)
        lim = cfg.window_top_dmAhg
        self._deb(11, _WIN_TOP, util >= lim, util <= lim - cfg.window_hyst_dmAhg, 0, 0, dt)
        # The window bottom (0 = SOC 0) and the UV cut-off each open DSG on their own;
        # the bottom releases once the counted utilization is back above it by the
        # hysteresis (charging, or a rest correction that finds the cell fuller).
        lim = cfg.window_bottom_dmAhg
        up = lim + cfg.window_hyst_dmAhg
        self._deb(12, _WIN_BOTTOM, util <= lim, util >= up, 0, 0, dt)
        sd = cfg.sensor_delay_ms
        self._deb(13, _SENSOR_RANGE, range_bad, not range_bad, sd, rel, dt)
        frozen = self._frozen(cfg, dt, cells, n, a)
        self._deb(14, _SENSOR_FROZEN, frozen, not frozen, 0, rel, dt)

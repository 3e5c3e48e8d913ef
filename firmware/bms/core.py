"""Bms: one sample in, every decision out, no heap allocation per sample.

Composes the coulomb counter, the SOC estimator, capacity learning, the
protections, balancing, the fault log and persistence. The decision for a
sample (switches, faults, balancing) is computed from that same sample, so
the STATE reply to a SAMPLE carries it. Debounce and integration use sample
time (dt_ms from the caller). Current is positive on discharge everywhere.

The per-sample work runs under micropython.heap_lock(): any allocation there
would raise, and the VM keeps large call frames on the C stack instead of the
heap. Rare events that allocate (a changed configuration, a state-file write)
run outside the lock.
"""

from bms import forget
from bms.balancing import Balancer
from bms.capacity import CapacityLearner
from bms.config import write_json_atomic
from bms.coulomb import CoulombCounter
from bms.faultlog import FaultLog
from bms.ocv import OcvTables
from bms.protection import Protection
from bms.soc import SocEstimator, soc_of

try:
    from micropython import const, heap_lock, heap_unlock  # pyright: ignore
except ImportError:

    def const(x):
        return x

    def heap_lock():
        return 0

    def heap_unlock():
        return 0


_CAP_MS = const(0x3FFFFFFF)
_NO_TEMP = const(-32768)

# Bits as in faults.py, folded at compile time (tests/firmware/test_fault_consts.py checks
# the copies): a module attribute per bit would cost heap on the chip.
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
_LINK_LOST = const(1 << 15)
_CONFIG = const(1 << 16)
_BOTH = const(_SC | _OV_ABUSE | _UV_ABUSE | _SENSOR_RANGE | _SENSOR_FROZEN | _LINK_LOST | _CONFIG)
_BLOCKS_CHG = const(_OV | _OC_CHG | _OT_CHG | _UT_CHG | _WIN_TOP | _BOTH)
_BLOCKS_DSG = const(_UV | _OC_DSG | _OT_DSG | _UT_DSG | _WIN_BOTTOM | _BOTH)
_LATCHING = const(_SC | _OV_ABUSE | _UV_ABUSE)
_W_SOC_UNCERTAIN = const(1 << 0)
_W_BRANCH_UNKNOWN = const(1 << 1)
_W_STATE_DEFAULTS = const(1 << 2)
_W_BALANCING = const(1 << 3)
_W_NEAR_WINDOW_TOP = const(1 << 4)
_F_CHG_ON = const(1 << 0)
_F_DSG_ON = const(1 << 1)
_F_TIME_GAP = const(1 << 10)
_BOOT_STATE_RESTORED = const(1 << 0)
_BOOT_STATE_CORRUPT = const(1 << 2)
_BOOT_CONFIG_DEFAULTS = const(1 << 3)
_BOOT_CONFIG_REJECTED = const(1 << 4)


def anode_dmAhg(q_mAs, mass_mg):
    """Anode utilization in 0.1 mAh/g: q mAs / 3600 * 10 / (mass mg / 1000) = 25 q / (9 m).

    Exact floor without a product beyond 2**30: with q = a m + r (0 <= r < m),
    25 q / m = 25 a + 25 r / m. Bounds from the config limits: m >= 10 mg and
    q < 2**28 mAs give 25 a < 25 * 2**28 / 10 < 2**30; m <= 1e6 mg gives 25 r < 2.5e7.
    """
    if q_mAs <= 0:
        return 0
    a = q_mAs // mass_mg
    r = q_mAs - a * mass_mg
    return (a * 25 + r * 25 // mass_mg) // 9


class Bms:
    def __init__(self, cfg, state_path="bms_state.json"):
        self.cfg = cfg
        self.state_path = state_path
        self.counter = CoulombCounter(cfg.ce_ppm)
        self.learner = CapacityLearner(cfg)
        self.prot = Protection()
        self.bal = Balancer()
        self.log = FaultLog(cfg.fault_log_len)
        self.ocv = OcvTables(cfg.ocv_soc_cpct, cfg.ocv_chg_mV, cfg.ocv_dsg_mV)
        self.est = SocEstimator(cfg, self.ocv, self.counter, self.learner)
        self._cfg_version = -1
        self._configure()

        # results (ints; booleans for the switches)
        self.soc_cpct = 0
        self.soc_unc_cpct = 10000
        self.remaining_mAh = 0
        self.capacity_mAh = 0
        self.anode_util_dmAhg = 0
        self.flags = 0
        self.faults = 0
        self.latched = 0
        self.warnings = 0
        self.balance = 0
        self.cycle_count = 0
        self.samples = 0
        self.current_mA = 0
        self.min_cell_mV = 0
        self.max_cell_mV = 0
        self.mean_cell_mV = 0
        self.max_temp_ddegC = _NO_TEMP
        self.min_temp_ddegC = _NO_TEMP
        self.cap_learn_count = 0
        self.chg_on = False  # nothing is switched on before the first sample is judged
        self.dsg_on = False
        self.gaps = 0
        self.link_lost = False
        self.shut = False
        self.clock_s = 0
        self.clock_ms = 0
        self.save_errors = 0
        self.saves = 0

        # persistence bookkeeping (sample time)
        self.since_save_ms = 0
        self.soc_at_save = 0
        self.save_due = False
        self._logged = 0  # faults as last written to the fault log

        self.boot_flags = cfg.flags & (_BOOT_CONFIG_DEFAULTS | _BOOT_CONFIG_REJECTED)
        self.state_flags = 0
        # storage's checks are needed only now: dropped after use to free their heap
        from bms import storage

        d, sflags = storage.load_state(state_path)
        if d is not None and storage.restore(self, d):
            self.boot_flags |= _BOOT_STATE_RESTORED
        else:
            self.boot_flags |= sflags if d is None else _BOOT_STATE_CORRUPT
            self.state_flags = _W_STATE_DEFAULTS
        del storage
        forget("storage")
        self._outputs()

    # -- configuration ---------------------------------------------------
    def _configure(self):
        """(Re)build what depends on the configuration; runs at start and after cfg.update()."""
        cfg = self.cfg
        self.ocv = OcvTables(cfg.ocv_soc_cpct, cfg.ocv_chg_mV, cfg.ocv_dsg_mV)
        self.counter.set_efficiency(cfg.ce_ppm)
        lrn = self.learner
        design = cfg.capacity_mAh * 3600
        if design != lrn.design_mAs:
            lrn.design_mAs = design
            lrn.cap_mAs = design
            lrn.invalidate()
        self.est.ocv = self.ocv
        if self.log.size != cfg.fault_log_len:
            old = self.log.entries()
            self.log = FaultLog(cfg.fault_log_len)
            self.log.load(old)
        if self._cfg_version >= 0:
            # a configuration accepted over the link is in force: it is no longer the rejected one
            cfg.flags &= ~_BOOT_CONFIG_REJECTED
        self._cfg_version = cfg.version

    # -- the sample ------------------------------------------------------
    def step(self, dt_ms, cell_mV, n_cells, current_mA, temp_ddegC, n_temps):
        """One sample: dt_ms since the previous one (sample time), cell_mV array('H'),
        current_mA positive on discharge, temp_ddegC array('h'). Results in attributes."""
        if self.cfg.version != self._cfg_version:
            self._configure()
        heap_lock()
        try:
            self._step(dt_ms, cell_mV, n_cells, current_mA, temp_ddegC, n_temps)
        finally:
            heap_unlock()
        if self.save_due:
            self.save_due = False
            try:
                self.save()
            except OSError:
                self.save_errors += 1

    def _step(self, dt_ms, cells, n, current_mA, temps, nt):
        cfg = self.cfg
        est = self.est

        # sample clock (raw dt, up to 2**30) and the interval used for integration
        if dt_ms < 0:
            dt_ms = 0
        ms = self.clock_ms + dt_ms
        s = ms // 1000
        self.clock_ms = ms - s * 1000
        self.clock_s += s
        gap = dt_ms > cfg.max_dt_ms
        if gap:
            dt_ms = cfg.max_dt_ms
            if self.gaps < 65535:
                self.gaps += 1
        s = self.samples + 1
        self.samples = s if s <= _CAP_MS else 0

        # readings
        if n < 1:
            return
        range_bad = False
        lo_ok = cfg.cell_valid_min_mV
        hi_ok = cfg.cell_valid_max_mV
        vmin = 65535
        vmax = 0
        vsum = 0
        for k in range(n):
            v = cells[k]
            if v < vmin:
                vmin = v
            if v > vmax:
                vmax = v
            vsum += v
            if v < lo_ok or v > hi_ok:
                range_bad = True
        vmean = vsum // n
        tmin = _NO_TEMP
        tmax = _NO_TEMP
        if nt > 0:
            tmin = 32767
            lo_ok = cfg.temp_valid_min_ddegC
            hi_ok = cfg.temp_valid_max_ddegC
            for k in range(nt):
                t = temps[k]
                if t < tmin:
                    tmin = t
                if t > tmax:
                    tmax = t
                if t < lo_ok or t > hi_ok:
                    range_bad = True
        lim = cfg.i_range_mA
        cur = current_mA
        if cur > lim:
            cur = lim
            range_bad = True
        elif cur < -lim:
            cur = -lim
            range_bad = True
        db = cfg.deadband_mA
        counted = cur if cur >= db or cur <= -db else 0

        # estimation
        if est.need_init:
            est.init_from_voltage(counted, vmean)
        elif est.need_check:
            est.check_restored(counted, vmean)
        if gap:
            est.gap()
        est.update(dt_ms, counted, vmean, vmin, vmax)
        lrn = self.learner
        cap = lrn.cap_mAs
        q = self.counter.q_mAs
        soc = soc_of(q, cap)
        self.soc_cpct = 0 if soc < 0 else (10000 if soc > 10000 else soc)
        unc = soc_of(est.unc_mAs, cap)
        self.soc_unc_cpct = unc if unc < 10000 else 10000
        self.remaining_mAh = q // 3600 if q > 0 else 0
        self.capacity_mAh = cap // 3600
        util = anode_dmAhg(q, cfg.anode_mass_mg)
        self.anode_util_dmAhg = util
        self.cycle_count = lrn.cycle_count
        self.cap_learn_count = lrn.learn_count
        if lrn.learned:
            lrn.learned = False
            self.save_due = True

        # protections, switches, fault log
        prot = self.prot
        prot.step(cfg, dt_ms, cells, n, cur, range_bad, vmin, vmax, nt, tmin, tmax, util)
        self.current_mA = counted
        self.min_cell_mV = vmin
        self.max_cell_mV = vmax
        self.mean_cell_mV = vmean
        self.max_temp_ddegC = tmax
        self.min_temp_ddegC = tmin
        self._decide()

        # balancing
        bits = self.bal.update(cfg, cells, n, vmin, vmax, counted, self.faults, dt_ms)
        self.balance = bits

        # warnings and flags
        w = self.state_flags
        if self.soc_unc_cpct > 500:
            w |= _W_SOC_UNCERTAIN
        if not est.known:
            w |= _W_BRANCH_UNKNOWN
        if bits:
            w |= _W_BALANCING
        top = cfg.window_top_dmAhg
        if util >= top - top // 50:
            w |= _W_NEAR_WINDOW_TOP
        self.warnings = w
        fl = est.sample_flags
        if gap:
            fl |= _F_TIME_GAP
        if self.chg_on:
            fl |= _F_CHG_ON
        if self.dsg_on:
            fl |= _F_DSG_ON
        self.flags = fl

        # persistence, rate-limited on sample time
        t = self.since_save_ms + dt_ms
        self.since_save_ms = t if t < _CAP_MS else _CAP_MS
        if t >= cfg.persist_min_ms:
            ds = self.soc_cpct - self.soc_at_save
            if ds < 0:
                ds = -ds
            if ds >= cfg.persist_dsoc_cpct or t >= cfg.persist_interval_ms:
                self.save_due = True

    def _decide(self):
        """Switches from the fault bits; record fault transitions. No allocation."""
        f = self.prot.faults
        if self.link_lost:
            f |= _LINK_LOST
        if self.cfg.flags & _BOOT_CONFIG_REJECTED:
            f |= _CONFIG
        self.faults = f
        self.latched = self.prot.latched
        self.chg_on = not self.shut and not (f & _BLOCKS_CHG)
        self.dsg_on = not self.shut and not (f & _BLOCKS_DSG)
        old = self._logged
        if f != old:
            log = self.log
            up = f & ~old
            down = old & ~f
            if up:
                log.add(self.clock_s, self.clock_ms, up, True)
                if up & _LATCHING:
                    self.save_due = True
            if down:
                log.add(self.clock_s, self.clock_ms, down, False)
            self._logged = f

    def _outputs(self):
        """Results before the first sample (from the restored or default state)."""
        lrn = self.learner
        cap = lrn.cap_mAs
        q = self.counter.q_mAs
        soc = soc_of(q, cap)
        self.soc_cpct = 0 if soc < 0 else (10000 if soc > 10000 else soc)
        self.soc_unc_cpct = min(soc_of(self.est.unc_mAs, cap), 10000)
        if self.est.need_init:
            self.soc_unc_cpct = 10000
        self.remaining_mAh = q // 3600 if q > 0 else 0
        self.capacity_mAh = cap // 3600
        self.anode_util_dmAhg = anode_dmAhg(q, self.cfg.anode_mass_mg)
        self.cycle_count = lrn.cycle_count
        self.cap_learn_count = lrn.learn_count
        self.soc_at_save = self.soc_cpct
        self.flags = self.est.flags
        self._decide()
        self.chg_on = False
        self.dsg_on = False

    # -- commands from the app -------------------------------------------
    def set_link_lost(self, lost):
        """The app's link watchdog verdict; takes effect on the switches at once."""
        self.link_lost = bool(lost)
        self._decide()
        if self.samples == 0:
            self.chg_on = False
            self.dsg_on = False

    def clear_faults(self):
        """Clear latched faults (they re-trip if their cause persists); return the cleared bits."""
        cleared = self.prot.clear()
        if cleared:
            self._decide()
            if self.samples == 0:
                self.chg_on = False
                self.dsg_on = False
        return cleared

    @property
    def fault_log(self):
        return self.log.entries()

    def state_dict(self):
        est = self.est
        lrn = self.learner
        return {
            "v": 1,  # storage.VERSION
            "q_mAs": self.counter.q_mAs,
            "unc_mAs": est.unc_mAs,
            "cap_mAs": lrn.cap_mAs,
            "cycle_count": lrn.cycle_count,
            "thr_mAs": lrn.thr_mAs,
            "learn_count": lrn.learn_count,
            "anc_ok": 1 if lrn.anchor_ok else 0,
            "anc_cpct": lrn.anchor_cpct,
            "anc_unc_cpct": lrn.anchor_unc_cpct,
            "anc_net_mAs": lrn.net_mAs,
            "branch": est.branch,
            "known": 1 if est.known else 0,
            "clock_s": self.clock_s,
            "fault_log": self.log.entries(),
        }

    def save(self):
        """Write the state file now (atomic); raises OSError if the filesystem refuses."""
        write_json_atomic(self.state_path, self.state_dict())
        self.saves += 1
        self.since_save_ms = 0
        self.soc_at_save = self.soc_cpct

    def shutdown(self):
        """Open both switches and persist (before the REPL or a reset). Never raises."""
        self.shut = True
        self.chg_on = False
        self.dsg_on = False
        self.balance = 0
        try:
            self.save()
        except OSError:
            self.save_errors += 1

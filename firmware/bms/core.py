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

    def _step(self, dt_ms, cell_mV, n_cells, current_mA, temp_ddegC, n_temps):
        """The sample's work, in named steps (a method call costs no heap under heap_lock:
        tests/firmware/test_alloc.py). dt_ms: raw interval, up to 2**30 - 1."""
        cfg = self.cfg
        if dt_ms < 0:
            dt_ms = 0
        self._advance_clock(dt_ms)
        gap = dt_ms > cfg.max_dt_ms
        if gap:  # integrate no more than max_dt_ms, and say so
            dt_ms = cfg.max_dt_ms
            if self.gaps < 65535:
                self.gaps += 1
        if n_cells < 1:
            return

        # readings: extremes, validity, the current clamped to the sensor's range
        range_bad = self._read_cells(cell_mV, n_cells)
        if self._read_temps(temp_ddegC, n_temps):
            range_bad = True
        limit_mA = cfg.i_range_mA
        measured_mA = current_mA
        if measured_mA > limit_mA:
            measured_mA = limit_mA
        elif measured_mA < -limit_mA:
            measured_mA = -limit_mA
        if measured_mA != current_mA:
            range_bad = True
        deadband_mA = cfg.deadband_mA
        counted_mA = measured_mA if measured_mA >= deadband_mA or measured_mA <= -deadband_mA else 0
        self.current_mA = counted_mA

        self._estimate(dt_ms, counted_mA, gap)
        self.prot.step(
            cfg,
            dt_ms,
            cell_mV,
            n_cells,
            measured_mA,
            range_bad,
            self.min_cell_mV,
            self.max_cell_mV,
            n_temps,
            self.min_temp_ddegC,
            self.max_temp_ddegC,
            self.anode_util_dmAhg,
        )
        self._decide()
        self.balance = self.bal.update(
            cfg,
            cell_mV,
            n_cells,
            self.min_cell_mV,
            self.max_cell_mV,
            counted_mA,
            self.faults,
            dt_ms,
        )
        self._set_warnings()
        self._set_flags(gap)
        self._schedule_save(dt_ms)

    def _advance_clock(self, dt_ms):
        """The sample clock (seconds + milliseconds, persisted) and the sample count.
        dt_ms is 0..2**30 - 1; no sum leaves the small-int range (the clock saturates
        after 34 years, the count wraps to 0 after 2**30 - 1)."""
        whole_s = dt_ms // 1000
        ms = self.clock_ms + (dt_ms - whole_s * 1000)
        if ms >= 1000:
            ms -= 1000
            whole_s += 1
        self.clock_ms = ms
        clock_s = self.clock_s
        self.clock_s = clock_s + whole_s if clock_s < _CAP_MS - whole_s else _CAP_MS
        samples = self.samples
        self.samples = samples + 1 if samples < _CAP_MS else 0

    def _read_cells(self, cell_mV, n_cells):
        """Minimum, maximum and mean cell voltage into the outputs; True if a reading lies
        outside the valid range."""
        cfg = self.cfg
        valid_min_mV = cfg.cell_valid_min_mV
        valid_max_mV = cfg.cell_valid_max_mV
        out_of_range = False
        min_mV = 65535
        max_mV = 0
        sum_mV = 0  # <= 16 x 65535
        for k in range(n_cells):
            mV = cell_mV[k]
            if mV < min_mV:
                min_mV = mV
            if mV > max_mV:
                max_mV = mV
            sum_mV += mV
            if mV < valid_min_mV or mV > valid_max_mV:
                out_of_range = True
        self.min_cell_mV = min_mV
        self.max_cell_mV = max_mV
        self.mean_cell_mV = sum_mV // n_cells
        return out_of_range

    def _read_temps(self, temp_ddegC, n_temps):
        """Minimum and maximum temperature into the outputs (_NO_TEMP without sensors); True
        if a reading lies outside the valid range."""
        min_ddegC = _NO_TEMP
        max_ddegC = _NO_TEMP
        out_of_range = False
        if n_temps > 0:
            cfg = self.cfg
            valid_min = cfg.temp_valid_min_ddegC
            valid_max = cfg.temp_valid_max_ddegC
            min_ddegC = 32767
            for k in range(n_temps):
                t_ddegC = temp_ddegC[k]
                if t_ddegC < min_ddegC:
                    min_ddegC = t_ddegC
                if t_ddegC > max_ddegC:
                    max_ddegC = t_ddegC
                if t_ddegC < valid_min or t_ddegC > valid_max:
                    out_of_range = True
        self.min_temp_ddegC = min_ddegC
        self.max_temp_ddegC = max_ddegC
        return out_of_range

    def _estimate(self, dt_ms, counted_mA, gap):
        """The SOC estimator's sample (after the boot-time initialisation or check)."""
        est = self.est
        mean_mV = self.mean_cell_mV
        if est.need_init:
            est.init_from_voltage(counted_mA, mean_mV)
        elif est.need_check:
            est.check_restored(counted_mA, mean_mV)
        if gap:
            est.gap()
        est.update(dt_ms, counted_mA, mean_mV, self.min_cell_mV, self.max_cell_mV)
        self._publish_estimate()
        lrn = self.learner
        if lrn.learned:
            lrn.learned = False
            self.save_due = True

    def _publish_estimate(self):
        """SOC, its uncertainty, remaining charge, capacity, anode utilization and the
        counters into the outputs."""
        lrn = self.learner
        cap_mAs = lrn.cap_mAs
        q_mAs = self.counter.q_mAs
        soc_cpct = soc_of(q_mAs, cap_mAs)
        self.soc_cpct = 0 if soc_cpct < 0 else (10000 if soc_cpct > 10000 else soc_cpct)
        unc_cpct = soc_of(self.est.unc_mAs, cap_mAs)
        self.soc_unc_cpct = unc_cpct if unc_cpct < 10000 else 10000
        self.remaining_mAh = q_mAs // 3600 if q_mAs > 0 else 0
        self.capacity_mAh = cap_mAs // 3600
        self.anode_util_dmAhg = anode_dmAhg(q_mAs, self.cfg.anode_mass_mg)
        self.cycle_count = lrn.cycle_count
        self.cap_learn_count = lrn.learn_count

    def _set_warnings(self):
        warnings = self.state_flags
        if self.soc_unc_cpct > 500:
            warnings |= _W_SOC_UNCERTAIN
        if not self.est.known:
            warnings |= _W_BRANCH_UNKNOWN
        if self.balance:
            warnings |= _W_BALANCING
        top_dmAhg = self.cfg.window_top_dmAhg
        if self.anode_util_dmAhg >= top_dmAhg - top_dmAhg // 50:
            warnings |= _W_NEAR_WINDOW_TOP
        self.warnings = warnings

    def _set_flags(self, gap):
        flags = self.est.sample_flags
        if gap:
            flags |= _F_TIME_GAP
        if self.chg_on:
            flags |= _F_CHG_ON
        if self.dsg_on:
            flags |= _F_DSG_ON
        self.flags = flags

    def _schedule_save(self, dt_ms):
        """Persistence, rate-limited on sample time: after persist_min_ms, once the SOC moved
        persist_dsoc_cpct or persist_interval_ms passed. The write itself runs in step(),
        outside heap_lock."""
        cfg = self.cfg
        since_ms = self.since_save_ms
        # saturates below 2**30 without forming a larger sum (dt_ms <= max_dt_ms <= 1e4)
        since_ms = since_ms + dt_ms if since_ms < _CAP_MS - dt_ms else _CAP_MS
        self.since_save_ms = since_ms
        if since_ms >= cfg.persist_min_ms:
            moved_cpct = self.soc_cpct - self.soc_at_save
            if moved_cpct < 0:
                moved_cpct = -moved_cpct
            if moved_cpct >= cfg.persist_dsoc_cpct or since_ms >= cfg.persist_interval_ms:
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
        self._publish_estimate()
        if self.est.need_init:
            self.soc_unc_cpct = 10000
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

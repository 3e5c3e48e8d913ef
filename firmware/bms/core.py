"""Bms: one sample in, every decision out, no heap allocation per sample.

Composes the current-sensor offset, the coulomb counter, the per-cell SOC
estimator, capacity and resistance learning, the anode potential and the
current limits (CCL/DCL), the protections, balancing, the fault log and
persistence. The decision for a sample (switches, faults, limits, balancing) is
computed from that same sample, so the STATE reply to a SAMPLE carries it.
Debounce and integration use sample time (dt_ms from the caller). Current is
positive on discharge everywhere; CCL and DCL are magnitudes.

A sample with an implausible cell reading (SENSOR_RANGE: an open tap reading 0
mV, a glitch at full scale) feeds nothing that reads voltages: no estimator
step, calibration, resistance learning, limit or balancing; the charge is still
counted and both switches open.

The pack: each cell has its own SOC, uncertainty, capacity and utilization
(soc.py, capacity.py, limits.py); the fullest cell's bound stops charge, the
emptiest cell's stops discharge. The pack SOC reported is the mean of the cells'
SOCs (each cell's charge over its own capacity), its uncertainty the mean of
theirs (the errors are mostly common: the current sensor); remaining_mAh is the
emptiest cell's charge and capacity_mAh the smallest cell's capacity (what the
series pack can deliver).

The per-sample work runs under micropython.heap_lock(): any allocation there
would raise, and the VM keeps large call frames on the C stack instead of the
heap. Rare events that allocate (a changed configuration, a state-file write)
run outside the lock.
"""

import gc
from array import array

from bms import forget
from bms.balancing import Balancer
from bms.capacity import CapacityLearner
from bms.config import write_json_atomic
from bms.coulomb import CoulombCounter
from bms.faultlog import FaultLog
from bms.intmath import muldiv
from bms.limits import Limits
from bms.ocv import CHARGE, OcvTables
from bms.offset import OffsetLearner
from bms.protection import Protection
from bms.resistance import Resistance
from bms.soc import SocEstimator

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
# how far the cells' mean voltage may move its own way after a rest's reading, beyond the
# relaxation it expected, before a learned offset is taken for a load (a few times the
# reading's noise; a 15 mA drain on a 2 Ah cell moves it this far in about 40 minutes)
_DRIFT_MV = const(5)
_WATCH_MS = const(21600000)  # 6 h of a rest: the drift above comes sooner from any load worth it

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
_CCL_EXCEEDED = const(1 << 17)
_DCL_EXCEEDED = const(1 << 18)
_BOTH = const(_SC | _OV_ABUSE | _UV_ABUSE | _SENSOR_RANGE | _SENSOR_FROZEN | _LINK_LOST | _CONFIG)
_BLOCKS_CHG = const(_OV | _OC_CHG | _OT_CHG | _UT_CHG | _WIN_TOP | _CCL_EXCEEDED | _BOTH)
_BLOCKS_DSG = const(_UV | _OC_DSG | _OT_DSG | _UT_DSG | _WIN_BOTTOM | _DCL_EXCEEDED | _BOTH)
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


class Bms:
    def __init__(self, cfg, state_path="bms_state.json"):
        self.cfg = cfg
        self.state_path = state_path
        self.counter = CoulombCounter(cfg.ce_ppm)
        self.offset = OffsetLearner()
        self.lim = Limits()
        self.prot = Protection()
        self.bal = Balancer()
        self.log = FaultLog(cfg.fault_log_len)
        self._n_cells = 0
        self._cfg_version = -1
        self._configure()

        # results (ints; booleans for the switches; per-cell arrays, n_cells in use)
        self.soc_cpct = 0
        self.soc_unc_cpct = 10000
        self.remaining_mAh = 0
        self.capacity_mAh = 0
        self.capacity_unc_cpct = 0
        self.anode_util_dmAhg = 0
        self.anode_mV = -32768  # no estimate before the first plausible sample
        self.ccl_mA = 0
        self.dcl_mA = 0
        self.r_dc_uohm = 0
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
        self.cells_ok = False
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
            if sflags != storage.STATE_MISSING:
                storage.keep_latched(self, state_path)
        del storage
        forget("storage")
        self._logged = self.prot.latched  # restored latched faults were logged when they tripped
        self._outputs()

    # -- configuration ---------------------------------------------------
    def _configure(self):
        """(Re)build what depends on the configuration; runs at start and after cfg.update()."""
        cfg = self.cfg
        self.ocv = OcvTables(cfg.ocv_soc_cpct, cfg.ocv_chg_mV, cfg.ocv_dsg_mV)
        self.counter.set_efficiency(cfg.ce_ppm)
        n = cfg.n_cells
        if n != self._n_cells:
            # other cells: per-cell state of their number, nothing known of them yet
            self._n_cells = n
            self.learner = CapacityLearner(cfg)
            self.res = Resistance(n)
            self.est = SocEstimator(cfg, self.ocv, self.counter, self.learner, self.res)
            # each cell's SOC is the estimator's own short ints (within -1..2 capacities,
            # soc.py): published as they are, not copied
            self.cell_soc_cpct = self.est.soc
            self.cell_util_dmAhg = array("H", bytes(2 * n))
            self.lim.cell_util = self.cell_util_dmAhg
        lrn = self.learner
        if cfg.capacity_mAh * 3600 != lrn.design_mAs:
            lrn.reset(cfg)
            self.est.need_init = True
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
        est = self.est
        # the bleeds the last sample switched on, on as these voltages were read: every
        # reading of a cell, the start's too, adds its bleed's IR drop (soc.py ir_mV)
        self.res.bleeding = self.balance if self.cfg.bal_r_mohm else 0
        if (est.need_init or est.need_check) and n_cells > 0:
            self._read_temps(temp_ddegC, n_temps)  # the OCV's temperature shift for the start
            self._start(cell_mV, n_cells, current_mA)
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

    def _start(self, cell_mV, n, current_mA):
        """The estimator's start on the first plausible sample (startup.py, loaded for it and
        dropped after; outside heap_lock). A heap too crowded to load it leaves the start to
        a later sample; until then the SOC is unknown and CHG stays open (WIN_TOP)."""
        cfg = self.cfg
        for k in range(n):
            if not cfg.cell_valid_min_mV <= cell_mV[k] <= cfg.cell_valid_max_mV:
                return  # not this sample: nothing known from it
        current_mA = self.offset.correct(current_mA)
        self.offset.rem_dmA = 0
        self.res.update(cfg, 250, self.est.soc, n, cfg.max_dt_ms)
        try:
            from bms import startup
        except MemoryError:
            gc.collect()
            try:
                from bms import startup
            except MemoryError:
                return

        if self.est.need_init:
            startup.init_from_voltage(self.est, current_mA, cell_mV, n)
        else:
            startup.check_restored(self.est, current_mA, cell_mV, n)
        del startup
        forget("startup")
        gc.collect()  # the compiler's garbage back in one piece for the frames to come

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
        cells_bad = self._read_cells(cell_mV, n_cells)
        range_bad = self._read_temps(temp_ddegC, n_temps) or cells_bad
        limit_mA = cfg.i_range_mA
        measured_mA = current_mA
        if measured_mA > limit_mA:
            measured_mA = limit_mA
        elif measured_mA < -limit_mA:
            measured_mA = -limit_mA
        if measured_mA != current_mA:
            range_bad = True
        # a frozen current channel (protection.py) is no current: it teaches no offset and
        # counts nothing, and the count it left says nothing (lose())
        prot = self.prot
        if prot.current_frozen(cfg, dt_ms, measured_mA, n_cells, self):
            self.est.lose(n_cells)
        frozen = prot.i_frozen
        # the offset: learned where nothing flows (both switches were open, or a rest)
        off = self.offset
        deadband_mA = cfg.deadband_mA
        if not frozen:
            off.observe(
                cfg,
                measured_mA,
                dt_ms,
                not self.chg_on and not self.dsg_on,
                measured_mA <= -deadband_mA and self.max_cell_mV >= cfg.v_max_mV - cfg.v_sense_mV,
            )
        corrected_mA = off.correct(measured_mA)
        zeroed = -deadband_mA < corrected_mA < deadband_mA
        counted_mA = 0 if zeroed or frozen else corrected_mA
        self.current_mA = counted_mA

        self._estimate(dt_ms, counted_mA, zeroed and corrected_mA != 0, gap, cell_mV, n_cells)
        if self.cells_ok and not self.est.need_init:
            self._limits(dt_ms, counted_mA, cell_mV, n_cells)
        else:
            self.res.last_mA = None  # no current step spans an implausible sample
        self.prot.step(
            cfg,
            dt_ms,
            cell_mV,
            n_cells,
            corrected_mA,
            range_bad,
            self.min_cell_mV,
            self.max_cell_mV,
            n_temps,
            self.min_temp_ddegC,
            self.max_temp_ddegC,
            self,
        )
        self._decide()
        self.balance = 0
        if self.cells_ok:
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
        """Minimum, maximum and mean cell voltage into the outputs, cells_ok; True if a reading
        lies outside the valid range."""
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
        self.cells_ok = not out_of_range
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
        # the OCV tables' shift at the sensors' middle (25 degC without one); <= 1e4 x 3e4
        t = 250 if min_ddegC == _NO_TEMP else (min_ddegC + max_ddegC) >> 1
        self.ocv.shift_mV = (self.cfg.ocv_dudt_uV_K * (t - 250) + 5000) // 10000
        return out_of_range

    def _temp_gate(self):
        """Learning gate: every temperature reading inside learn_t_min..max (no sensor: open)."""
        cfg = self.cfg
        if self.min_temp_ddegC == _NO_TEMP:
            return True
        return (
            self.min_temp_ddegC >= cfg.learn_t_min_ddegC
            and self.max_temp_ddegC <= cfg.learn_t_max_ddegC
        )

    def _estimate(self, dt_ms, counted_mA, zeroed, gap, cells, n):
        """The resistances now, then the SOC estimator's sample (after the boot-time
        initialisation or check, on the first plausible sample)."""
        est = self.est
        t = self.min_temp_ddegC
        t = 250 if t == _NO_TEMP else t - self.cfg.t_sense_ddegC
        self.res.update(self.cfg, t, est.soc, n, dt_ms)
        if est.need_init:
            return  # nothing known yet: no plausible reading since boot
        if gap:
            est.gap(n)
        bits = self.balance  # what the last sample switched on bled over this interval
        r = self.cfg.bal_r_mohm
        if bits and r and self.cells_ok:
            # the charge a bleed resistor drew past the current sensor (V / R x dt; V x dt
            # <= 65535 x 1e4 < 2**30) comes off its cell's count alone, a twentieth of it
            # (the resistor's and its switch's tolerance) into the cell's half-width
            lrn = self.learner
            for k in range(n):
                if bits >> k & 1:
                    mAs = cells[k] * dt_ms // r
                    est.q[k] -= mAs  # the count's clamps (soc.py _count) follow at once
                    lrn.net[k] -= mAs
                    b = est.base[k] + mAs // 20
                    est.base[k] = b if b < lrn.cap[k] else lrn.cap[k]
                    # a bleed that outweighs the charge current discharges the cell: on
                    # silicon its OCV leaves the charge branch, which its rest reading assumes
                    if counted_mA > -(cells[k] * 1000 // r):
                        est.bled |= 1 << k
        if est.branch != CHARGE:
            est.bled = 0  # a discharge puts every cell on the discharge branch
        est.temp_ok = self._temp_gate()
        mean_mV = self.mean_cell_mV
        cfg = self.cfg
        off = self.offset
        was = est.rest_done
        bound_mA = off.bound_mA(cfg)
        ok_cells = cells if self.cells_ok else None
        est.update(
            dt_ms, counted_mA, zeroed, bound_mA, ok_cells, n, mean_mV, self.max_cell_mV,
            self.min_cell_mV,
        )  # fmt: skip
        # An offset learned at rest says nothing flows, and a load within its bound (a
        # key-off drain, a trickle charger) reads the same: then the cells' voltage goes on
        # its way after the rest's reading. The offset is withdrawn for the rest of it, the
        # charge it kept from the count since the rest began goes back into every count and
        # learning interval, and the unlearned bound over that time into each half-width.
        # (Kept, a 15 mA drain for 16 h left the SOC 11 % high against a reported 6 % and
        # the capacity learned across it 9 % low.)
        # The lowest cell is the witness: a balancing bleed never takes it (balancing.py),
        # while the bleeds of the others (counted on their own) move the pack's mean: on the
        # mean, a 4-series pack bled after a discharge withdrew a true 20 mA offset, and the
        # next charge ran 2.9 % off.
        if est.rest_done:
            d = off.off_dmA
            if not was:
                # the rest's reading: where the voltage settles, with the relaxation still to
                # come only when it goes the way a load the offset hides would move it
                r = est.relax_mV
                off.rest_mV = self.min_cell_mV + (r if (r < 0) == (d > 0) else 0)
            elif off.known and off.t_ms < _WATCH_MS:
                v = self.min_cell_mV - off.rest_mV
                t = off.t_ms  # < _WATCH_MS: every product below stays a small int
                # a count that moved since the reading (the rest's current within the rest
                # threshold, beyond the deadband: a trickle counted against a true offset)
                # explains the voltage: 15 mA counted that way lost a true -27 mA offset
                c = est.q[0] - est.qc[0]
                u = muldiv(t, cfg.deadband_mA, 1000)
                # (an offset within the deadband hides nothing the deadband's bound does not)
                b = cfg.deadband_mA * 10
                if -u < c < u and (d >= b and v < -_DRIFT_MV or d <= -b and v > _DRIFT_MV):
                    mAs = muldiv(t, d, 10000)
                    u = muldiv(t, cfg.i_offset_mA, 1000)
                    lrn = self.learner
                    for k in range(n):
                        est.q[k] -= mAs
                        lrn.net[k] -= mAs
                        est.base[k] += u
                    est.sum_unc(n)
                    off.known = False
                    off.off_dmA = 0
                    off.t_ms = -_CAP_MS  # none learned again before the current leaves the rest
        self._publish_estimate(n)
        lrn = self.learner
        if lrn.learned:
            lrn.learned = False
            self.save_due = True

    def _limits(self, dt_ms, counted_mA, cells, n):
        """A plausible sample: resistance learning, then utilization, window bounds, anode
        potential and the current limits before the faults gate them."""
        cfg = self.cfg
        est = self.est
        s = self.soc_cpct
        self.res.learn(cfg, cells, n, counted_mA, dt_ms, self._temp_gate() and 2000 <= s <= 8000)
        cv = (
            counted_mA < 0
            and self.max_cell_mV >= cfg.v_max_mV - cfg.full_band_mV
            and est.known
            and est.branch == CHARGE
        )
        t_cold = None
        t_hot = None
        if self.min_temp_ddegC != _NO_TEMP:
            t_cold = self.min_temp_ddegC - cfg.t_sense_ddegC
            t_hot = self.max_temp_ddegC + cfg.t_sense_ddegC
        lim = self.lim
        lim.update(cfg, est, self.res, self.ocv, cells, n, counted_mA, t_cold, t_hot, cv)
        self.anode_mV = lim.anode_mV
        self.anode_util_dmAhg = lim.util if lim.util < 65535 else 65535

    def _publish_estimate(self, n):
        """Pack SOC (the mean of the cells', signed), its uncertainty (the mean of theirs),
        remaining charge (the emptiest cell's), capacity (the smallest) and its uncertainty
        (the largest), per-cell SOC, the learned offset and resistance, the counters."""
        est = self.est
        lrn = self.learner
        soc_sum = 0
        unc_sum = 0
        q_min = _CAP_MS
        cap_min = _CAP_MS
        dcap_max = 0
        fac_max = 0
        for k in range(n):
            soc_sum += est.soc[k]  # signed: a cell may run below SOC 0 or above 100 %
            unc_sum += est.tot_cpct[k]
            if est.q[k] < q_min:
                q_min = est.q[k]
            if lrn.cap[k] < cap_min:
                cap_min = lrn.cap[k]
            if lrn.dcap[k] > dcap_max:
                dcap_max = lrn.dcap[k]
            if self.res.fac[k] > fac_max:
                fac_max = self.res.fac[k]
        self.soc_cpct = soc_sum // n
        unc = unc_sum // n
        self.soc_unc_cpct = unc if unc < 10000 else 10000
        self.remaining_mAh = q_min // 3600 if q_min > 0 else 0
        self.capacity_mAh = cap_min // 3600
        self.capacity_unc_cpct = dcap_max
        self.r_dc_uohm = muldiv(self.cfg.r_cell_uohm, fac_max, 10000)
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
        if self.lim.top >= top_dmAhg - top_dmAhg // 50:
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
        """Switches from the fault bits, the limits they gate; record fault transitions. No
        allocation."""
        f = self.prot.faults
        if self.link_lost:
            f |= _LINK_LOST
        if self.cfg.flags & _BOOT_CONFIG_REJECTED:
            f |= _CONFIG
        self.faults = f
        self.latched = self.prot.latched
        self.chg_on = not self.shut and not (f & _BLOCKS_CHG)
        self.dsg_on = not self.shut and not (f & _BLOCKS_DSG)
        ok = self.cells_ok
        # the charge ends at the BMS's own full point (the end of CV at taper_mA, soc.py's
        # full calibration) until a discharge releases it, whatever the charger's own
        # termination: a CV held on to C/50 took a cell whose OCV is 20 mV below the
        # design's to 1,684 mAh/g, past its 1,667 top and the scorer's 1 % (C/20: 1,680.7)
        self.ccl_mA = self.lim.ccl_mA if self.chg_on and ok and not self.est.full_done else 0
        self.dcl_mA = self.lim.dcl_mA if self.dsg_on and ok else 0
        old = self._logged
        if f != old:
            log = self.log
            up = f & ~old
            down = old & ~f
            if up:
                log.add(self.clock_s, self.clock_ms, up, 1)
                if up & _LATCHING:
                    self.save_due = True
            if down:
                log.add(self.clock_s, self.clock_ms, down, 0)
            self._logged = f

    def _outputs(self):
        """Results before the first sample (from the restored or default state)."""
        n = self.cfg.n_cells
        self.est.sum_unc(n)
        self._publish_estimate(n)
        if self.est.need_init:
            self.soc_unc_cpct = 10000
        self.soc_at_save = self.soc_cpct
        self.flags = self.est.flags
        self._decide()
        self.chg_on = False
        self.dsg_on = False
        self.ccl_mA = 0
        self.dcl_mA = 0

    # -- commands from the app -------------------------------------------
    def set_link_lost(self, lost):
        """The app's link watchdog verdict; the switches are decided again at once (nothing
        on before the first sample). CLEAR_LATCHED calls it with the verdict unchanged."""
        self.link_lost = bool(lost)
        self._decide()
        if self.samples == 0:
            self.chg_on = False
            self.dsg_on = False
            self.ccl_mA = 0
            self.dcl_mA = 0

    def clear_latched(self, reason, mask):
        """CLEAR_LATCHED (commands.py, loaded for it): return the cleared bits."""
        from bms import commands

        try:
            return commands.clear_latched(self, reason, mask)
        finally:
            forget("commands")

    @property
    def fault_log(self):
        return self.log.entries()

    def save(self):
        """Write the state file now (atomic); raises OSError if the filesystem refuses (or the
        heap has no room to build it). The serialization is storage.py's, loaded for it."""
        from bms import storage

        try:
            write_json_atomic(self.state_path, storage.state_dict(self))
        except MemoryError:
            raise OSError(12) from None  # ENOMEM: the caller counts it as a failed save
        finally:
            del storage
            forget("storage")
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

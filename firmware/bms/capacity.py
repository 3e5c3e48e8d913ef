"""Capacity learning (state of health) and cycle counting by throughput.

A calibration point is a moment where the true SOC is known within unc_cpct: the
end of the CV taper (charge branch at the IR-free voltage), the cut-off under low
current (discharge branch at the IR-free voltage) or a rest reading on a known
hysteresis branch. Only points with unc_cpct <= learn_unc_max_cpct count: a rest
near empty (steep discharge branch) does, one on the flat mid part of the charge
branch does not. The charge counted between two points at least
learn_min_dsoc_cpct apart, scaled by their SOC difference, estimates the capacity;
it is bounded to learn_min_pct..learn_max_pct of the design and moves the learned
value by at most learn_step_cpct per event. Of two points closer than that the
more certain one stays the anchor. Current is positive on discharge; counts here
are in mAs of charge held by the cell.
"""

from bms.intmath import of_1e4, scale_1e4


class CapacityLearner:
    def __init__(self, cfg):
        self.design_mAs = cfg.capacity_mAh * 3600
        self.cap_mAs = self.design_mAs
        self.learn_count = 0
        self.cycle_count = 0
        self.thr_mAs = 0  # discharge throughput towards the next cycle
        self.anchor_ok = False
        self.anchor_cpct = 0
        self.anchor_unc_cpct = 0
        self.net_mAs = 0  # net counted charge since the anchor
        self.learned = False  # an event was accepted since the last save

    def bounds(self, cfg):
        lo = of_1e4(self.design_mAs, cfg.learn_min_pct * 100)
        hi = of_1e4(self.design_mAs, cfg.learn_max_pct * 100)
        return lo, hi

    def count(self, dq_mAs):
        """One sample's counted change (before any calibration jump)."""
        n = self.net_mAs + dq_mAs
        lim = self.cap_mAs * 4  # <= 4 * 7.92e7 < 2**30
        if n > lim or n < -lim:
            self.anchor_ok = False
            n = 0
        self.net_mAs = n
        if dq_mAs < 0:
            t = self.thr_mAs - dq_mAs
            if t >= self.cap_mAs:
                t -= self.cap_mAs
                if self.cycle_count < 65535:
                    self.cycle_count += 1
            self.thr_mAs = t

    def invalidate(self):
        """Counting was interrupted (time gap, clamp, boot): forget the anchor."""
        self.anchor_ok = False

    def point(self, cfg, soc_cpct, unc_cpct):
        """A calibration point: the cell is at soc_cpct +- unc_cpct now.

        May update cap_mAs; returns True if it learned.
        """
        if unc_cpct > cfg.learn_unc_max_cpct:
            return False
        done = False
        if self.anchor_ok:
            ds = soc_cpct - self.anchor_cpct
            net = self.net_mAs
            if ds < 0:
                ds = -ds
                net = -net
            if ds < cfg.learn_min_dsoc_cpct:
                if unc_cpct > self.anchor_unc_cpct:
                    return False  # the anchor close by is the better one: keep counting from it
            elif net > 0:
                # net <= 4 * 7.92e7 and ds >= 2000: net // ds * 10000 < 2**30
                est = scale_1e4(net, ds)
                # inline, not bounds(): a returned tuple would allocate under heap_lock
                lo = of_1e4(self.design_mAs, cfg.learn_min_pct * 100)
                hi = of_1e4(self.design_mAs, cfg.learn_max_pct * 100)
                if est < lo:
                    est = lo
                elif est > hi:
                    est = hi
                cap = self.cap_mAs
                step = of_1e4(cap, cfg.learn_step_cpct)
                if est > cap + step:
                    est = cap + step
                elif est < cap - step:
                    est = cap - step
                self.cap_mAs = est
                if self.learn_count < 65535:
                    self.learn_count += 1
                self.learned = True
                done = True
        self.anchor_ok = True
        self.anchor_cpct = soc_cpct
        self.anchor_unc_cpct = unc_cpct
        self.net_mAs = 0
        return done

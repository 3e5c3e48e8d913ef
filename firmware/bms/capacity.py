"""Capacity learning per cell (state of health), weighted by the evidence, and cycle counting.

A calibration point is a moment where a cell's true SOC is known within unc_cpct: the end
of the CV taper, the cut-off under low current, or a rest reading on a known hysteresis
branch (soc.py). Only points with unc_cpct <= learn_unc_max_cpct taken between
learn_t_min_ddegC and learn_t_max_ddegC count (IR-free readings are poorer in the cold and
the cold cell's capacity is not its capacity). The charge counted between two points of a
cell at least learn_min_dsoc_cpct apart, over their SOC difference, estimates its capacity
within eps = (the two points' uncertainties) / (their SOC difference), relative. The
learned value moves towards it by the weight of that evidence against its own: with dcap
the relative uncertainty of the learned value, gain = dcap^2 / (dcap^2 + eps^2) and
afterwards dcap = dcap eps / sqrt(dcap^2 + eps^2) (two estimates combined). Before any
learning dcap is cap_unc_cpct plus the current gain bound i_gain_ppm: the count's scale is
that uncertain (soc.py grows each cell's SOC uncertainty by dcap x the charge moved since
its last calibration). A learned capacity is in the current sensor's units, so it absorbs
the sensor's gain error. dcap never falls below _DCAP_FLOOR, so the value keeps following a
cell that fades. Estimates are bounded to learn_min_pct..learn_max_pct of the design.

Current is positive on discharge; counts here are in mAs of charge held by the cell. Each
cell keeps its own anchor and the net charge counted since it (the series current is
common, but a cell may keep an older anchor when its new point is the poorer one).
"""

from array import array

from bms.intmath import isqrt, muldiv, of_1e4, ratio_1e4, scale_1e4

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:

    def const(x):
        return x


_DCAP_FLOOR = const(50)  # 0.5 %


class CapacityLearner:
    def __init__(self, cfg):
        n = cfg.n_cells
        self.cap = array("i", bytes(4 * n))
        h = bytes(2 * n)  # short ints where they fit (storage.py's bounds), for the heap
        self.dcap = array("h", h)  # relative, cpct: 0..10000
        self.anc_ok = bytearray(n)
        self.anc_cpct = array("h", h)  # -10000..20000
        self.anc_unc = array("h", h)  # 0..10000
        self.learn_count = 0
        self.cycle_count = 0
        self.thr_mAs = 0  # discharge throughput towards the next cycle
        self.net = array("i", bytes(4 * n))  # net counted charge since each anchor
        self.learned = False  # an event was accepted since the last save
        self.reset(cfg)

    def reset(self, cfg):
        """The design capacity, nothing learned: the count's scale is uncertain by the
        capacity's and the current gain's bounds."""
        self.design_mAs = cfg.capacity_mAh * 3600
        p = cfg.cap_unc_cpct + cfg.i_gain_ppm // 100
        p = p if p < 10000 else 10000
        for k in range(len(self.cap)):
            self.cap[k] = self.design_mAs
            self.dcap[k] = p
        self.invalidate()

    def bounds(self, cfg):
        lo = of_1e4(self.design_mAs, cfg.learn_min_pct * 100)
        hi = of_1e4(self.design_mAs, cfg.learn_max_pct * 100)
        return lo, hi

    def count(self, dq_mAs, n):
        """One sample's counted change (before any calibration jump), n cells."""
        lim = self.design_mAs * 4  # <= 4 * 7.2e7 < 2**30
        net = self.net
        for k in range(n):
            v = net[k] + dq_mAs
            if v > lim or v < -lim:
                self.anc_ok[k] = 0
                v = 0
            net[k] = v
        if dq_mAs < 0:
            t = self.thr_mAs - dq_mAs
            c = self.cap[0]
            if t >= c:
                t -= c
                if self.cycle_count < 65535:
                    self.cycle_count += 1
            self.thr_mAs = t

    def invalidate(self):
        """Counting was interrupted (time gap, clamp, boot): forget the anchors."""
        for k in range(len(self.anc_ok)):
            self.anc_ok[k] = 0

    def point(self, cfg, k, soc_cpct, unc_cpct, temp_ok):
        """A calibration point of cell k: it is at soc_cpct +- unc_cpct now (before the caller
        resets its count). May update cap[k]; a point outside the learning gates is none."""
        if unc_cpct > cfg.learn_unc_max_cpct or not temp_ok:
            return
        if self.anc_ok[k]:
            ds = soc_cpct - self.anc_cpct[k]
            net = self.net[k]
            if ds < 0:
                ds = -ds
                net = -net
            if ds < cfg.learn_min_dsoc_cpct:
                if unc_cpct > self.anc_unc[k]:
                    return  # the anchor close by is the better one: keep counting from it
            elif net > 0:
                self.learn(cfg, k, scale_1e4(net, ds), (unc_cpct + self.anc_unc[k]) * 10000 // ds)
        self.anc_ok[k] = 1
        self.anc_cpct[k] = soc_cpct
        self.anc_unc[k] = unc_cpct
        self.net[k] = 0

    def learn(self, cfg, k, est, eps):
        """Move cap[k] towards est (mAs; relative uncertainty eps, cpct) by the evidence.
        est < 2**30 (net <= 4 x 7.2e7, ds >= 2000); eps <= 2 x 10000 x 10000 / 2000."""
        lo = of_1e4(self.design_mAs, cfg.learn_min_pct * 100)
        hi = of_1e4(self.design_mAs, cfg.learn_max_pct * 100)
        est = lo if est < lo else (hi if est > hi else est)
        eps = eps if eps < 30000 else 30000
        if eps < 1:
            eps = 1
        d = self.dcap[k]
        var_p = d * d  # <= 1e8
        var_m = eps * eps  # <= 9e8
        total = var_p + var_m  # < 2**30
        # the gain in 1e-4: ratio_1e4 takes a divisor below 1e8, so both variances are
        # scaled down alike (in shifts: no product beyond 2**30 on a 32-bit port)
        vp = var_p
        vt = total
        while vt >= 100000000:
            vp >>= 4
            vt >>= 4
        gain = ratio_1e4(vp, vt)
        cap = self.cap[k]
        diff = est - cap
        step = muldiv(diff if diff >= 0 else -diff, gain, 10000)
        self.cap[k] = cap + step if diff >= 0 else cap - step
        post = d * eps // isqrt(total)  # d x eps <= 1e4 x 3e4
        self.dcap[k] = post if post > _DCAP_FLOOR else _DCAP_FLOOR
        if self.learn_count < 65535:
            self.learn_count += 1
        self.learned = True

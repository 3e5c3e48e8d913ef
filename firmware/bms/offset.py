"""The current sensor's offset, learned where the true current is zero, as fuel gauges do.

Current is positive on discharge. Two situations say the true current is zero: both
switches open (nothing can flow), and a rest (the reading within rest_current_mA: no load
draws that little). While one lasts, the readings are averaged; once it has lasted
a minute (a tenth of that with both switches open, the stronger evidence) the
average becomes the offset, if it lies within the sensor's offset bound i_offset_mA (a
larger reading is a load, not an offset). From then on the counting subtracts it, and
the SOC uncertainty grows by i_offset_learned_mA instead of i_offset_mA (soc.py).

The offset is the average of a stretch's first ten minutes and is kept through the rest
of it, so a load that starts later in a rest is counted against the offset learned before
it. A rest is only a reading within rest_current_mA, so a load within the offset bound (a
key-off drain, a trickle charger) is learned as an offset too. What tells the two apart
is the cells' voltage: still after a true rest's reading, moving on under a load. core.py
watches it (rest_mV, the voltage the rest's reading expected to settle at) and, once it
has moved the offset's way while the count stood still, withdraws the offset: t_ms, this
stretch's length so far, says how much charge it kept from the count, and a negative t_ms
holds learning off until the current leaves the rest.

correct() returns whole mA and carries the tenths of a mA to the next sample, so the
offset is subtracted exactly on average.
"""

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:

    def const(x):
        return x


_MAX_N = const(16384)  # samples averaged before the sums are halved: 10 x sum stays small
_LEARN_MS = const(60000)  # a rest this long (a tenth with both switches open) gives the offset
# and it is the average of the stretch's first ten minutes, then kept: averaged on, a 15 mA
# drain that began half an hour into a rest pulled a true -20 mA offset towards -5 mA, and
# the drain went uncounted (10.7 % of SOC, 61.6 % coverage, the offset's sign hiding it)
_KEEP_MS = const(600000)


class OffsetLearner:
    def __init__(self):
        self.off_dmA = 0  # the offset, 0.1 mA
        self.known = False
        self.rem_dmA = 0  # tenths carried by correct()
        self.t_ms = 0  # how long the present zero-current stretch has lasted (< 0: held off)
        self.sum_mA = 0  # its readings, summed (<= 5000 x _MAX_N)
        self.n = 0
        self.rest_mV = 0  # where a rest's reading expected the voltage to settle (core.py)

    def correct(self, raw_mA):
        """The reading minus the offset, whole mA (|raw_mA| <= 1e5)."""
        v = raw_mA * 10 - self.off_dmA + self.rem_dmA
        whole = v // 10
        self.rem_dmA = v - whole * 10
        return whole

    def bound_mA(self, cfg):
        """The offset's bound now: learned or not."""
        return cfg.i_offset_learned_mA if self.known else cfg.i_offset_mA

    def observe(self, cfg, raw_mA, dt_ms, both_open, cv_tail):
        """One sample's reading (clamped to the sensor range); both_open: both switches were
        open through the interval it covers; cv_tail: a charge beyond the deadband while the
        fullest cell reads within the sensor's bound of v_max (core.py). That is a charger's
        CV tail, not a rest: on a small cell the tail runs below rest_current_mA (a 0.2 Ah
        cell's C/20 is 10 mA against its 30 mA, the offset bound), and learned as the offset
        it was counted as a discharge through the rest after (full cycles 10.9 % of SOC
        off). Within the deadband a reading is the sensor's noise about its offset."""
        lim = cfg.i_offset_mA
        if both_open:
            zero = -lim <= raw_mA <= lim
            need_ms = _LEARN_MS // 10
        else:
            v = cfg.rest_current_mA
            zero = -v <= raw_mA <= v and not cv_tail
            need_ms = _LEARN_MS
        if not zero:
            self.t_ms = 0
            self.sum_mA = 0
            self.n = 0
            return
        t = self.t_ms + dt_ms
        self.t_ms = t if t < 0x3FFFFFFF - 10000 else 0x3FFFFFFF - 10000
        if t > _KEEP_MS:
            return  # the stretch's offset is its first ten minutes': a later load is counted
        n = self.n
        if n >= _MAX_N:
            self.sum_mA //= 2
            n //= 2
        self.sum_mA += raw_mA
        self.n = n + 1
        if self.t_ms >= need_ms:
            mean_dmA = self.sum_mA * 10 // self.n  # |sum| <= 5000 x 16384: x 10 < 2**30
            if -lim * 10 <= mean_dmA <= lim * 10:
                self.off_dmA = mean_dmA
                self.known = True

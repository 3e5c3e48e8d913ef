"""Integer coulomb counter: mA x ms products carried into whole mAs, efficiency on charge.

Current is positive on discharge; the count `q_mAs` is the charge held by the cell,
so it falls on discharge and rises (times the coulombic efficiency) on charge.

Bounds (config hard limits): |current_mA| <= i_range_mA <= 1e5 and
0 <= dt_ms <= max_dt_ms <= 1e4, so |current_mA * dt_ms| <= 1e9 < 2**30; the
efficiency loss is split into three decimal parts whose products stay <= 1e8.

Exactness invariant, from a zero start: 1e6 * (1000 * q_mAs + rem_mAms) - loss_u
== 1e6 * (sum of charge mA*ms - sum of discharge mA*ms) - loss_ppm * (sum of charge mA*ms).
"""


class CoulombCounter:
    def __init__(self, ce_ppm=1000000):
        self.q_mAs = 0
        self.rem_mAms = 0  # 0..999: the fraction of a mAs not yet in q_mAs
        self.loss_u = 0  # 0..999999: efficiency loss not yet taken, in 1e-6 mA*ms
        self.loss_ppm = 1000000 - ce_ppm
        self.dq_mAs = 0  # change of q_mAs at the last add()

    def set_efficiency(self, ce_ppm):
        self.loss_ppm = 1000000 - ce_ppm

    def add(self, current_mA, dt_ms):
        """Count one sample (current positive on discharge); sets dq_mAs."""
        p = current_mA * dt_ms
        if p > 0:
            t = self.rem_mAms - p
        elif p < 0:
            c = -p
            lp = self.loss_ppm
            k = c // 1000
            a = k // 1000  # c = a*1e6 + b*1e3 + d
            b = k - a * 1000
            d = c - k * 1000
            bl = b * lp
            bk = bl // 1000
            u = self.loss_u + (bl - bk * 1000) * 1000 + d * lp
            w = u // 1000000
            self.loss_u = u - w * 1000000
            t = self.rem_mAms + c - (a * lp + bk + w)
        else:
            self.dq_mAs = 0
            return
        whole = t // 1000
        self.rem_mAms = t - whole * 1000
        self.q_mAs += whole
        self.dq_mAs = whole

    def set_mAs(self, q_mAs):
        """Calibration: the cell holds q_mAs now."""
        self.dq_mAs += q_mAs - self.q_mAs
        self.q_mAs = q_mAs
        self.rem_mAms = 0

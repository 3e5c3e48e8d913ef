"""Passive balancing: which cells bleed, as a bitmask (bit 0 = cell 1).

A cell bleeds while it is more than bal_threshold_mV above the lowest cell
(and keeps bleeding down to threshold - bal_hyst_mV), only near the top of
charge (max cell >= bal_start_mV) or at rest, never while discharging harder
than bal_max_dsg_mA (current positive on discharge), and never with a fault
that makes the readings or the temperature doubtful.
"""

from bms import faults as F

_STOP = (
    F.OT_CHG
    | F.OT_DSG
    | F.UV
    | F.SC
    | F.OV_ABUSE
    | F.UV_ABUSE
    | F.SENSOR_RANGE
    | F.SENSOR_FROZEN
    | F.LINK_LOST
    | F.CONFIG
)


class Balancer:
    def __init__(self):
        self.bits = 0

    def update(self, cfg, cells, n, min_mV, max_mV, cur, faults):
        a = cur if cur >= 0 else -cur
        if (
            not cfg.bal_enable
            or n < 2
            or faults & _STOP
            or cur > cfg.bal_max_dsg_mA
            or (max_mV < cfg.bal_start_mV and a > cfg.rest_current_mA)
        ):
            self.bits = 0
            return 0
        on = cfg.bal_threshold_mV
        off = on - cfg.bal_hyst_mV
        old = self.bits
        bits = 0
        b = 1
        for k in range(n):
            d = cells[k] - min_mV
            if d > on or (old & b and d > off):
                bits |= b
            b <<= 1
        self.bits = bits
        return bits

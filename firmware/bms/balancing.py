"""Passive balancing: which cells bleed, as a bitmask (bit 0 = cell 1).

A cell bleeds while it is more than bal_threshold_mV above the lowest cell
(and keeps bleeding down to threshold - bal_hyst_mV), only near the top of
charge (max cell >= bal_start_mV) or at rest, never while discharging harder
than bal_max_dsg_mA (current positive on discharge), and never with a fault
that makes the readings or the temperature doubtful.

Once a cell starts bleeding, every bleeding cell stays on for at least
bal_min_on_ms: the bleed current's own IR drop (about 7 mV for 33 ohm on the
default cell) would otherwise end it on the next sample and the switches
would chatter. The stop conditions above still end it at once.
"""

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:

    def const(x):
        return x


# Fault bits as in faults.py, folded at compile time (tests/firmware/test_fault_consts.py
# checks the copies).
_UV = const(1 << 1)
_SC = const(1 << 4)
_OT_CHG = const(1 << 5)
_OT_DSG = const(1 << 7)
_OV_ABUSE = const(1 << 9)
_UV_ABUSE = const(1 << 10)
_SENSOR_RANGE = const(1 << 13)
_SENSOR_FROZEN = const(1 << 14)
_LINK_LOST = const(1 << 15)
_CONFIG = const(1 << 16)
_STOP = const(
    _OT_CHG
    | _OT_DSG
    | _UV
    | _SC
    | _OV_ABUSE
    | _UV_ABUSE
    | _SENSOR_RANGE
    | _SENSOR_FROZEN
    | _LINK_LOST
    | _CONFIG
)


class Balancer:
    def __init__(self):
        self.bits = 0
        self.hold_ms = 0

    def update(self, cfg, cells, n, min_mV, max_mV, cur, faults, dt_ms):
        a = cur if cur >= 0 else -cur
        if (
            not cfg.bal_enable
            or n < 2
            or faults & _STOP
            or cur > cfg.bal_max_dsg_mA
            or (max_mV < cfg.bal_start_mV and a > cfg.rest_current_mA)
        ):
            self.bits = 0
            self.hold_ms = 0
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
        if bits & ~old:
            self.hold_ms = cfg.bal_min_on_ms  # a cell started: hold the set for a while
        elif self.hold_ms > 0:
            self.hold_ms -= dt_ms
            bits |= old
        self.bits = bits
        return bits

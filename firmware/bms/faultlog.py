"""Bounded fault log: a preallocated ring of [t_ms, fault_bits, event].

event: 1 the bits were set, 0 they released on their own, 2..255 latched bits cleared by
CLEAR_LATCHED with that reason code (docs/protocol.md).

Recording a transition allocates nothing, so it can run inside the per-sample
step; entries() builds the list (for FAULT_LOG replies and the state file).
Times are the Bms sample clock (sum of sample intervals, kept across restarts
in the state file), split into seconds and milliseconds to stay small ints.
"""

from array import array


class FaultLog:
    def __init__(self, size):
        self.size = size
        self.t_s = array("i", bytes(4 * size))
        self.t_ms = array("H", bytes(2 * size))
        self.bits = array("i", bytes(4 * size))
        self.set = bytearray(size)
        self.head = 0  # next slot to write
        self.count = 0

    def add(self, t_s, t_ms, bits, event):
        if self.size == 0:
            return
        h = self.head
        self.t_s[h] = t_s
        self.t_ms[h] = t_ms
        self.bits[h] = bits
        self.set[h] = event
        h += 1
        self.head = 0 if h >= self.size else h
        if self.count < self.size:
            self.count += 1

    def entries(self):
        """Oldest first, as [t_ms, bits, event] lists."""
        out = []
        n = self.count
        i = self.head - n
        if i < 0:
            i += self.size
        for _ in range(n):
            out.append([self.t_s[i] * 1000 + self.t_ms[i], self.bits[i], self.set[i]])
            i += 1
            if i >= self.size:
                i = 0
        return out

    def load(self, items):
        """Refill from entries() output (ignores malformed items)."""
        self.head = 0
        self.count = 0
        for e in items:
            if isinstance(e, list) and len(e) == 3:
                t, b, s = e
                ok = isinstance(t, int) and isinstance(b, int) and isinstance(s, int)
                if ok and 0 <= b < 1 << 30 and t >= 0 and 0 <= s <= 255:
                    self.add(t // 1000, t % 1000, b, s)

# pyright: reportMissingImports=false
"""MicroPython-side rig for the firmware's own loop (main.serve) fed from a script.

main.serve() takes the serial port and the clock as arguments; on a board they
are main.Console (the REPL's stdin/stdout) and time.ticks_ms. Here they are a
ScriptedLine: bursts of bytes arriving on a virtual clock, so a test can run
the real loop (break detection, parser, App, Bms) over hundreds of thousands
of frames with exact silences between them. tests/firmware/test_line_noise.py
and test_fuzz.py use it; the same loop also runs over a real pty there.

Current is positive on discharge.
"""

import struct

import main
from bms import codec
from bms import faults as F


class ScriptedLine:
    """A serial port on a virtual clock, fed by make_source(line): an iterator of
    (gap_ms, data).

    Each burst arrives whole, gap_ms after the previous one arrived (0: back to back).
    ready(timeout) waits on the virtual clock and readinto() takes what the current burst
    still holds; one second after the script's last burst the port reads as closed (ready,
    then readinto gives -1), and `done` tells the test that this is why serve() returned.
    Replies are decoded as they are written: `types[t]` counts them by type, `seen[seq]`
    holds the type of the last HELLO_REPLY, STATE or CLEAR_LATCHED_REPLY with that seq.
    `expect(seq, ftype)` registers a reply the bytes read so far must produce; settle()
    (called by Switches.feed_wdt at the top of each loop, when everything read has been
    processed) counts each as met or missed.
    """

    def __init__(self, make_source):
        self.now = 1000
        self.at = 1000
        self.data = b""
        self.pos = 0
        self.done = False
        self.total = 0  # bytes read
        self.seen = bytearray(65536)
        self.types = [0] * 256
        self.error_codes = [0] * 256  # ERROR replies by reason code (E_*)
        self.replies = 0
        self.last_state = None
        self.waiting = []  # (bytes read when due, seq, reply type)
        self.met = 0
        self.missed = []
        self.rx = codec.Parser()
        self.rx.intr = -1
        self.src = make_source(self)  # last: the source may take what heap is left

    def ticks(self):
        return self.now & 0x3FFFFFFF

    def expect(self, seq, ftype, after=0):
        """A reply of `ftype` with `seq` is due once `after` more bytes have been read."""
        self.seen[seq] = 0
        self.waiting.append((self.total + (len(self.data) - self.pos) + after, seq, ftype))

    def settle(self):
        w = self.waiting
        while w and w[0][0] <= self.total:
            due, seq, ftype = w.pop(0)
            if self.seen[seq] == ftype:
                self.met += 1
            else:
                self.missed.append((due, seq, ftype, self.seen[seq]))

    def _next(self):
        for gap, data in self.src:
            self.at += gap
            if self.at < self.now:
                self.at = self.now
            self.data = data
            self.pos = 0
            if data:
                return
        # the end: one second of silence, then the port closes
        self.done = True
        self.at += 1000
        self.data = b""
        self.pos = 0

    def ready(self, timeout_ms):
        if self.pos >= len(self.data) and not self.done:
            self._next()
        if self.at <= self.now:
            return True
        if self.at <= self.now + timeout_ms:
            self.now = self.at
            return True
        self.now += timeout_ms
        return False

    def readinto(self, buf, off, n):
        """What the line holds now (the rest of the burst), up to n bytes; -1 at the end."""
        k = min(n, len(self.data) - self.pos)
        if k <= 0:
            return -1
        for j in range(k):
            buf[off + j] = self.data[self.pos + j]
        self.pos += k
        self.total += k
        return k

    def write(self, buf, n):
        p = self.rx
        i = 0
        while i < n:
            i = p.feed(buf, i, n, 0)
            if p.event == codec.EV_FRAME:
                t = p.ftype
                self.types[t] += 1
                self.replies += 1
                if t == 0xFF and p.length:
                    self.error_codes[p.buf[7]] += 1
                if t == 0x81 or t == 0x82 or t == 0x83 or t == 0x8B:
                    self.seen[p.seq] = t
                if t == 0x82 or t == 0x83:
                    self.last_state = bytes(p.buf[7 : 7 + p.length])


class Switches:
    """The board I/O as serve() and App drive it; checks every switch decision it is given.

    A switch may be closed only when no fault that blocks it is active (faults.py);
    `violations` counts decisions that broke the rule.
    """

    def __init__(self, bms):
        self.bms = bms
        self.chg = False
        self.dsg = False
        self.applies = 0
        self.closed = 0  # decisions with a switch closed
        self.violations = 0
        self.feeds = 0
        self.line = None
        self.changes = None  # a list to get (line time, chg, dsg) at each change

    def apply(self, chg_on, dsg_on, balance):
        f = self.bms.faults
        if (chg_on and f & F.BLOCKS_CHG) or (dsg_on and f & F.BLOCKS_DSG):
            self.violations += 1
        self.applies += 1
        if chg_on or dsg_on:
            self.closed += 1
        if self.changes is not None and (chg_on, dsg_on) != (self.chg, self.dsg):
            self.changes.append((self.line.now if self.line else 0, chg_on, dsg_on))
        self.chg = chg_on
        self.dsg = dsg_on

    def open_all(self):
        self.apply(False, False, 0)

    def feed_wdt(self):
        # the top of serve()'s loop: every byte read so far has been processed
        self.feeds += 1
        if self.line is not None:
            self.line.settle()

    def measure(self, cell_mV, n_cells, temp_ddegC, n_temps):
        return 0


def boot():
    """The firmware as main.main() builds it from the current folder (board.json,
    bms_config.json), with the switch recorder as its board I/O."""
    app, io, board = main.setup()
    sw = Switches(app.bms)
    app.io = sw
    return app, sw, board


def run(app, sw, board, make_source):
    """Run main.serve() over the bursts of make_source(line), an iterator of (gap_ms,
    data); return (action, line)."""
    line = ScriptedLine(make_source)
    sw.line = line
    action = main.serve(app, sw, board, line, line.ticks)
    line.settle()
    return action, line


def replay(path, line):
    """Bursts from a script file written by tests/firmware/line_script.py: records of
    <IBBHH (gap_ms, flags, reply type, reply seq, length) then the bytes; flags bit 0:
    the burst must draw that reply."""
    head = bytearray(10)
    with open(path, "rb") as f:
        while f.readinto(head) == 10:
            gap, flags, rtype, rseq, n = struct.unpack("<IBBHH", head)
            data = f.read(n)
            if flags & 1:
                # due once this burst has been read (the line holds the previous one)
                line.expect(rseq, rtype, n)
            yield gap, data

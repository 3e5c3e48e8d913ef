"""Frame codec of the sisnbms serial protocol (docs/protocol.md), allocation-free.

`Parser` is a byte-fed state machine writing into one preallocated buffer; it
never raises on bad input, it reports an event and a reason code instead.
`finish()` writes header and CRC around a payload already placed in an output
buffer. u32 fields are handled as two 16-bit halves so every value stays a
small int on 32-bit ports.
"""

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:  # CPython imports the pure logic for tests

    def const(x):
        return x


try:
    from time import ticks_diff  # pyright: ignore[reportAssignmentType]
except ImportError:

    def ticks_diff(a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000


from array import array
from struct import pack_into

from bms.crc16 import INIT, crc16
from bms.fastpath import copy

SYNC = const(0xA5)
VERSION = const(1)
HEADER = const(7)  # sync, version, type, seq(2), len(2)
# The format allows payloads up to 4096 bytes and this firmware's frame buffer holds them
# all: the largest CONFIG or CONFIG_WRITE is 3,802 bytes (every key at its widest limit,
# every table at its longest; tests/host/test_firmware_config.py).
MAX_PAYLOAD = const(4096)
FRAME_MAX = const(4105)  # HEADER + MAX_PAYLOAD + 2 (CRC)
CTRL_C = const(3)
STALL_MS = const(100)  # a partial frame idle this long on the firmware clock is dropped
BREAK_IDLE_MS = const(30)  # silence on the line before a break sequence (BreakDetector)
BREAK_CONFIRM_MS = const(1000)  # its confirming byte comes within this of its 0x03
MAX_CELLS = const(16)
MAX_TEMPS = const(8)
STATE_FIXED = const(67)  # the STATE payload before its per-cell part (4 bytes a cell)

# Frame types (replies are type | 0x80).
T_HELLO = const(0x01)
T_SAMPLE = const(0x02)
T_GET_STATE = const(0x03)
T_CONFIG_READ = const(0x04)
T_CONFIG_WRITE = const(0x05)
T_ENTER_REPL = const(0x07)
T_RESET = const(0x08)
T_FAULT_LOG = const(0x09)
T_SAVE = const(0x0A)
T_CLEAR_LATCHED = const(0x0B)
T_BOOT = const(0x40)
T_ERROR = const(0xFF)
REPLY = const(0x80)

# Rejection reason codes (ERROR payload byte 0).
E_CRC = const(1)
E_VERSION = const(2)
E_LENGTH = const(3)
E_TYPE = const(4)
E_SEQ = const(5)
E_TIME = const(6)
E_PAYLOAD = const(7)
E_TIMEOUT = const(8)
E_BUSY = const(9)
E_MEMORY = const(10)  # a request the heap left cannot serve now; nothing of it applied

# Parser events.
EV_NONE = const(0)
EV_FRAME = const(1)  # a complete frame with a good CRC and version is in buf
EV_ERROR = const(2)  # header readable, frame rejected: reason in .error, seq/ftype valid
EV_CTRL_C = const(3)  # Parser.intr (0x03 unless disabled) while hunting for sync
EV_TIMEOUT = const(4)  # a partial frame stalled and was dropped (no reply)

_HUNT = const(0)
_HEADER = const(1)
_BODY = const(2)
_DISCARD = const(3)  # after an over-long header: drop bytes until the line is idle

_B_MID = const(0)  # within a burst of bytes or a frame (or quiet for less than BREAK_IDLE_MS)
_B_ARMED = const(1)  # quiet for BREAK_IDLE_MS between frames: a burst may start a break
_B_CR = const(2)  # the burst began with "\r"
_B_ETX = const(3)  # ... then 0x03: waiting for the confirming "\r" or 0x03


class Parser:
    """Frames out of a byte stream.

    `intr` is the byte taken for Ctrl-C while hunting for sync (EV_CTRL_C), as
    micropython.kbd_intr() sets it for the REPL: 0x03, or -1 for none. The firmware's
    main loop sets -1, since one corrupted sync byte would turn a 0x03 inside a frame
    into Ctrl-C, and recognises only the deliberate sequence (BreakDetector).
    """

    def __init__(self):
        self.intr = CTRL_C
        self.buf = bytearray(FRAME_MAX)
        self.state = _HUNT
        self.pos = 0
        self.need = 0
        self.ftype = 0
        self.seq = 0
        self.length = 0
        self.event = EV_NONE
        self.error = 0
        self.last_ms = 0

    def hunting(self):
        """True between frames (no partial frame held, none being discarded)."""
        return self.state == _HUNT

    def tick(self, now_ms):
        """Drop a partial frame idle for more than STALL_MS; True if a frame was dropped."""
        if self.state != _HUNT and ticks_diff(now_ms, self.last_ms) > STALL_MS:
            dropped = self.state != _DISCARD
            self.state = _HUNT
            self.pos = 0
            return dropped
        return False

    def feed(self, data, i, n, now_ms):
        """Consume data[i:n] up to the first event; return the index of the next byte.

        `self.event` tells what stopped it (EV_NONE: all bytes consumed). n <= len(data).
        """
        self.event = EV_NONE
        if self.tick(now_ms):
            self.event = EV_TIMEOUT
            self.error = E_TIMEOUT
            return i
        self.last_ms = now_ms
        if n > len(data):
            raise IndexError("feed past the end of data")  # copy() checks no bounds
        buf = self.buf
        while i < n:
            state = self.state
            if state == _HUNT:
                b = data[i]
                i += 1
                if b == SYNC:
                    buf[0] = b
                    self.pos = 1
                    self.state = _HEADER
                elif b == self.intr:
                    self.event = EV_CTRL_C
                    return i
                continue
            if state == _DISCARD:
                return n
            # header or body: take at once the bytes the data holds of it
            pos = self.pos
            stop = HEADER if state == _HEADER else self.need
            k = stop - pos
            if k > n - i:
                k = n - i
            copy(buf, pos, data, i, k)
            i += k
            pos += k
            self.pos = pos
            if pos < stop:
                return i  # all of data consumed
            if state == _HEADER:
                self.ftype = buf[2]
                self.seq = buf[3] | (buf[4] << 8)
                length = buf[5] | (buf[6] << 8)
                self.length = length
                if length > MAX_PAYLOAD:
                    # The rest cannot be framed; discarding until idle keeps its
                    # bytes from being taken as sync or Ctrl-C.
                    self.state = _DISCARD
                    self.event = EV_ERROR
                    self.error = E_LENGTH
                    return i
                self.need = HEADER + length + 2  # <= FRAME_MAX: copy() stays in buf
                self.state = _BODY
                continue
            self.state = _HUNT
            self.pos = 0
            end = pos - 2
            if crc16(buf, 1, end, INIT) != (buf[end] | (buf[end + 1] << 8)):
                self.event = EV_ERROR
                self.error = E_CRC
            elif buf[1] != VERSION:
                self.event = EV_ERROR
                self.error = E_VERSION
            else:
                self.event = EV_FRAME
            return i
        return i


class BreakDetector:
    r"""The deliberate return to the REPL, told apart from line noise by shape and timing.

        A break is: the line quiet for at least BREAK_IDLE_MS between frames (the parser
        hunting for sync), then "
    ", 0x03 as the first two bytes of the next burst, then
        "
    " or 0x03 within BREAK_CONFIRM_MS. Boot counts as such a pause. mpremote sends
        "
    ", reads what is waiting, then "
    " (pyboard.py and older mpremote:
        "
    ", then "
    "), so it gets the REPL back with no extra step: the
        firmware reads up to the confirming byte and leaves the Ctrl-A to the REPL. A host
        frame starts with the sync byte 0xA5 and the version 0x01, three and one bit errors
        away from "
    ": no frame with fewer than four bit errors, no byte inside a frame
        and no noise inside a burst can look like a break.

        Time is the firmware clock (ticks_ms). The caller reports each byte with the time it
        was read, and quiet(t, hunting) when it has seen the line empty at t (t taken before
        the check): silence is only counted when seen, so a firmware busy elsewhere never
        takes bytes queued meanwhile for a pause. 30 ms is far above the spacing of bytes in
        one write (microseconds over USB, 1 ms a byte at 9600 baud) and far below the time
        mpremote takes to start after whatever was on the line before it.
    """

    def __init__(self, now_ms):
        self.state = _B_ARMED  # boot is a pause: bytes queued during it may be a break
        self.last_ms = now_ms  # when the last byte was read
        self.etx_ms = 0

    def quiet(self, now_ms, hunting):
        """The line was seen empty at now_ms; `hunting`: the parser is between frames."""
        s = self.state
        if s == _B_ARMED:
            return  # armed stays armed however long the silence (no ticks wrap-around)
        if s == _B_ETX:
            if ticks_diff(now_ms, self.etx_ms) <= BREAK_CONFIRM_MS:
                return  # the confirming byte may still come
            s = _B_MID
        if hunting and ticks_diff(now_ms, self.last_ms) >= BREAK_IDLE_MS:
            s = _B_ARMED
        self.state = s

    def watching(self):
        """True while the next bytes may be part of a break: give them to byte(), one by one.

        Otherwise (within a burst, or after a short pause) no byte can start a break and
        read() with the time of the read is all the detector needs of a whole chunk.
        """
        return self.state != _B_MID

    def read(self, now_ms):
        """Bytes were read at now_ms while not watching(): byte() for each of them, at once."""
        self.last_ms = now_ms

    def byte(self, b, now_ms):
        """Byte `b` was read at now_ms; True when it completes a break."""
        s = self.state
        self.last_ms = now_ms
        if s == _B_ARMED:
            self.state = _B_CR if b == 13 else _B_MID
        elif s == _B_CR:
            self.state = _B_ETX if b == CTRL_C else _B_MID
            self.etx_ms = now_ms
        elif s == _B_ETX:
            self.state = _B_MID
            return (b == 13 or b == CTRL_C) and ticks_diff(now_ms, self.etx_ms) <= BREAK_CONFIRM_MS
        return False


def finish(out, ftype, seq, length):
    """Write header and CRC around out[7:7+length]; return the frame size."""
    out[0] = SYNC
    out[1] = VERSION
    out[2] = ftype
    out[3] = seq & 0xFF
    out[4] = (seq >> 8) & 0xFF
    out[5] = length & 0xFF
    out[6] = length >> 8
    end = HEADER + length
    c = crc16(out, 1, end, INIT)
    out[end] = c & 0xFF
    out[end + 1] = c >> 8
    return end + 2


def put_u16(buf, off, v):
    """Also writes i16: & and >> on a negative small int give two's complement bytes."""
    buf[off] = v & 0xFF
    buf[off + 1] = (v >> 8) & 0xFF


def put_u32(buf, off, v):
    """u32 or i32 from a small int (|v| < 2**30)."""
    buf[off] = v & 0xFF
    buf[off + 1] = (v >> 8) & 0xFF
    buf[off + 2] = (v >> 16) & 0xFF
    buf[off + 3] = (v >> 24) & 0xFF


def get_u16(buf, off):
    return buf[off] | (buf[off + 1] << 8)


def put_bytes(buf, off, data):
    """Copy data into buf at off without a slice object; return the end offset."""
    for k in range(len(data)):
        buf[off + k] = data[k]
    return off + len(data)


class Sample:
    """A decoded SAMPLE payload in preallocated storage (t_ms as 16-bit halves).

    current_mA is positive on discharge.
    """

    def __init__(self):
        self.t_hi = 0
        self.t_lo = 0
        self.current_mA = 0
        self.n_cells = 0
        self.n_temps = 0
        self.cell_mV = array("H", bytes(2 * MAX_CELLS))
        self.temp_ddegC = array("h", bytes(2 * MAX_TEMPS))

    def decode(self, b, off, length):
        """Decode b[off:off+length]; return 0, or E_PAYLOAD leaving the fields unusable."""
        if length < 10:
            return E_PAYLOAD
        n = b[off + 8]
        if n < 1 or n > MAX_CELLS or length < 10 + 2 * n:
            return E_PAYLOAD
        nt = b[off + 9 + 2 * n]
        if nt > MAX_TEMPS or length != 10 + 2 * n + 2 * nt:
            return E_PAYLOAD
        # the u16 and i16 fields read in place: no call per field (a SAMPLE's decode is
        # per frame)
        cur_hi = b[off + 6] | (b[off + 7] << 8)
        cur_lo = b[off + 4] | (b[off + 5] << 8)
        if 0x4000 <= cur_hi < 0xC000 or (cur_hi == 0xC000 and cur_lo == 0):
            return E_PAYLOAD  # |I| of 2**30 mA or more: not a small int, and not a current
        if cur_hi >= 0xC000:
            cur_hi -= 0x10000
        self.current_mA = (cur_hi << 16) + cur_lo
        self.t_lo = b[off] | (b[off + 1] << 8)
        self.t_hi = b[off + 2] | (b[off + 3] << 8)
        self.n_cells = n
        self.n_temps = nt
        cells = self.cell_mV
        p = off + 9
        for k in range(n):
            cells[k] = b[p] | (b[p + 1] << 8)
            p += 2
        temps = self.temp_ddegC
        p += 1
        for k in range(nt):
            v = b[p] | (b[p + 1] << 8)
            temps[k] = v - 0x10000 if v & 0x8000 else v
            p += 2
        return 0


# The STATE payload's fixed part (docs/protocol.md), one struct call instead of 28 helper
# calls. struct writes the low bytes of each int as put_u16/put_u32 do, whatever its range.
_STATE_FMT = "<HHhHHHHHIIHHHHIiHHhHIIhhIHB"


def put_state(o, h, t_hi, t_lo, s, bad_frames, n):
    """Write the STATE payload (67 + 4 n bytes) at o[h:] from the Bms result attributes of
    `s` for n cells; return its length."""
    # the switch bits come from chg_on/dsg_on, the truth the adapter applied
    flags = s.flags & 0xFFFC
    if s.chg_on:
        flags |= 1
    if s.dsg_on:
        flags |= 2
    pack_into(
        _STATE_FMT, o, h, t_lo, t_hi, s.soc_cpct, s.soc_unc_cpct, s.remaining_mAh,
        s.capacity_mAh, s.anode_util_dmAhg, flags, s.faults, s.latched, s.warnings, s.balance,
        s.cycle_count, bad_frames, s.samples, s.current_mA, s.min_cell_mV, s.max_cell_mV,
        s.max_temp_ddegC, s.cap_learn_count, s.ccl_mA, s.dcl_mA, _i16(s.anode_mV),
        _i16(s.offset.off_dmA), s.r_dc_uohm, s.capacity_unc_cpct, n,
    )  # fmt: skip
    p = h + STATE_FIXED
    q = p + 2 * n
    socs = s.cell_soc_cpct
    utils = s.cell_util_dmAhg
    for k in range(n):
        v = socs[k]
        o[p] = v & 0xFF
        o[p + 1] = (v >> 8) & 0xFF
        v = utils[k]
        o[q] = v & 0xFF
        o[q + 1] = (v >> 8) & 0xFF
        p += 2
        q += 2
    return STATE_FIXED + 4 * n


def _i16(v):
    """v within an i16 (-32768 is kept for "none")."""
    return -32768 if v < -32768 else (32767 if v > 32767 else v)


def get_u32_small(b, off):
    """A u32 field with bits 30 and 31 ignored (a small int on every port)."""
    return get_u16(b, off) | ((get_u16(b, off + 2) & 0x3FFF) << 16)

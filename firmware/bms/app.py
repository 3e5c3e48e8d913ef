"""Protocol state machine of the firmware, sans I/O (docs/protocol.md).

The main loop hands it received bytes and the firmware clock (`ticks_ms`); it
validates each frame (sequence, time, payload), drives `Bms`, and leaves one
reply at a time in `out[:out_len]` for the main loop to write. It returns an
action code when the main loop must leave (REPL) or reset. Nothing it does
on a bad frame touches a switch or the configuration.

The protocol is half duplex (one reply per request), so the reply is built in
the parser's own buffer: every handler has read what it needs from the request
before it writes the reply, and receive() takes no further byte until the main
loop has written the reply out. One frame buffer instead of two saves its size
in heap.

Current is positive on discharge in every frame and attribute.
"""

from array import array

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:

    def const(x):
        return x


try:
    from time import ticks_diff  # pyright: ignore[reportAssignmentType]
except ImportError:

    def ticks_diff(a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000


from bms import codec, forget
from bms.crc16 import INIT, crc16

FW_VERSION = "0.1.0"
_PROTOCOL_VERSION = const(1)
_MAX_DT_MS = const(0x3FFFFFFF)  # a longer gap between samples is clamped (about 12 days)
_DEFAULT_LINK_TIMEOUT_MS = const(2000)
# CLEAR_LATCHED reason codes (docs/protocol.md): 2 inspected, 3 cell replaced, 4 sensor
# repaired, 5 test. 0 and 1 are no reasons: the fault log's event field keeps them for
# "released" and "set".
_REASON_MIN = const(2)
_REASON_MAX = const(5)

ACT_NONE = const(0)
ACT_REPL = const(1)  # ENTER_REPL or Ctrl-C: shut down, return to the REPL
ACT_RESET = const(2)  # RESET: shut down, soft-reset

_ERROR_TEXT = (
    b"",
    b"crc",
    b"version",
    b"length",
    b"type",
    b"seq",
    b"time",
    b"payload",
    b"timeout",
    b"busy",
    b"memory",
)


class NoIO:
    """Board I/O for a board with no switches (the virtual board)."""

    def apply(self, chg_on, dsg_on, balance):
        pass

    def open_all(self):
        pass


class App:
    def __init__(
        self,
        bms,
        cfg,
        io=None,
        *,
        board_name="unknown",
        config_flags=0,
        config_path="bms_config.json",
        link_mode=True,
        now_ms,
    ):
        self.bms = bms
        self.cfg = cfg
        self.io = io if io is not None else NoIO()
        self.config_path = config_path
        self.link_mode = link_mode
        self.parser = codec.Parser()
        self.out = self.parser.buf  # shared: see the module docstring
        self.out_len = 0
        self.action = ACT_NONE
        self.sample = codec.Sample()
        # standalone mode: the adapter measures into these
        self.cell_mV = self.sample.cell_mV
        self.temp_ddegC = self.sample.temp_ddegC
        self.bad_frames = 0
        # rejections per reason code (index = E_*), saturating at 65535
        self.rejects = array("H", bytes(2 * 11))
        self.have_seq = False
        self.last_seq = 0
        self.have_time = False
        self.t_hi = 0
        self.t_lo = 0
        self.link_timeout_ms = getattr(cfg, "link_timeout_ms", _DEFAULT_LINK_TIMEOUT_MS)
        self.link_lost = False
        self.last_sample_ms = now_ms
        self.boot_flags = (getattr(bms, "boot_flags", 0) | config_flags) & 0xFF
        self.ident = (FW_VERSION + " " + board_name).encode()
        self._config_changed()
        # The handler of each request type, indexed by type; None: no such request (0x00 is
        # reserved). Bound methods made once here: calling one from the tuple allocates
        # nothing (tests/firmware/test_app.py measures the SAMPLE path).
        handlers = {
            codec.T_HELLO: self._on_hello,
            codec.T_SAMPLE: self._on_sample,
            codec.T_GET_STATE: self._on_get_state,
            codec.T_CONFIG_READ: self._on_config_read,
            codec.T_CONFIG_WRITE: self._on_config_write,
            codec.T_CLEAR_LATCHED: self._on_clear_latched,
            codec.T_ENTER_REPL: self._on_enter_repl,
            codec.T_RESET: self._on_reset,
            codec.T_FAULT_LOG: self._on_fault_log,
            codec.T_SAVE: self._on_save,
        }
        self._handlers = tuple(handlers.get(t) for t in range(max(handlers) + 1))

    def config_payload(self):
        """The CONFIG reply's payload, made on demand (kept, it would hold ~2 KB of heap)."""
        from bms import commands

        try:
            return commands.config_json(self.cfg.as_dict())
        finally:
            forget("commands")

    def _config_changed(self):
        text = self.config_payload()
        self.config_crc = crc16(text, 0, len(text), INIT)
        self.link_timeout_ms = getattr(self.cfg, "link_timeout_ms", self.link_timeout_ms)

    # -- bytes in --------------------------------------------------------
    def receive(self, data, i, n, now_ms):
        """Consume data[i:n] until a reply is ready or an action is due; return the next index.

        After each call write out[:out_len] if out_len, then clear out_len;
        stop reading when `action` is not ACT_NONE.
        """
        parser = self.parser
        while i < n and not self.out_len and not self.action:
            i = parser.feed(data, i, n, now_ms)
            ev = parser.event
            if ev == codec.EV_FRAME:
                self._frame(now_ms)
            elif ev == codec.EV_ERROR:
                self._reject(parser.error)
            elif ev == codec.EV_TIMEOUT:
                self._count(codec.E_TIMEOUT)
            elif ev == codec.EV_CTRL_C:
                self.action = ACT_REPL
        return i

    def tick(self, now_ms):
        """Call while the line is idle: drops a stalled partial frame, runs the link watchdog."""
        if self.parser.tick(now_ms):
            self._count(codec.E_TIMEOUT)
        if (
            self.link_mode
            and not self.link_lost
            and ticks_diff(now_ms, self.last_sample_ms) > self.link_timeout_ms
        ):
            self.link_lost = True
            bms = self.bms
            bms.set_link_lost(True)
            self.io.apply(bms.chg_on, bms.dsg_on, bms.balance)

    # -- replies ---------------------------------------------------------
    def _count(self, code):
        if self.bad_frames < 0xFFFF:
            self.bad_frames += 1
        if self.rejects[code] < 0xFFFF:
            self.rejects[code] += 1

    def _reject(self, code):
        self._count(code)
        out = self.out
        ftype = self.parser.ftype
        if ftype & codec.REPLY or ftype == codec.T_BOOT:
            # A firmware-to-host type coming in means the line echoes our own frames:
            # answering would loop forever, so it is only counted.
            return
        out[codec.HEADER] = code
        end = codec.put_bytes(out, codec.HEADER + 1, _ERROR_TEXT[code])
        self.out_len = codec.finish(out, codec.T_ERROR, self.parser.seq, end - codec.HEADER)

    def _reply(self, ftype, length):
        self.out_len = codec.finish(self.out, ftype | codec.REPLY, self.parser.seq, length)

    def _reply_bytes(self, ftype, status, text):
        out = self.out
        off = codec.HEADER
        if status >= 0:
            out[off] = status
            off += 1
        room = codec.FRAME_MAX - 2 - off
        if len(text) > room:
            text = text[:room]
        end = codec.put_bytes(out, off, text)
        self._reply(ftype, end - codec.HEADER)

    def hello_payload(self, out, off):
        """Write the HELLO_REPLY/BOOT payload at out[off:]; return its length."""
        out[off] = _PROTOCOL_VERSION
        out[off + 1] = self.cfg.n_cells
        out[off + 2] = self.cfg.n_temps
        out[off + 3] = self.boot_flags
        codec.put_u32(out, off + 4, self.config_crc)
        return codec.put_bytes(out, off + 8, self.ident) - off

    def boot_frame(self):
        """Leave the unsolicited BOOT frame (seq 0) in out[:out_len]."""
        self.out_len = codec.finish(
            self.out, codec.T_BOOT, 0, self.hello_payload(self.out, codec.HEADER)
        )

    def _frame(self, now_ms):
        """A frame with a good CRC and version: type, then seq (HELLO accepts any), then the
        handler checks the payload (and a SAMPLE the time) and replies."""
        p = self.parser
        ftype = p.ftype
        handlers = self._handlers
        handler = handlers[ftype] if ftype < len(handlers) else None
        if handler is None:
            self._reject(codec.E_TYPE)
            return
        if ftype != codec.T_HELLO and self.have_seq and ((self.last_seq - p.seq) & 0xFFFF) < 0x8000:
            self._reject(codec.E_SEQ)
            return
        handler(ftype, now_ms)

    def _accept(self):
        self.have_seq = True
        self.last_seq = self.parser.seq

    def _accept_empty(self):
        """A request that carries no payload: accept it, or reject one that does."""
        if self.parser.length:
            self._reject(codec.E_PAYLOAD)
            return False
        self._accept()
        return True

    def _on_hello(self, ftype, now_ms):
        if self._accept_empty():
            self.have_time = False
            self._reply(ftype, self.hello_payload(self.out, codec.HEADER))

    def _on_get_state(self, ftype, now_ms):
        if self._accept_empty():
            self._state(ftype)

    def _on_config_read(self, ftype, now_ms):
        if self._accept_empty():
            self._reply_bytes(ftype, -1, self.config_payload())

    def _on_clear_latched(self, ftype, now_ms):
        """u8 reason (_REASON_MIN.._REASON_MAX), u32 mask of latched bits to clear."""
        p = self.parser
        buf = p.buf
        reason = buf[codec.HEADER]
        if p.length != 5 or reason < _REASON_MIN or reason > _REASON_MAX:
            self._reject(codec.E_PAYLOAD)
            return
        self._accept()
        cleared = self.bms.clear_latched(reason, codec.get_u32_small(buf, codec.HEADER + 1))
        codec.put_u32(self.out, codec.HEADER, cleared)
        self._reply(ftype, 4)

    def _on_enter_repl(self, ftype, now_ms):
        if self._accept_empty():
            self._reply(ftype, 0)
            self.action = ACT_REPL

    def _on_reset(self, ftype, now_ms):
        if self._accept_empty():
            self._reply(ftype, 0)
            self.action = ACT_RESET

    def _on_fault_log(self, ftype, now_ms):
        if self._accept_empty():
            from bms import commands

            try:
                self._reply_bytes(ftype, -1, commands.fault_log_json(self.bms.fault_log))
            finally:
                forget("commands")

    def _on_save(self, ftype, now_ms):
        if self._accept_empty():
            try:
                self.bms.save()
                status = 0
            except OSError:
                status = 1
            self.out[codec.HEADER] = status
            self._reply(ftype, 1)

    def _on_config_write(self, ftype, now_ms):
        from bms import commands

        try:
            commands.config_write(self)
        finally:
            forget("commands")

    def _on_sample(self, ftype, now_ms):
        if not self.link_mode:
            self._reject(codec.E_BUSY)
            return
        p = self.parser
        smp = self.sample
        if smp.decode(p.buf, codec.HEADER, p.length) or smp.n_cells != self.cfg.n_cells:
            self._reject(codec.E_PAYLOAD)
            return
        t_hi = smp.t_hi
        t_lo = smp.t_lo
        if self.have_time:
            dt_ms = self._interval_ms(t_hi, t_lo)
            if dt_ms < 0:
                self._reject(codec.E_TIME)
                return
        else:
            dt_ms = 0  # first sample of a session: nothing to integrate yet
        self._accept()
        self.have_time = True
        self.t_hi = t_hi
        self.t_lo = t_lo
        self.last_sample_ms = now_ms
        bms = self.bms
        if self.link_lost:
            self.link_lost = False
            bms.set_link_lost(False)
        bms.step(dt_ms, smp.cell_mV, smp.n_cells, smp.current_mA, smp.temp_ddegC, smp.n_temps)
        self.io.apply(bms.chg_on, bms.dsg_on, bms.balance)
        self._state(ftype)

    def _interval_ms(self, t_hi, t_lo):
        """Milliseconds from the last accepted sample's t_ms to t_hi:t_lo, or -1 if that is not
        after it. t_ms is a u32 that wraps: the difference modulo 2**32 is forward when it is
        1..2**31 - 1 and a repeat or time going back otherwise (as seq is modulo 2**16).
        Worked on 16-bit halves so every value stays a small int on 32-bit ports; an interval
        of 2**30 ms or more (12.4 days) comes back as _MAX_DT_MS (the Bms clamps it anyway)."""
        d_lo = t_lo - self.t_lo
        d_hi = t_hi - self.t_hi
        if d_lo < 0:
            d_lo += 0x10000
            d_hi -= 1
        d_hi &= 0xFFFF
        if d_hi >= 0x8000 or (d_hi == 0 and d_lo == 0):
            return -1
        if d_hi >= 0x4000:
            return _MAX_DT_MS
        return (d_hi << 16) + d_lo

    def local_sample(self, dt_ms, current_mA, n, nt, now_ms):
        """Standalone mode: the board measured cell_mV/temp_ddegC itself; step the Bms."""
        self.t_lo = now_ms & 0xFFFF
        self.t_hi = (now_ms >> 16) & 0xFFFF
        self.have_time = True
        bms = self.bms
        bms.step(dt_ms, self.cell_mV, n, current_mA, self.temp_ddegC, nt)
        self.io.apply(bms.chg_on, bms.dsg_on, bms.balance)

    def _state(self, ftype):
        bms = self.bms
        n = self.cfg.n_cells
        length = codec.put_state(
            self.out, codec.HEADER, self.t_hi, self.t_lo, bms, self.bad_frames, n
        )
        self._reply(ftype, length)

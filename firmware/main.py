"""Firmware entry point: reads board.json, picks the board adapter, serves the protocol.

Runs on the board after boot.py, and as `micropython main.py` in a virtual
board. The serial link is the REPL's own stdin/stdout, so Ctrl-C is disabled
while it runs (payload bytes may be 0x03) and given back before it returns
to the REPL: on ENTER_REPL, or on the deliberate break mpremote sends
(codec.BreakDetector: CR, 0x03 after a pause, then CR or 0x03). No other byte
sequence ends the loop, whatever noise the line carries.
"""

import gc
import json
import select
import sys
import time

import micropython
from bms import codec
from bms import config as bms_config
from bms.app import ACT_NONE, ACT_REPL, ACT_RESET, App
from bms.core import Bms
from bms.fastpath import read_ready

# Exit status of the unix port asking its supervisor (the virtual board) for a soft reset.
SOFT_RESET_EXIT = 94
IDLE_POLL_MS = 20

BOARD_DEFAULTS = {"name": "unknown", "mcu": "unix", "mode": "link", "pins": {}, "wdt_timeout_ms": 0}


def load_board(path="board.json"):
    board = dict(BOARD_DEFAULTS)
    try:
        with open(path) as f:
            loaded = json.load(f)
        if isinstance(loaded, dict):
            board.update(loaded)
    except (OSError, ValueError):
        pass  # an unreadable board file leaves a switchless link board: the safe choice
    return board


def make_io(board):
    mcu = board.get("mcu")
    if board.get("mode") == "standalone" and mcu == "rp2040":
        from adapters.rp2040 import Rp2040Board

        return Rp2040Board(board)
    if board.get("mode") == "standalone" and mcu == "esp32":
        from adapters.esp32 import Esp32Board

        return Esp32Board(board)
    from adapters.link import LinkBoard

    return LinkBoard(board)


def setup(board_path="board.json", config_path="bms_config.json"):
    """Everything before the loop; returns (app, io, board), board with the keys serve() and
    soft_reset() read."""
    board = load_board(board_path)
    cfg, cfg_flags = bms_config.load(config_path)
    bms = Bms(cfg)
    io = make_io(board)
    app = App(
        bms,
        cfg,
        io,
        board_name=board.get("name", "unknown"),
        config_flags=cfg_flags,
        config_path=config_path,
        link_mode=board.get("mode", "link") != "standalone",
        now_ms=time.ticks_ms(),
    )
    # the loop and the reset need two keys: the rest of board.json need not stay in the heap
    board = {"mcu": board.get("mcu"), "sample_period_ms": board.get("sample_period_ms", 1000)}
    gc.collect()
    return app, io, board


class Console:
    """The board's USB serial port: the REPL's own stdin and stdout, in binary."""

    def __init__(self):
        self.stdout = sys.stdout.buffer
        poller = select.poll()
        poller.register(sys.stdin, select.POLLIN)
        self.one = bytearray(1)
        # bound once: making a bound method allocates (they keep the poller and stdin)
        self.ipoll = poller.ipoll
        self.stdin_readinto = sys.stdin.buffer.readinto
        # The virtual board's stdin can return what is waiting while no interrupt
        # character is set (after kbd_intr(-1)): one read for a whole frame. Only its ROM
        # has nonblocking_stdin; elsewhere bool() gives False.
        self.bulk = getattr(micropython, "nonblocking_stdin", bool)()

    def ready(self, timeout_ms):
        """True when a byte is waiting (within timeout_ms)."""
        for _ in self.ipoll(timeout_ms):  # ipoll reuses its tuple: no allocation
            return True
        return False

    def readinto(self, buf, off, n):
        """After ready(): what the line holds, up to n bytes, into buf[off:]; their count,
        or -1 at the end of input (0 only on the bulk path, when the byte ready() saw was
        gone after all).

        sys.stdin's readinto waits for the full count on every port (the unix FileIO as
        the chips' USB/UART stdin), and none tells how many bytes are waiting: a read of
        the header, then of the rest of the frame, would wait forever for a frame cut
        short, and neither the stall timeout nor the link watchdog would run. So the bytes
        are taken one by one while the poller says one is waiting, in one call (machine
        code where the port has an emitter: bms.fastpath). Where stdin does not wait
        (self.bulk), one readinto takes what is there, into buf at offset 0: a slice for
        another offset would allocate.
        """
        if self.bulk and not off:
            k = self.stdin_readinto(buf, n)
            if k is None:
                return 0  # nothing after all (EAGAIN)
            return k if k else -1
        return read_ready(self.ipoll, self.stdin_readinto, self.one, buf, off, n)

    def write(self, buf, n):
        self.stdout.write(buf, n)


def serve(app, io, board, line=None, ticks_ms=time.ticks_ms):
    """The loop; returns the action that ended it (ACT_REPL or ACT_RESET).

    `line` is the serial port (a Console unless given: anything with its three
    methods, ready, readinto and write) and `ticks_ms` the firmware clock.
    """
    if line is None:
        line = Console()
    rx = bytearray(64)
    rx_len = len(rx)
    period_ms = board.get("sample_period_ms", 1000)
    standalone = not app.link_mode
    n_cells = app.cfg.n_cells
    n_temps = app.cfg.n_temps
    last_sample = ticks_ms()
    parser = app.parser
    # 0x03 is data: only a deliberate break returns to the REPL
    parser.intr = -1
    brk = codec.BreakDetector(last_sample)
    app.boot_frame()
    line.write(app.out, app.out_len)
    app.out_len = 0
    watching = False
    while True:
        io.feed_wdt()
        n = 0
        t = ticks_ms()
        if not line.ready(0):
            brk.quiet(t, parser.hunting())  # t was read before the check: empty then
        if line.ready(IDLE_POLL_MS):
            # While a break may be starting, its bytes are read and timed one at a time,
            # and what follows the one that completes it (mpremote's Ctrl-A) stays unread,
            # for the REPL; otherwise the detector needs only the time of the read.
            watching = brk.watching()
            n = line.readinto(rx, 0, 1 if watching else rx_len)
            if n < 0:
                return app.action or ACT_REPL  # end of input: nobody is listening
        now = ticks_ms()
        if n:
            if not watching:
                brk.read(now)
            elif brk.byte(rx[0], now):
                return ACT_REPL
        i = 0
        while i < n:
            try:
                i = app.receive(rx, i, n, now)
            except MemoryError:
                if parser.ftype == codec.T_SAMPLE:
                    raise  # the sample path allocates nothing: this is a bug, fail safe
                # A rare request the heap left cannot serve (a CONFIG_WRITE nested too deep
                # for json.loads, or the rare commands' module failing to load on a crowded
                # heap): refused with E_MEMORY, so the host
                # learns why and may retry (app.rejects counts it); the rest of this read
                # is dropped, as if lost on the line. Never the end. The reply is built in
                # the frame buffer, which costs no heap.
                app.out_len = 0
                gc.collect()
                app._reject(codec.E_MEMORY)
                i = n
            if app.out_len:
                line.write(app.out, app.out_len)
                app.out_len = 0
            if app.action != ACT_NONE:
                return app.action
        app.tick(now)
        if standalone and time.ticks_diff(now, last_sample) >= period_ms:
            dt_ms = time.ticks_diff(now, last_sample)
            last_sample = now
            current_mA = io.measure(app.cell_mV, n_cells, app.temp_ddegC, n_temps)
            app.local_sample(dt_ms, current_mA, n_cells, n_temps, now)


def soft_reset(board):
    if board.get("mcu") == "unix":
        # the unix port's machine.soft_reset raises a bare SystemExit (status 0); the
        # virtual board's supervisor restarts the interpreter on this status instead
        sys.exit(SOFT_RESET_EXIT)
    import machine

    machine.soft_reset()


def main():
    app, io, board = setup()
    micropython.kbd_intr(-1)
    try:
        action = serve(app, io, board)
    finally:
        # whatever ended the loop (even an exception), the pack is left safe: the switches
        # open first, whatever the save after does
        io.open_all()
        try:
            app.bms.shutdown()
        finally:
            micropython.kbd_intr(3)
    if action == ACT_RESET:
        soft_reset(board)


if __name__ == "__main__":
    main()

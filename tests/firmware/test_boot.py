"""A whole boot of firmware/main.py under MicroPython over a real pseudo-terminal, via pyserial."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from host.firmware_config import firmware_rules
from host.image import SOURCE_ONLY, compile_module
from host.protocol.codec import (
    DecodeError,
    Decoder,
    ErrorCode,
    Frame,
    FrameType,
    crc16,
    decode_error,
    decode_hello,
    decode_state,
    encode_frame,
    encode_sample,
)
from tests.firmware.mpy import run_mpy
from tests.firmware.pty_board import FirmwareOnPty, provision

CONFIG = {"n_cells": 4, "n_temps": 1}
CELLS = [3700, 3701, 3699, 3702]


class Port:
    """pyserial on the pty slave plus a frame decoder."""

    def __init__(self, path: str) -> None:
        self.ser = serial.Serial(path, 115200, timeout=0.05)
        self.decoder = Decoder()
        self.frames: list[Frame | DecodeError] = []
        self.text = bytearray()

    def next(self, timeout_s: float = 5.0) -> Frame:
        deadline = time.monotonic() + timeout_s
        while not self.frames:
            if time.monotonic() > deadline:
                raise AssertionError(f"no frame within {timeout_s} s; got {bytes(self.text)!r}")
            # read(n) waits for n bytes or the timeout: ask for what is there, at least 1
            data = self.ser.read(max(1, self.ser.in_waiting))
            self.text += data
            self.frames += self.decoder.feed(data)
        item = self.frames.pop(0)
        assert isinstance(item, Frame), item
        return item

    def ask(self, ftype: int, seq: int, payload: bytes = b"") -> Frame:
        self.ser.write(encode_frame(ftype, seq, payload))
        reply = self.next()
        assert reply.seq == seq
        return reply

    def read_until(self, marker: bytes, timeout_s: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout_s
        while marker not in self.text and time.monotonic() < deadline:
            self.text += self.ser.read(max(1, self.ser.in_waiting))
        return bytes(self.text)


@pytest.fixture
def flash(tmp_path: Path) -> Path:
    provision(tmp_path / "flash", CONFIG)
    return tmp_path / "flash"


def test_boot_hello_sample_config_and_bad_frames(flash: Path) -> None:
    with FirmwareOnPty(flash) as fw:
        port = Port(fw.port)
        boot = port.next()
        assert (boot.ftype, boot.seq) == (FrameType.BOOT, 0), fw.stderr()
        hello = decode_hello(boot.payload)
        assert (hello.n_cells, hello.n_temps, hello.board_name) == (4, 1, "pty-test")
        assert "STATE_MISSING" in hello.boot_flags

        reply = port.ask(FrameType.HELLO, 1)
        assert reply.ftype == FrameType.HELLO_REPLY and decode_hello(reply.payload) == hello

        reply = port.ask(FrameType.SAMPLE, 2, encode_sample(1000, CELLS, 500, [250]))
        state = decode_state(reply.payload)
        assert reply.ftype == FrameType.STATE and state.t_ms == 1000
        assert state.chg_on and state.dsg_on and state.samples == 1 and state.faults == ()
        assert (state.min_cell_mV, state.max_cell_mV) == (3699, 3702)

        reply = port.ask(FrameType.CONFIG_READ, 3)
        config = json.loads(reply.payload)
        assert reply.ftype == FrameType.CONFIG and config["n_cells"] == 4
        assert crc16(reply.payload) == hello.config_crc

        bad = bytearray(encode_frame(FrameType.SAMPLE, 4, encode_sample(2000, CELLS, 500, [250])))
        bad[9] ^= 0xFF
        port.ser.write(bytes(bad))
        reply = port.next()
        err = decode_error(reply.payload)
        assert (reply.ftype, reply.seq, err.code) == (FrameType.ERROR, 4, ErrorCode.E_CRC)

        # the same sample intact is accepted; the bad one is counted
        reply = port.ask(FrameType.SAMPLE, 5, encode_sample(2000, CELLS, 500, [250]))
        state = decode_state(reply.payload)
        assert state.bad_frames == 1 and state.samples == 2 and state.chg_on

        # a frame split over writes with pauses shorter than the stall timeout still works
        raw = encode_frame(FrameType.GET_STATE, 6)
        for b in raw:
            port.ser.write(bytes([b]))
            time.sleep(0.005)
        assert port.next().ftype == FrameType.GET_STATE_REPLY

        reply = port.ask(FrameType.ENTER_REPL, 7)
        assert reply.ftype == FrameType.ENTER_REPL_REPLY
        assert fw.wait() == 0, fw.stderr()
        port.ser.close()
    saved = json.loads((flash / "bms_state.json").read_text())
    assert saved["cycle_count"] == 0  # shutdown persisted the state


def test_enter_repl_gives_a_working_repl(flash: Path) -> None:
    with FirmwareOnPty(flash, repl_after=True) as fw:
        port = Port(fw.port)
        port.next()  # BOOT
        assert port.ask(FrameType.ENTER_REPL, 1).ftype == FrameType.ENTER_REPL_REPLY
        assert b">>> " in port.read_until(b">>> "), fw.stderr()
        port.ser.write(b"print(6 * 7)\r")
        assert b"42" in port.read_until(b"42")
        port.ser.write(b"\x04")  # Ctrl-D leaves the unix REPL
        assert fw.wait() == 0
        port.ser.close()


def test_ctrl_c_between_frames_returns_to_the_repl(flash: Path) -> None:
    with FirmwareOnPty(flash, repl_after=True) as fw:
        port = Port(fw.port)
        port.next()
        # a frame full of 0x03 bytes is data, not Ctrl-C
        reply = port.ask(FrameType.SAMPLE, 0x0303, encode_sample(0x0303, CELLS, 0x0303, [0x303]))
        assert reply.ftype == FrameType.STATE
        # mpremote's break: after a pause, CR 0x03, then CR (its CR Ctrl-A, without the
        # Ctrl-A: this unix REPL has no raw mode)
        time.sleep(0.5)
        port.ser.write(b"\r\x03")
        port.ser.write(b"\r")
        assert b">>> " in port.read_until(b">>> "), fw.stderr()
        port.ser.write(b"\x04")
        assert fw.wait() == 0
        assert (flash / "bms_state.json").exists()
        port.ser.close()


def test_reset_exits_with_the_soft_reset_status(flash: Path) -> None:
    with FirmwareOnPty(flash) as fw:
        port = Port(fw.port)
        port.next()
        assert port.ask(FrameType.RESET, 1).ftype == FrameType.RESET_REPLY
        assert fw.wait() == 94, fw.stderr()
        port.ser.close()
    assert (flash / "bms_state.json").exists()


def test_link_watchdog_opens_switches_without_samples(flash: Path) -> None:
    provision_cfg = {**CONFIG, "link_timeout_ms": 200}
    (flash / "bms_config.json").write_text(json.dumps(provision_cfg))
    with FirmwareOnPty(flash) as fw:
        port = Port(fw.port)
        port.next()
        state = decode_state(
            port.ask(FrameType.SAMPLE, 1, encode_sample(10, CELLS, 0, [250])).payload
        )
        assert state.chg_on
        time.sleep(0.5)
        state = decode_state(port.ask(FrameType.GET_STATE, 2).payload)
        assert "LINK_LOST" in state.faults and not state.chg_on and not state.dsg_on
        state = decode_state(
            port.ask(FrameType.SAMPLE, 3, encode_sample(20, CELLS, 0, [250])).payload
        )
        assert "LINK_LOST" not in state.faults and state.chg_on
        port.ser.write(encode_frame(FrameType.ENTER_REPL, 4))
        assert fw.wait() == 0
        port.ser.close()


HEAP_BUDGET_B = 64 * 1024  # the limit for a board
# docs/internals.md "Heap budget": a kilobyte kept free for the next feature, not spent
HEAP_MARGIN_B = 1024
# A 64-bit port holds every pointer, object header and qstr entry at twice a board's size:
# there the figures are only bounded (by 1.5 x), the budget is judged on a 32-bit port
# (SISNBMS_MICROPYTHON=<the unix-32 build>, as CI runs the firmware suite).
WORD64_FACTOR = 1.5


def _interpreter_arch() -> str:
    """The .mpy architecture of the interpreter under test (x64 or x86, by its word size)."""
    return "x64" if int(run_mpy("import sys\nprint(1 if sys.maxsize > 2**32 else 0)")) else "x86"


def _compile_to_mpy(flash: Path) -> None:
    """What `sisnbms flash` puts on a board: .mpy modules for its architecture (the machine
    code of bms/native.py runs only there), main.py and boot.py as source. Compiled by the
    flasher's own compile_module: each module named by its path on the board, as in its
    tracebacks (named by the path on this machine instead, the 30 modules' names took
    1.3 KB more of the heap)."""
    arch = _interpreter_arch()
    with tempfile.TemporaryDirectory() as tmp:
        for src in sorted(flash.rglob("*.py")):
            rel = src.relative_to(flash).as_posix()
            if rel in SOURCE_ONLY:
                continue
            src.with_suffix(".mpy").write_bytes(compile_module(src, rel, arch, Path(tmp)))
            src.unlink()


# A board runs the .mpy files; from source every local name is interned as a qstr too,
# and the interpreter grows its qstr pool in steps of several KB: a bound, not a budget.
SOURCE_BOUND_B = 80 * 1024


def largest_config() -> dict[str, object]:
    """The largest configuration the firmware accepts: the most cells, temperature sensors
    and fault-log entries, every table at its longest (the defaults' curves resampled)."""
    rules = firmware_rules()
    config: dict[str, object] = {
        key: rules.LIMITS[key][1] for key in ("n_cells", "n_temps", "fault_log_len")
    }
    for (_, longest), axis, *columns in rules._TABLE_GROUPS:
        x = rules.DEFAULTS[axis[0]]
        grid = np.linspace(x[0], x[-1], longest).round().astype(int)
        config[axis[0]] = grid.tolist()
        for column in columns:
            y = np.interp(grid, x, rules.DEFAULTS[column[0]])
            config[column[0]] = y.round().astype(int).tolist()
    assert rules.validate({**rules.DEFAULTS, **config}) is None
    return config


@pytest.mark.parametrize(
    ("form", "size"), [("mpy", "4 cells"), ("source", "4 cells"), ("mpy", "largest")]
)
def test_heap_after_boot_and_in_operation(tmp_path: Path, form: str, size: str) -> None:
    """Heap in use after boot and after serving frames: <= 64 KB on a 32-bit port (the
    chips' object model), measured as a board runs the firmware (the .mpy files `sisnbms
    flash` installs) and, for information, from source (as the virtual board runs it).
    On the 64-bit unix port pointers, object headers and qstr-pool entries are twice a
    board's: there the figures are only bounded. Run with -s to see the numbers.

    The 4-cell board keeps HEAP_MARGIN_B free; the largest configuration the firmware
    accepts (16 cells, 8 sensors, 64 log entries, the longest tables) must fit the budget.
    """
    config = CONFIG if size == "4 cells" else largest_config()
    n, n_temps = int(config["n_cells"]), int(config["n_temps"])  # type: ignore[call-overload]
    flash = tmp_path / "flash"
    provision(flash, config)
    if form == "mpy":
        _compile_to_mpy(flash)
    out = run_mpy(
        """
        import gc, sys, struct
        sys.path.insert(0, ".")
        gc.collect()
        b0 = gc.mem_alloc()
        import main
        from bms import codec
        gc.collect()
        b1 = gc.mem_alloc()
        app, io, board = main.setup()
        gc.collect()
        b2 = gc.mem_alloc()
        tx = bytearray(codec.FRAME_MAX)
        def ask(ftype, seq, payload=b""):
            codec.put_bytes(tx, 7, payload)
            n = codec.finish(tx, ftype, seq, len(payload))
            i = 0
            while i < n:
                i = app.receive(tx, i, n, seq)
                app.out_len = 0
        ask(0x01, 1)
        for k in range(500):
            head = struct.pack("<IiB", 1000 * k + 1000, 800, N_CELLS)
            cells = [3700 + i % 3 for i in range(N_CELLS - 1)] + [3702 - k % 3]
            temps = struct.pack("<h", 250) * N_TEMPS
            ask(0x02, 2 + k, head + struct.pack("<%dHB" % N_CELLS, *cells, N_TEMPS) + temps)
        ask(0x04, 600)
        ask(0x09, 601)
        ask(0x05, 602, b'{"ov_mV": 4210}')
        ask(0x04, 603)
        del tx  # the test's own frame buffer is not the firmware's
        gc.collect()
        b3 = gc.mem_alloc()
        assert app.bms.samples == 500 and app.cfg.ov_mV == 4210
        print(b0, b1 - b0, b2 - b1, b2, b3, 8 if sys.maxsize > 2**32 else 4)
        """.replace("N_CELLS", str(n)).replace("N_TEMPS", str(n_temps)),
        cwd=flash,
        heap="512K",
    )
    base, imports, objects, after_boot, in_operation, word = (int(x) for x in out.split())
    if form == "source":
        budget = SOURCE_BOUND_B
    else:
        budget = HEAP_BUDGET_B - (HEAP_MARGIN_B if size == "4 cells" else 0)
    if word == 8:
        budget = int(budget * WORD64_FACTOR)
    print(
        f"\nheap ({word * 8}-bit port, {form}, {size}): interpreter {base} B, firmware imports "
        f"{imports} B, firmware objects {objects} B; in use after boot {after_boot} B, after "
        f"500 samples and config traffic {in_operation} B (limit {budget} B)"
    )
    assert after_boot <= budget, after_boot
    assert in_operation <= budget, in_operation


def test_a_boards_traceback_names_the_module_and_the_function(tmp_path: Path) -> None:
    """The modules a board runs are compiled without line numbers (host.image.MPY_OPT_LEVEL,
    for the heap); what a traceback from one still tells is the module's path on the board
    and the function."""
    src = tmp_path / "src.py"
    src.write_text("def settle(x):\n    y = x + 1\n    return 1 // (y - y)\n")
    board = tmp_path / "board"
    (board / "bms").mkdir(parents=True)
    mpy = compile_module(src, "bms/probe.py", _interpreter_arch(), tmp_path)
    (board / "bms" / "probe.mpy").write_bytes(mpy)
    out = run_mpy(
        """
        import sys
        sys.path.insert(0, ".")
        from bms import probe
        try:
            probe.settle(1)
        except ZeroDivisionError as e:
            sys.print_exception(e, sys.stdout)
        """,
        cwd=board,
    )
    assert 'File "bms/probe.py", line 1, in settle' in out, out


SERVE_MEASURED = """
import gc, sys, micropython
sys.path.insert(0, '.')
import main
app, io, board = main.setup()
gc.collect()
gc.disable()  # a collection would hide allocations
before = gc.mem_alloc()
micropython.kbd_intr(-1)
main.serve(app, io, board)
after = gc.mem_alloc()
micropython.kbd_intr(3)
sys.stderr.write('%d %d\\n' % (after - before, app.bms.samples))
"""


def serve_allocation(flash: Path, n_samples: int) -> int:
    """Bytes allocated by main.serve() (the real loop over a pty) for n SAMPLE frames."""
    with FirmwareOnPty(flash, script=SERVE_MEASURED) as fw:
        port = Port(fw.port)
        port.next()  # BOOT
        port.ask(FrameType.HELLO, 1)
        for k in range(n_samples):
            cells = [3700, 3701, 3699, 3702 - k % 3]
            reply = port.ask(
                FrameType.SAMPLE, 2 + k, encode_sample(1000 * k + 1000, cells, 800, [250])
            )
            assert reply.ftype == FrameType.STATE
        port.ask(FrameType.ENTER_REPL, 2 + n_samples)
        assert fw.wait() == 0
        delta, samples = (int(x) for x in fw.stderr().split())
        port.ser.close()
    assert samples == n_samples
    return delta


def test_serve_loop_allocates_nothing_per_sample(flash: Path) -> None:
    """poll + readinto + parse + app + Bms.step + encode + write: 0 bytes per SAMPLE frame."""
    config = {**CONFIG, "persist_interval_ms": 86400000, "persist_min_ms": 86400000}
    (flash / "bms_config.json").write_text(json.dumps(config))
    few = serve_allocation(flash, 20)
    many = serve_allocation(flash, 520)
    print(f"\nmain.serve(): {few} B once, {(many - few) / 500:.1f} B per SAMPLE frame")
    assert many == few

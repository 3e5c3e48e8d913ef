"""Scripts of bytes on the serial line, replayed into the firmware's own loop under MicroPython.

A `LineScript` is a list of bursts (the silence before each, its bytes, and the
reply it must draw, if any), written to a file that tests/firmware/mpylib/
linerig.py replays through main.serve() on a virtual clock. `run_script`
returns what the firmware did: whether it was still serving when the script
ended, the replies met and missed, switch decisions against the fault rules,
whether the configuration changed. Frames are built with the host's codec
(host/protocol/codec.py), which the shared vectors keep equal to the firmware's.

Current is positive on discharge.
"""

from __future__ import annotations

import json
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host.protocol.codec import (
    ClearReason,
    FrameType,
    encode_clear_latched,
    encode_frame,
    encode_sample,
)
from tests.firmware.bms_harness import MPYLIB
from tests.firmware.mpy import run_mpy
from tests.firmware.pty_board import UNIX_BOARD

CELLS = [3700, 3701, 3699, 3702]
CONFIG = {"n_cells": 4, "n_temps": 1}
PAUSE_MS = 150  # past the 100 ms that drops a stalled partial frame: a break may follow
BREAK_IDLE_MS = 30  # firmware/bms/codec.py: the pause before a break
HOST_TYPES = (
    FrameType.HELLO,
    FrameType.GET_STATE,
    FrameType.CONFIG_READ,
    FrameType.CLEAR_LATCHED,
    FrameType.ENTER_REPL,
    FrameType.RESET,
    FrameType.FAULT_LOG,
    FrameType.SAVE,
)


@dataclass
class LineScript:
    data: bytearray = field(default_factory=bytearray)
    bursts: int = 0
    expected: int = 0
    seq: int = 0  # the last seq handed out by next_seq()

    def burst(self, data: bytes, gap_ms: int = 0, expect: tuple[int, int] | None = None) -> None:
        """`data` arrives gap_ms after the previous burst; `expect` = (reply type, seq)."""
        rtype, rseq = expect if expect else (0, 0)
        self.data += struct.pack("<IBBHH", gap_ms, 1 if expect else 0, rtype, rseq, len(data))
        self.data += data
        self.bursts += 1
        self.expected += 1 if expect else 0

    def next_seq(self) -> int:
        """Sequence numbers for frames that must be accepted: 1, 2, ... 65535, 1, ..."""
        self.seq = self.seq % 65535 + 1
        return self.seq

    def probe(self, t_ms: int | None = None, clear: bool = False) -> None:
        """After a pause: HELLO (any seq is taken), CLEAR_LATCHED if `clear` and, with t_ms,
        a good SAMPLE; each must be answered, so the firmware is alive and back in step."""
        s = self.next_seq()
        self.burst(encode_frame(FrameType.HELLO, s), PAUSE_MS, (FrameType.HELLO_REPLY, s))
        if clear:
            s = self.next_seq()
            frame = encode_frame(FrameType.CLEAR_LATCHED, s, encode_clear_latched(ClearReason.TEST))
            self.burst(frame, 0, (FrameType.CLEAR_LATCHED_REPLY, s))
        if t_ms is not None:
            s = self.next_seq()
            frame = encode_frame(FrameType.SAMPLE, s, encode_sample(t_ms, CELLS, 500, [250]))
            self.burst(frame, 0, (FrameType.STATE, s))


DRIVER = """
import gc
import json
import main
from bms import codec
from linerig import boot, run, replay
app, sw, board = boot()
conf = app.config_payload()
ballast = None

def source(line):
    global ballast
    if FREE_HEAP:  # leave the firmware only about this much heap, as on a crowded board
        ballast = []
        gc.collect()
        # a contiguous 4 KB for the rig's own reads of the script's bursts, freed once the
        # ballast is in: the rig must not be the one that runs out
        reserve = bytearray(4096)
        size = 1024
        while size >= 16 and gc.mem_free() > FREE_HEAP + 4096 + 2 * size:
            try:
                ballast.append(bytearray(size))
            except MemoryError:
                size //= 2
        reserve = None
    return replay("line_script.bin", line)

action, line = run(app, sw, board, source)
ballast = None
gc.collect()
b = app.bms
print(json.dumps({
    "action": action, "done": line.done, "bytes": line.total, "replies": line.replies,
    "met": line.met, "missed": line.missed[:5], "n_missed": len(line.missed),
    "violations": sw.violations, "applies": sw.applies, "closed": sw.closed,
    "chg": sw.chg, "dsg": sw.dsg, "samples": b.samples, "faults": b.faults,
    "latched": b.latched, "saves": b.saves, "config_same": app.config_payload() == conf,
    "errors": line.types[0xFF], "virtual_ms": line.now, "error_codes": line.error_codes,
    "memory_refusals": app.rejects[codec.E_MEMORY],
}))
"""


def provision_line_board(folder: Path, config: dict[str, Any] | None = None) -> None:
    """board.json and bms_config.json in `folder`, as main.setup() reads them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "board.json").write_text(json.dumps(UNIX_BOARD))
    (folder / "bms_config.json").write_text(json.dumps(config or CONFIG))


def run_script(
    folder: Path,
    script: LineScript,
    timeout_s: float = 600.0,
    config: dict | None = None,
    free_heap: int = 0,
) -> dict[str, Any]:
    """Replay `script` into main.serve() under MicroPython in `folder`; the firmware's record.

    free_heap: leave the firmware only this many bytes of heap (0: the interpreter's 2 MB).
    """
    provision_line_board(folder, config)
    (folder / "line_script.bin").write_bytes(script.data)
    driver = f"FREE_HEAP = {free_heap}\n" + DRIVER
    out = run_mpy(driver, cwd=folder, timeout_s=timeout_s, extra_path=[MPYLIB])
    return json.loads(out.strip().splitlines()[-1])


def assert_served_throughout(rec: dict[str, Any], script: LineScript) -> None:
    """The firmware served to the end, answered every reply it owed, broke no switch rule."""
    assert rec["done"], f"main.serve() returned {rec['action']} before the script ended: {rec}"
    assert rec["n_missed"] == 0 and rec["met"] == script.expected, rec
    assert rec["violations"] == 0, rec
    assert rec["config_same"], rec


def noise_burst(rng: random.Random, gap_ms: int) -> bytes:
    """Random bytes, with the break's bytes and frame pieces salted in.

    A burst after a pause long enough to arm a break (BREAK_IDLE_MS, 30 ms) never begins
    with CR then 0x03, nor is a lone CR: with what follows, that may be mpremote's break itself
    (CR, 0x03, then CR or 0x03 as the first bytes after the pause), which random bursts
    form once in 2**23."""
    kind = rng.randrange(4)
    n = rng.randrange(1, 200)
    data = bytearray(rng.randbytes(n))
    if kind == 1:  # the break's bytes somewhere inside
        pos = rng.randrange(len(data) + 1)
        data[pos:pos] = rng.choice([b"\r\x03\r\x01", b"\r\x03\x03", b"\x03", b"\r\x03"])
    elif kind == 2:  # a frame with its sync byte damaged and 0x03 in it
        p = bytearray(encode_sample(rng.randrange(1 << 32), CELLS, 1000, [250]))
        p[rng.randrange(len(p))] = 0x03
        f = bytearray(encode_frame(FrameType.SAMPLE, rng.randrange(65536), bytes(p)))
        f[0] ^= 1 << rng.randrange(8)
        data = f + data if rng.randrange(2) else data + f
    elif kind == 3:  # a piece of a frame, sync byte and all
        f = encode_frame(rng.choice(HOST_TYPES), rng.randrange(65536), bytes(data[:20]))
        data = bytearray(f[: rng.randrange(1, len(f) + 1)])
    if gap_ms >= BREAK_IDLE_MS and data[0] == 0x0D and (len(data) == 1 or data[1] == 0x03):
        data[0] ^= 0x40  # a break could begin here, finished by the next burst or not
    return bytes(data)

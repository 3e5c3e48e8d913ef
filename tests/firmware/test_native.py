"""The frame path's machine code (firmware/bms/native.py) against its bytecode twins
(firmware/bms/portable.py), and the choice between them (firmware/bms/fastpath.py).

Under the real interpreter (unix-64 by default, the 32-bit build with SISNBMS_MICROPYTHON):
the unix ports have native emitters (x64, x86), so the firmware must run the viper
functions there, and they must give what the bytecode ones give, and the CRC what the
host's binascii.crc_hqx gives, over random data.
"""

from __future__ import annotations

import binascii
import json
import random
from pathlib import Path

from tests.firmware.bms_harness import firmware_module
from tests.firmware.mpy import run_mpy

FRAME_MAX = 2569


def test_the_unix_ports_run_the_machine_code() -> None:
    out = run_mpy(
        """
        from bms import codec, crc16, fastpath, native
        assert fastpath.NATIVE
        assert crc16.crc16 is native.crc16 and codec.copy is native.copy
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

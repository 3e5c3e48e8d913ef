"""The firmware codec (firmware/bms/codec.py) under real MicroPython, against the shared vectors
(made from docs/protocol.md by tests/vectors/spec.py, not by either codec)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.firmware.mpy import run_mpy

VECTORS_PATH = Path(__file__).parents[1] / "vectors" / "protocol_vectors.json"

CHECK = r"""
import json
from bms import codec
from bms.crc16 import crc16, INIT

V = json.loads(VECTORS)
def unhex(h):
    return bytes(int(h[i:i + 2], 16) for i in range(0, len(h), 2))

for c in V["crc"]:
    b = unhex(c["hex"])
    assert crc16(b, 0, len(b), INIT) == c["crc"], c

# the type and reason-code tables: requests, BOOT and ERROR by name, replies as request | REPLY
by_code = {code: name for name, code in V["types"].items()}
for name, code in V["types"].items():
    if hasattr(codec, "T_" + name):
        assert getattr(codec, "T_" + name) == code, name
    else:
        request = by_code[code & ~codec.REPLY]
        assert getattr(codec, "T_" + request) | codec.REPLY == code, name
for name, code in V["errors"].items():
    assert getattr(codec, name) == code, name

class Rec:
    pass

def check_sample(c, p):
    v = c["value"]
    s = codec.Sample()
    assert s.decode(p.buf, 7, p.length) == 0, c["name"]
    assert s.t_hi * 65536 + s.t_lo == v["t_ms"], c["name"]
    assert s.current_mA == v["current_mA"], c["name"]
    assert s.n_cells == v["n_cells"] and s.n_temps == v["n_temps"], c["name"]
    assert list(s.cell_mV[:s.n_cells]) == v["cell_mV"], c["name"]
    assert list(s.temp_ddegC[:s.n_temps]) == v["temp_ddegC"], c["name"]

def check_state(c, raw):
    v = c["value"]
    r = Rec()
    for k in v:
        setattr(r, k, v[k])
    r.chg_on = bool(v["flags"] & 1)
    r.dsg_on = bool(v["flags"] & 2)
    r.cap_learn_count = v["capacity_learned_count"]
    r.anode_mV = v["anode_potential_mV"]
    r.offset = Rec()
    r.offset.off_dmA = v["current_offset_dmA"]
    t = v["t_ms"]
    out = bytearray(codec.FRAME_MAX)
    ln = codec.put_state(out, 7, t >> 16, t & 0xFFFF, r, v["bad_frames"], v["n_cells"])
    n = codec.finish(out, c["type"], c["seq"], ln)
    assert bytes(out[:n]) == raw, c["name"]

n_checked = 0
for c in V["frames"]:
    raw = unhex(c["hex"])
    p = codec.Parser()
    i = p.feed(raw, 0, len(raw), 0)
    assert p.event == codec.EV_FRAME and i == len(raw), (c["name"], p.event, p.error)
    assert (p.ftype, p.seq, p.length) == (c["type"], c["seq"], len(raw) - 9), c["name"]
    payload = unhex(c["payload_hex"])
    assert bytes(p.buf[7:7 + p.length]) == payload, c["name"]
    out = bytearray(codec.FRAME_MAX)
    codec.put_bytes(out, 7, payload)
    n = codec.finish(out, c["type"], c["seq"], len(payload))
    assert bytes(out[:n]) == raw, c["name"]
    if c["kind"] == "SAMPLE":
        check_sample(c, p)
    elif c["kind"] == "STATE":
        check_state(c, raw)
    n_checked += 1

EV = {codec.EV_FRAME: "frame", codec.EV_ERROR: "error", codec.EV_CTRL_C: "ctrl_c"}
REASON = {codec.E_CRC: "E_CRC", codec.E_VERSION: "E_VERSION", codec.E_LENGTH: "E_LENGTH"}
for c in V["streams"]:
    raw = unhex(c["hex"])
    for chunk in (1, 3, len(raw) or 1):  # any chunking gives the same events
        p = codec.Parser()
        got = []
        for start in range(0, len(raw), chunk):
            end = min(start + chunk, len(raw))
            i = start
            while i < end:
                i = p.feed(raw, i, end, 0)
                if p.event:
                    e = {"event": EV[p.event]}
                    if p.event != codec.EV_CTRL_C:
                        e["type"] = p.ftype
                        e["seq"] = p.seq
                    if p.event == codec.EV_ERROR:
                        e["reason"] = REASON[p.error]
                    got.append(e)
        assert got == c["events"], (c["name"], chunk, got)
    n_checked += 1
print(n_checked)
"""


def test_firmware_codec_matches_vectors() -> None:
    vectors = json.loads(VECTORS_PATH.read_text())
    script = f"VECTORS = {json.dumps(json.dumps(vectors))}\n" + CHECK
    out = run_mpy(script)
    assert int(out.split()[-1]) == len(vectors["frames"]) + len(vectors["streams"])


def test_stalled_partial_frame_is_dropped_after_100_ms() -> None:
    out = run_mpy(
        """
        from bms import codec
        hello = bytes([0xA5, 1, 1, 1, 0, 0, 0, 0x55, 0x97])
        p = codec.Parser()
        p.feed(hello, 0, 4, 1000)
        assert p.event == codec.EV_NONE
        assert not p.tick(1100)           # 100 ms idle: still waiting
        assert p.tick(1101)               # 101 ms: dropped
        # the rest of the old frame is now noise; 0x03 between frames would be Ctrl-C
        i = p.feed(hello, 4, 9, 1102)
        assert p.event == codec.EV_NONE and i == 9
        p.feed(hello, 0, 4, 2000)
        i = p.feed(hello, 4, 9, 2200)    # the rest arrives too late: stall reported first
        assert p.event == codec.EV_TIMEOUT and i == 4
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_crc_and_parser_allocate_nothing() -> None:
    out = run_mpy(
        """
        import gc
        from bms import codec
        frame = bytes([0xA5, 1, 1, 1, 0, 0, 0, 0x55, 0x97]) * 4
        p = codec.Parser()
        out = bytearray(codec.FRAME_MAX)

        def run(count):  # locals: module-level names would grow the globals dict
            for k in range(count):
                i = 0
                while i < len(frame):
                    i = p.feed(frame, i, len(frame), k)
                codec.finish(out, 0x81, k, 40)

        run(3)
        gc.collect()
        before = gc.mem_alloc()
        run(2000)
        print(gc.mem_alloc() - before)
        """
    )
    assert int(out.strip()) == 0


def test_a_current_of_two_to_the_thirty_ma_either_way_is_refused() -> None:
    """docs/protocol.md: |current_mA| < 2^30, else E_PAYLOAD. -2^30 itself was taken (and
    clamped to the range's end) where +2^30 was refused."""
    out = run_mpy(
        """
import struct
from bms import codec
s = codec.Sample()
buf = bytearray(codec.FRAME_MAX)
for i_mA in (2**30, -(2**30), 2**31 - 1, -(2**31), 2**30 - 1, -(2**30) + 1, -65536, 0):
    p = struct.pack("<IiBHB", 1000, i_mA, 1, 3700, 0)
    buf[7:7 + len(p)] = p
    err = s.decode(buf, 7, len(p))
    print(i_mA, "E_PAYLOAD" if err == codec.E_PAYLOAD else (err or s.current_mA))
"""
    )
    got = dict(line.split() for line in out.strip().splitlines())
    for refused in (2**30, -(2**30), 2**31 - 1, -(2**31)):
        assert got[str(refused)] == "E_PAYLOAD", (refused, got)
    for taken in (2**30 - 1, -(2**30) + 1, -65536):
        assert got[str(taken)] == str(taken), (taken, got)
    assert got["0"] == "0"

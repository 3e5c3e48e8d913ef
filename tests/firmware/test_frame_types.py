"""Every frame type the host does not send is refused with E_TYPE and does nothing
(docs/protocol.md, Rejection), under MicroPython with the real App and Bms.

Issue 10 item 3: type 0x00 was executed as SAVE (app.py refused only types above
T_SAVE); the handler table refuses it with every other type that has no handler.
"""

from __future__ import annotations

from pathlib import Path

from tests.firmware.mpy import run_mpy

SCRIPT = """
import os
from bms import codec, config
from bms.app import ACT_NONE, App
from bms.core import Bms

class Switches:
    def __init__(self):
        self.calls = 0
    def apply(self, chg_on, dsg_on, balance):
        self.calls += 1
    def open_all(self):
        self.apply(False, False, 0)

cfg, flags = config.load("bms_config.json")
bms = Bms(cfg)
io = Switches()
app = App(bms, cfg, io, board_name="t", config_flags=flags, now_ms=0)
conf = app.config_payload()
fb = bytearray(codec.FRAME_MAX)

def send(ftype, seq, payload):
    codec.put_bytes(fb, 7, payload)
    n = codec.finish(fb, ftype, seq, len(payload))
    data = bytes(fb[:n])
    replies = []
    i = 0
    while i < n and not app.action:
        i = app.receive(data, i, n, 0)
        if app.out_len:
            o = app.out
            replies.append((o[2], o[3] | (o[4] << 8), o[7]))
            app.out_len = 0
    return replies

bad = []
seq = 1
for t in TYPES:
    for payload in (b"", b"x", b'{"ov_mV": 4210}'):
        seq += 1
        replies = send(t, seq, payload)
        if t & 0x80 or t == 0x40:
            want = []  # a type the firmware sends: the line echoes, never answered
        else:
            want = [(0xFF, seq, codec.E_TYPE)]
        if replies != want or app.action != ACT_NONE:
            bad.append((t, payload, replies, app.action))
        app.action = ACT_NONE
try:
    os.stat("bms_state.json")
    saved = True
except OSError:
    saved = False
print(len(bad), bms.saves, saved, io.calls, app.config_payload() == conf, app.have_seq, bad[:4])
"""


def _refused(tmp_path: Path, types: list[int]) -> str:
    out = run_mpy(f"TYPES = {types!r}\n" + SCRIPT, cwd=tmp_path)
    return out.strip()


def test_every_unknown_frame_type_is_refused_and_does_nothing(tmp_path: Path) -> None:
    # 0x06 is retired (CLEAR_FAULTS cleared latched faults without a reason)
    types = [0x06, *range(0x0C, 0x100)]
    out = _refused(tmp_path, types)
    # nothing bad, no save, no state file, no switch driven, same config, no frame accepted
    assert out.startswith("0 0 False 0 True False "), out


def test_frame_type_zero_is_refused_not_executed_as_save(tmp_path: Path) -> None:
    out = _refused(tmp_path, [0x00])
    assert out.startswith("0 0 False 0 True False "), out

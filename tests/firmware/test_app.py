"""The firmware's protocol state machine (bms/app.py) under real MicroPython with the real Bms.

Each test runs in a temporary folder standing for the board's flash (the Bms
writes bms_state.json, CONFIG_WRITE writes bms_config.json there).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.firmware.mpy import run_mpy

PRELUDE = textwrap.dedent(
    """
    import gc
    import json
    import struct
    from bms import codec, config
    from bms import faults as F
    from bms.app import ACT_NONE, ACT_REPL, ACT_RESET, App
    from bms.core import Bms

    class Switches:
        # records what the app drives on the board's GPIO
        def __init__(self):
            self.calls = 0
            self.chg = None
            self.dsg = None
        def apply(self, chg_on, dsg_on, balance):
            self.calls += 1
            self.chg = chg_on
            self.dsg = dsg_on
        def open_all(self):
            self.apply(False, False, 0)

    def make(n_cells=4, n_temps=1):
        cfg, flags = config.load("bms_config.json")
        err = cfg.update({"n_cells": n_cells, "n_temps": n_temps})
        assert err is None, err
        bms = Bms(cfg)
        io = Switches()
        app = App(bms, cfg, io, board_name="test", config_flags=flags, now_ms=0)
        return app, bms, cfg, io

    _fb = bytearray(codec.FRAME_MAX)

    def frame(ftype, seq, payload=b"", version=1):
        codec.put_bytes(_fb, 7, payload)
        n = codec.finish(_fb, ftype, seq, len(payload))
        _fb[1] = version
        if version != 1:  # re-seal so only the version is wrong
            c = codec.crc16(_fb, 1, n - 2, 0xFFFF)
            _fb[n - 2] = c & 0xFF
            _fb[n - 1] = c >> 8
        return bytes(_fb[:n])

    def sample(t_ms, cells, current_mA, temps=(250,)):
        return (
            struct.pack("<IiB", t_ms, current_mA, len(cells))
            + struct.pack("<%dH" % len(cells), *cells)
            + struct.pack("<B%dh" % len(temps), len(temps), *temps)
        )

    def send(app, data, now=0):
        # feed bytes; return the replies as (type, seq, payload) and the action
        replies = []
        i = 0
        while i < len(data) and not app.action:
            i = app.receive(data, i, len(data), now)
            if app.out_len:
                o = app.out
                n = app.out_len
                replies.append((o[2], o[3] | (o[4] << 8), bytes(o[7 : n - 2])))
                app.out_len = 0
        return replies

    def state_of(payload):
        v = struct.unpack("<IhHHHHHIIHHHHIiHHhHIIhhIHB", payload[:67])
        assert len(payload) == 67 + 4 * v[25]
        return {"t_ms": v[0], "soc_cpct": v[1], "flags": v[6], "faults": v[7], "latched": v[8],
                "bad_frames": v[12], "samples": v[13], "current_mA": v[14], "ccl_mA": v[19],
                "dcl_mA": v[20], "anode_mV": v[21], "n_cells": v[25]}

    GOOD = [3700, 3701, 3699, 3702]
    """
)


def mpy(body: str, cwd: Path) -> str:
    return run_mpy(PRELUDE + textwrap.dedent(body), cwd=cwd)


def test_hello_reports_counts_flags_and_config_crc(tmp_path: Path) -> None:
    out = mpy(
        """
        app, bms, cfg, io = make()
        (t, seq, p), = send(app, frame(0x01, 77))
        assert (t, seq) == (0x81, 77)
        ver, n, nt, flags, crc = struct.unpack("<BBBBI", p[:8])
        assert (ver, n, nt) == (1, 4, 1)
        assert flags & 8 and flags & 2  # config from defaults, state file missing
        assert p[8:] == b"0.1.0 test"
        (t, seq, cj), = send(app, frame(0x04, 78))
        assert t == 0x84 and codec.crc16(cj, 0, len(cj), 0xFFFF) == crc
        print(len(cj))
        """,
        tmp_path,
    )
    assert 1000 < int(out) <= 4096


def test_sequence_and_time_rules(tmp_path: Path) -> None:
    mpy(
        """
        app, bms, cfg, io = make()
        send(app, frame(0x01, 100))
        (t, s, p), = send(app, frame(0x02, 101, sample(1000, GOOD, 100)))
        assert t == 0x82 and state_of(p)["t_ms"] == 1000
        # repeated seq, stale seq
        for seq in (101, 100, (101 - 32767) & 0xFFFF):
            (t, s, p), = send(app, frame(0x02, seq, sample(5000, GOOD, 100)))
            assert (t, s, p[0]) == (0xFF, seq, codec.E_SEQ), (seq, t, p)
        # a seq half the ring ahead counts as new
        (t, s, p), = send(app, frame(0x03, (101 + 32768) & 0xFFFF))
        assert t == 0x83, t
        # time standing still and going back
        seq = (101 + 32769) & 0xFFFF
        for t_ms in (1000, 999, 0):
            (t, s, p), = send(app, frame(0x02, seq, sample(t_ms, GOOD, 100)))
            assert (t, p[0]) == (0xFF, codec.E_TIME), (t_ms, t, p)
            seq += 1
        (t, s, p), = send(app, frame(0x02, seq, sample(1001, GOOD, 100)))
        st = state_of(p)
        assert t == 0x82 and st["t_ms"] == 1001 and st["bad_frames"] == 6, st
        # wrap 65535 -> 1
        send(app, frame(0x01, 65534))
        assert send(app, frame(0x03, 65535))[0][0] == 0x83
        assert send(app, frame(0x03, 1))[0][0] == 0x83
        # HELLO forgets the sample time: an earlier t_ms is accepted afterwards
        send(app, frame(0x01, 9))
        (t, s, p), = send(app, frame(0x02, 10, sample(5, GOOD, 100)))
        assert t == 0x82 and state_of(p)["t_ms"] == 5
        """,
        tmp_path,
    )


def test_t_ms_is_any_u32_and_wraps(tmp_path: Path) -> None:
    """Issue 11's contract: any u32 t_ms, and the interval across the wrap 2**32 -> 0.

    t_ms is modulo 2**32 like seq is modulo 2**16: a sample 1..2**31 - 1 ms after the last
    one is forward (integrated, clamped to max_dt_ms as a gap beyond it); 0 or 2**31 and
    more is a repeat or time going back (E_TIME). The count integrates exactly the interval:
    1 A of discharge for 1000 ms takes 1000 mAs.
    """
    mpy(
        """
        app, bms, cfg, io = make()
        seq = 1
        def ask(ftype, payload=b""):
            global seq
            seq += 1
            (t, s, p), = send(app, frame(ftype, seq, payload))
            return t, p
        def at(t_ms, current_mA=1000):
            return ask(0x02, sample(t_ms % 2**32, GOOD, current_mA))
        for start in (0, 2**30 - 1, 2**30, 2**31 - 1, 2**31, 2**32 - 256, 2**32 - 1):
            ask(0x01)
            t, p = at(start)  # the session's first sample: integrates nothing
            assert t == 0x82 and state_of(p)["t_ms"] == start, (start, t, p)
            for dt in (1000, 512, 1):  # forward, across 2**30, 2**31 and 2**32 -> 0
                q0 = bms.counter.q_mAs
                s0 = bms.clock_s * 1000 + bms.clock_ms
                start += dt
                t, p = at(start)
                st = state_of(p)
                assert t == 0x82 and st["t_ms"] == start % 2**32, (start, t, st)
                assert bms.clock_s * 1000 + bms.clock_ms - s0 == dt, (start, dt)
                assert q0 - bms.counter.q_mAs == dt, (start, dt, q0, bms.counter.q_mAs)
                assert not st["flags"] & (1 << 10)  # no gap
            for back in (0, 1, 1000, 2**31 - 1, 2**31):  # repeat, behind: rejected
                t, p = at(start - back)
                assert (t, p[0]) == (0xFF, codec.E_TIME), (start, back, t, p)
            assert bms.gaps == 0
        # forward by the most that is still forward, 2**31 - 1 ms, from 2**32 - 256: taken,
        # clamped to max_dt_ms and flagged as a gap; the STATE echoes the wrapped t_ms
        ask(0x01)
        at(2**32 - 256, 0)
        t, p = at(2**32 - 256 + 2**31 - 1, 0)
        st = state_of(p)
        assert t == 0x82 and st["t_ms"] == 2**31 - 257 and st["flags"] & (1 << 10), st
        assert bms.gaps == 1
        """,
        tmp_path,
    )


def test_every_type_without_a_handler_is_rejected(tmp_path: Path) -> None:
    """Type 0x00 (reserved), 0x06 (retired) and every request type above CLEAR_LATCHED get
    E_TYPE, change nothing and consume no seq; the firmware's own types coming back (echo)
    are only counted."""
    mpy(
        """
        import os
        app, bms, cfg, io = make()
        send(app, frame(0x01, 1))
        bad = 0
        for ftype in [0x00, 0x06] + list(range(0x0C, 0x40)) + list(range(0x41, 0x80)):
            (t, s, p), = send(app, frame(ftype, 2))
            assert (t, s, p[0]) == (0xFF, 2, codec.E_TYPE), (ftype, t, s, p)
            bad += 1
        for ftype in [0x40] + list(range(0x80, 0x100)):
            assert send(app, frame(ftype, 2)) == [], ftype
            bad += 1
        try:
            os.stat("bms_state.json")
            saved = True
        except OSError:
            saved = False
        assert not saved  # 0x00 once ran as SAVE
        assert app.bad_frames == bad and app.rejects[codec.E_TYPE] == bad
        (t, s, p), = send(app, frame(0x03, 2))  # seq 2 is still new
        assert t == 0x83 and state_of(p)["bad_frames"] == bad
        """,
        tmp_path,
    )


def test_bad_frames_never_change_switches_or_config(tmp_path: Path) -> None:
    mpy(
        """
        app, bms, cfg, io = make()
        send(app, frame(0x01, 1))
        seq = 2
        for k in range(5):
            (t, s, p), = send(app, frame(0x02, seq, sample(1000 * (k + 1), GOOD, 500)))
            seq += 1
        assert io.chg is True and io.dsg is True, (io.chg, io.dsg, hex(bms.faults))
        calls = io.calls
        conf = app.config_payload()
        OVER = [4300, 4300, 4300, 4300]  # abuse over-voltage: would latch and open both
        bad = []
        raw = bytearray(frame(0x02, seq, sample(9000, OVER, 500)))
        raw[10] ^= 0x40
        bad.append(bytes(raw))                                              # CRC
        bad.append(frame(0x02, seq, sample(9000, OVER, 500), version=2))    # version
        bad.append(frame(0x02, seq - 1, sample(9000, OVER, 500)))           # repeated seq
        bad.append(frame(0x02, seq, sample(5000, OVER, 500)))               # time back
        bad.append(frame(0x02, seq, sample(9000, OVER[:3], 500)))           # wrong n_cells
        bad.append(frame(0x02, seq, sample(9000, OVER, 500)[:-1]))          # short payload
        bad.append(frame(0x02, seq, sample(9000, OVER, 500, temps=[0] * 9)))  # 9 temps
        bad.append(frame(0x02, seq, sample(9000, OVER, 0x40000000)))        # current > 2**30
        bad.append(frame(0x05, seq - 1, b'{"ov_mV": 3000}'))                # stale config
        bad.append(frame(0x05, seq, b'{"ov_mV": 30'))                       # broken JSON
        bad.append(frame(0x05, seq, b'[1, 2]'))                             # not an object
        bad.append(frame(0x0A, seq, b"x"))                                  # payload on empty
        bad.append(frame(0x0B, seq, b"\x01\xff\xff\xff\xff"))              # no clear reason
        bad.append(frame(0x00, seq))                                        # reserved type
        bad.append(frame(0x06, seq))                                        # retired type
        bad.append(frame(0x3F, seq))                                        # unknown type
        bad.append(bytes([0xA5, 1, 2, 1, 0, 0xFF, 0xFF]))                   # length 65535
        codes = []
        for b in bad:
            r = send(app, b, now=0)
            codes.append(r[0][2][0] if r else None)
            app.parser.tick(1000)  # the over-long header's rest is discarded until idle
        assert codes == [1, 2, 5, 6, 7, 7, 7, 7, 5, 7, 7, 7, 7, 4, 4, 4, 3], codes
        assert io.calls == calls and bms.chg_on and bms.dsg_on
        assert app.config_payload() == conf and cfg.ov_mV != 3000
        (t, s, p), = send(app, frame(0x03, seq))
        st = state_of(p)
        assert st["bad_frames"] == len(bad) and st["flags"] & 3 == 3 and st["faults"] == 0, st
        # and good over-voltage samples do act: abuse latches on two plausible ones in a row
        (t, s, p), = send(app, frame(0x02, seq + 1, sample(9000, OVER, 500)))
        assert t == 0x82 and not state_of(p)["latched"], state_of(p)
        (t, s, p), = send(app, frame(0x02, seq + 2, sample(10000, OVER, 500)))
        assert t == 0x82 and io.chg is False and state_of(p)["latched"], state_of(p)
        """,
        tmp_path,
    )


def test_ctrl_c_between_frames_only(tmp_path: Path) -> None:
    mpy(
        """
        app, bms, cfg, io = make()
        # 0x03 inside frames (seq 0x0303, t_ms and cells full of 0x03) is data
        f = frame(0x02, 0x0303, sample(0x03030303, [0x0303] * 4, 0x0303, temps=(0x0303,)))
        assert f.count(b"\\x03") > 10
        r = send(app, f)
        assert r[0][0] == 0x82 and app.action == ACT_NONE
        # noise and CR between frames do nothing; 0x03 does
        r = send(app, b"\\r\\n\\x00" + b"\\x03" + frame(0x03, 0x0304))
        assert r == [] and app.action == ACT_REPL
        # a 0x03 after a stalled partial frame is Ctrl-C again once the stall is dropped
        app2, *_ = make()
        send(app2, frame(0x01, 1)[:4], now=0)
        app2.tick(200)
        send(app2, b"\\x03", now=200)
        assert app2.action == ACT_REPL
        """,
        tmp_path,
    )


def test_enter_repl_and_reset_reply_then_act(tmp_path: Path) -> None:
    mpy(
        """
        app, bms, cfg, io = make()
        (t, s, p), = send(app, frame(0x07, 5))
        assert (t, s, p, app.action) == (0x87, 5, b"", ACT_REPL)
        app, bms, cfg, io = make()
        (t, s, p), = send(app, frame(0x08, 6) + frame(0x03, 7))
        assert (t, s, app.action) == (0x88, 6, ACT_RESET)  # nothing after RESET is read
        """,
        tmp_path,
    )


def test_config_write_read_and_persist(tmp_path: Path) -> None:
    out = mpy(
        """
        app, bms, cfg, io = make()
        send(app, frame(0x01, 1))
        (t, s, p), = send(app, frame(0x05, 2, b'{"ov_mV": 4210, "ov_delay_ms": 500}'))
        assert (t, p) == (0x85, b"\\x00"), p
        (t, s, cj), = send(app, frame(0x04, 3))
        d = json.loads(cj)
        assert d["ov_mV"] == 4210 and d["ov_delay_ms"] == 500
        (t, s, p), = send(app, frame(0x01, 4))
        assert struct.unpack("<I", p[4:8])[0] == codec.crc16(cj, 0, len(cj), 0xFFFF)
        # rejected: all or nothing, with the field and reason
        (t, s, p), = send(app, frame(0x05, 5, b'{"ov_mV": 4215, "window_top_dmAhg": 22001}'))
        assert t == 0x85 and p[0] == 1 and p[1:].startswith(b"window_top_dmAhg"), p
        assert cfg.ov_mV == 4210
        (t, s, p), = send(app, frame(0x0A, 6))
        assert (t, p) == (0x8A, b"\\x00")
        (t, s, p), = send(app, frame(0x0B, 7, b"\\x05\\xff\\xff\\xff\\x00"))
        assert (t, p) == (0x8B, b"\\x00\\x00\\x00\\x00")
        (t, s, p), = send(app, frame(0x09, 8))
        assert t == 0x89 and isinstance(json.loads(p), list)
        print(json.dumps(json.load(open("bms_config.json"))))
        """,
        tmp_path,
    )
    saved = json.loads(out)
    assert saved["ov_mV"] == 4210 and (tmp_path / "bms_state.json").exists()


def test_a_config_write_in_force_but_not_saved_says_so(tmp_path: Path) -> None:
    """A change validated and applied, whose save then fails (the filesystem refuses, or the
    heap is short while the file is written), is status 2 with the reason: the host learns
    the change is in force but will not survive a reset, not an ERROR that reads as a
    refusal. The file keeps the last saved configuration."""
    out = mpy(
        """
        app, bms, cfg, io = make()
        send(app, frame(0x01, 1))
        (t, s, p), = send(app, frame(0x05, 2, b'{"ov_mV": 4210}'))
        assert (t, p) == (0x85, b"\\x00"), p

        from bms import config as config_module

        def full(path, obj):
            raise OSError(28)

        def short(path, obj):
            raise MemoryError

        config_module.write_json_atomic = full
        (t, s, p), = send(app, frame(0x05, 3, b'{"ov_mV": 4205}'))
        assert t == 0x85 and p[0] == 2 and p[1:].startswith(b"save: "), p
        assert cfg.ov_mV == 4205
        config_module.write_json_atomic = short
        (t, s, p), = send(app, frame(0x05, 4, b'{"ov_mV": 4200}'))
        assert (t, p) == (0x85, b"\\x02save: memory"), p
        assert cfg.ov_mV == 4200
        print(json.dumps(json.load(open("bms_config.json"))))
        """,
        tmp_path,
    )
    assert json.loads(out)["ov_mV"] == 4210


def test_link_watchdog_on_firmware_clock(tmp_path: Path) -> None:
    mpy(
        """
        app, bms, cfg, io = make()
        send(app, frame(0x01, 1))
        send(app, frame(0x02, 2, sample(1000, GOOD, 500)), now=0)
        assert io.chg and io.dsg
        app.tick(cfg.link_timeout_ms)
        assert io.chg and io.dsg
        app.tick(cfg.link_timeout_ms + 1)
        assert not io.chg and not io.dsg and bms.faults & F.LINK_LOST
        (t, s, p), = send(app, frame(0x03, 3), now=cfg.link_timeout_ms + 5)
        assert state_of(p)["faults"] & F.LINK_LOST and not state_of(p)["flags"] & 3
        now = cfg.link_timeout_ms + 10
        (t, s, p), = send(app, frame(0x02, 4, sample(2000, GOOD, 500)), now=now)
        st = state_of(p)
        assert not st["faults"] & F.LINK_LOST and io.chg and io.dsg, st
        """,
        tmp_path,
    )


def test_echoed_reply_frames_get_no_answer(tmp_path: Path) -> None:
    mpy(
        """
        app, bms, cfg, io = make()
        # a line that echoes would feed our own BOOT/STATE/ERROR back: answering would loop
        app.boot_frame()
        boot = bytes(app.out[: app.out_len])
        app.out_len = 0
        assert send(app, boot) == [] and app.bad_frames == 1
        assert send(app, frame(0xFF, 3, b"\\x01crc")) == [] and app.bad_frames == 2
        """,
        tmp_path,
    )


def test_sample_to_state_path_allocates_nothing(tmp_path: Path) -> None:
    """HELLO, then SAMPLE frames whose t_ms crosses 2**30, 2**31 and the wrap 2**32 -> 0:
    0 bytes held after 3,000 frames. The driver keeps every value a small int (t_ms as two
    16-bit halves), so on a 32-bit port nothing it does is charged to the firmware."""
    starts = [((t - 700_000) % 2**32) for t in (2**30, 2**31, 2**32)]
    halves = ", ".join(f"({t >> 16:#x}, {t & 0xFFFF:#x})" for t in [1000, *starts])
    out = mpy(
        """
        app, bms, cfg, io = make(n_cells=16, n_temps=8)
        cfg.update({"persist_interval_ms": 86400000, "persist_min_ms": 86400000})
        STARTS = (HALVES)  # (t_hi, t_lo) of each session's first sample
        N = 3000
        tx = bytearray(frame(0x02, 2, sample(1000, [3600] * 16, 0, [250] * 8)))
        size = len(tx)
        hello = bytearray(9)

        def exchange(a, buf, n, now, reply):
            i = 0
            while i < n:
                i = a.receive(buf, i, n, now)
                if a.out_len:
                    assert a.out[2] == reply
                    a.out_len = 0

        def run(lo, hi, t_hi, t_lo):  # local names only: module globals would grow their dict
            a = app
            codec.finish(hello, 0x01, 1 + lo, 0)
            exchange(a, hello, 9, lo, 0x81)
            for k in range(lo, hi):
                # the host's next frame, built in place: new seq, time, current, cells
                codec.put_u16(tx, 7, t_lo)
                codec.put_u16(tx, 9, t_hi)
                t_lo += 1000
                if t_lo >= 0x10000:
                    t_lo -= 0x10000
                    t_hi = (t_hi + 1) & 0xFFFF
                codec.put_u32(tx, 11, (k % 200) * 10 - 1000)  # charge and discharge
                for j in range(16):
                    codec.put_u16(tx, 16 + 2 * j, 3600 + (k * 7 + j) % 50)
                codec.finish(tx, 0x02, 2 + k, size - 9)
                exchange(a, tx, size, k, 0x82)
                a.tick(k)

        run(0, 50, STARTS[0][0], STARTS[0][1])  # warm up: first-sample paths, lazy attributes
        gc.collect()
        gc.disable()  # a collection inside the loop would hide allocations
        before = gc.mem_alloc()
        run(50, 1000, STARTS[1][0], STARTS[1][1])
        run(1000, 2000, STARTS[2][0], STARTS[2][1])
        run(2000, N, STARTS[3][0], STARTS[3][1])
        after = gc.mem_alloc()
        gc.enable()
        assert bms.samples == N and bms.gaps == 0, (bms.samples, bms.gaps)
        assert app.bad_frames == 0, app.rejects
        assert (app.t_hi << 16) + app.t_lo == 299000, (app.t_hi, app.t_lo)  # wrapped
        print(after - before, N - 50)
        """.replace("HALVES", halves),
        tmp_path,
    )
    delta, n = (int(x) for x in out.split())
    assert n > 2000
    assert delta == 0, f"{delta} bytes allocated over {n} SAMPLE frames"


def test_frame_buffer_limit_and_one_buffer_both_ways(tmp_path: Path) -> None:
    """The firmware takes payloads up to codec.MAX_PAYLOAD (4096, the format's limit:
    docs/protocol.md); longer ones get E_LENGTH. Replies are built in the receive buffer."""
    mpy(
        """
        app, bms, cfg, io = make()
        assert codec.MAX_PAYLOAD == 4096 and app.out is app.parser.buf
        # 32-point tables padded with spaces to exactly MAX_PAYLOAD bytes
        big = {"ocv_soc_cpct": [0] + [300 * k + 700 for k in range(30)] + [10000],
               "ocv_chg_mV": [3000 + 10 * k for k in range(32)],
               "ocv_dsg_mV": [2900 + 10 * k for k in range(32)],
               "r_soc_pct": [100 + k for k in range(32)]}
        body = json.dumps(big).encode()
        pad = codec.MAX_PAYLOAD - len(body)
        full = body[:-1] + b" " * pad + b"}"  # exactly MAX_PAYLOAD bytes of valid JSON
        (t, s, p), = send(app, frame(0x05, 1, full))
        assert (t, p[0]) == (0x85, 0), p
        (t, s, p), = send(app, frame(0x04, 2))
        assert t == 0x84 and json.loads(p)["ocv_chg_mV"] == big["ocv_chg_mV"]
        # one byte more: E_LENGTH as soon as the header is in; the rest is discarded until idle
        over = bytes([0xA5, 1, 0x05, 3, 0, 0x01, 0x10]) + full + b"  zz"  # len 4097
        (t, s, p), = send(app, over)
        assert (t, s, p[0]) == (0xFF, 3, codec.E_LENGTH), (t, s, p)
        app.parser.tick(1000)
        (t, s, p), = send(app, frame(0x03, 4), now=1000)
        assert t == 0x83 and state_of(p)["bad_frames"] == 1
        """,
        tmp_path,
    )


def test_random_and_damaged_bytes_never_crash_or_act(tmp_path: Path) -> None:
    """Fuzz: 3,000 chunks of noise and damaged frames against the real app and Bms.

    Seeded in-interpreter generator. Each damaged SAMPLE carries abuse-level
    voltages that would latch a fault and open both switches if accepted; 1 to 3
    distinct flipped bits are always caught by CRC-16/CCITT (Hamming distance 4
    at these lengths). A good sample every 20 chunks keeps the link watchdog
    quiet, so any switch change would be the damaged input's doing.
    """
    out = mpy(
        """
        app, bms, cfg, io = make()
        send(app, frame(0x01, 1))
        seq = 2
        t_ms = 0
        for k in range(5):
            t_ms += 1000
            send(app, frame(0x02, seq, sample(t_ms, GOOD, 500)))
            seq += 1
        conf = app.config_payload()
        OVER = [4300, 4300, 4300, 4300]
        x = 12345
        def rnd(n):
            global x
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            return (x >> 7) % n
        now = 0
        good = 5
        for k in range(3000):
            if k % 20 == 19:  # a good sample: the link stays alive
                t_ms += 1000
                send(app, frame(0x02, seq, sample(t_ms, GOOD, 500)), now)
                seq += 1
                good += 1
                assert io.chg is True and io.dsg is True, (k, hex(bms.faults))
                continue
            kind = rnd(4)
            if kind == 0:  # noise, sync bytes included, no Ctrl-C
                chunk = bytes((rnd(255) + 4) & 0xFF or 0xA5 for _ in range(rnd(40) + 1))
            elif kind == 1:  # a sealed SAMPLE with 1..3 distinct bits flipped
                b = bytearray(frame(0x02, seq, sample(t_ms + 500, OVER, 500)))
                bits = []
                while len(bits) < rnd(3) + 1:
                    bit = 8 + rnd(8 * (len(b) - 1))  # anywhere after the sync byte
                    if bit not in bits:
                        bits.append(bit)
                for bit in bits:
                    b[bit >> 3] ^= 1 << (bit & 7)
                chunk = bytes(b)
            elif kind == 2:  # a sealed frame of an unknown type or a short SAMPLE
                if rnd(2):
                    chunk = frame(0x0B + rnd(0x30), seq)
                else:
                    chunk = frame(0x02, seq, sample(t_ms + 500, OVER, 500)[: rnd(20)])
            else:  # a frame cut short
                b = frame(0x02, seq, sample(t_ms + 500, OVER, 500))
                chunk = b[: rnd(len(b) - 1) + 1]
            before = bms.samples
            send(app, chunk, now)
            assert bms.samples == before, (k, kind, chunk)
            if app.action:
                # only a Ctrl-C byte seen between frames may end the firmware
                assert app.action == ACT_REPL and 3 in chunk, (k, chunk)
                app.action = ACT_NONE
            now += 150  # partial frames stall past the 100 ms limit and are dropped
            app.parser.tick(now)
        assert bms.chg_on and bms.dsg_on and bms.latched == 0, hex(bms.faults)
        assert app.config_payload() == conf
        (t, s, p), = send(app, frame(0x03, seq))
        st = state_of(p)
        print(st["bad_frames"], st["samples"], good)
        """,
        tmp_path,
    )
    bad_frames, samples, good = (int(v) for v in out.split())
    assert samples == good  # exactly the good samples were taken
    assert bad_frames >= 1000


def test_a_new_cell_count_is_in_force_before_the_next_sample(tmp_path: Path) -> None:
    """CONFIG_WRITE n_cells 4 -> 5, then GET_STATE, SAVE and a shutdown before any sample of
    5 cells: each answers for 5 cells (GET_STATE read past the 4-cell arrays and the
    firmware died with both switches as they were), and the state file holds 5."""
    out = mpy(
        """
        app, bms, cfg, io = make()
        send(app, frame(0x01, 1))
        (t, s, p), = send(app, frame(0x02, 2, sample(1000, GOOD, 0)))
        assert state_of(p)["n_cells"] == 4
        (t, s, p), = send(app, frame(0x05, 3, b'{"n_cells": 5}'))
        assert (t, p) == (0x85, b"\\x00"), p
        (t, s, p), = send(app, frame(0x03, 4))
        assert t == 0x83 and state_of(p)["n_cells"] == 5
        (t, s, p), = send(app, frame(0x0A, 5))
        assert (t, p) == (0x8A, b"\\x00"), p
        bms.shutdown()
        print(len(json.load(open("bms_state.json"))["cells"]))
        (t, s, p), = send(app, frame(0x02, 6, sample(2000, GOOD + [3700], 0)))
        assert t == 0x82 and state_of(p)["n_cells"] == 5
        print("ok")
        """,
        tmp_path,
    )
    assert out.split() == ["5", "ok"]

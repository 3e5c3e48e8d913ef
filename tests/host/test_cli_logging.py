"""-v / -vv on the commands: what the host does, and the frames on the wire."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from host.cli.main import main
from host.protocol.codec import FrameType, encode_frame, encode_sample, encode_state_raw
from host.protocol.faults import FAULT_BITS
from host.protocol.wire_trace import WireTrace

SHORT = 'name = "short"\nsample_period_s = 1.0\nsteps = ["Discharge at 1C for 20 seconds"]\n'


def _emulate(tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    scenario = tmp_path / "short.toml"
    scenario.write_text(SHORT)
    args = ["emulate", "--scenario", str(scenario), "--out", str(tmp_path / "out"), "--json"]
    before = [f for f in flags if f.startswith("-v") and f.endswith("!")]
    after = [f for f in flags if f not in before]
    assert main([*(f.rstrip("!") for f in before), *args, *after]) == 0
    return capsys.readouterr().err


def test_quiet_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _emulate(tmp_path, capsys)
    assert " INFO " not in err and " DEBUG " not in err


@pytest.mark.parametrize("flag", ["-v!", "-v"])  # before the command (!) or after it
def test_v_logs_what_the_host_does(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _emulate(tmp_path, capsys, flag)
    assert "INFO host.emulator.run: scenario short" in err  # what it runs, on which cells
    assert "INFO host.vboard: virtual board on /dev/pts/" in err  # the board's start
    assert "INFO host.emulator.run: run ended: passed" in err  # and what it wrote
    assert "short.summary.json" in err
    assert "host.protocol.wire" not in err  # the wire trace is -vv


def test_vv_traces_every_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _emulate(tmp_path, capsys, "-vv")
    lines = [line for line in err.splitlines() if "host.protocol.wire:" in line]
    sent = [line for line in lines if "-> SAMPLE" in line]
    replies = [line for line in lines if "<- STATE" in line]
    # 20 s at 1 s, plus the first sample; every one answered.
    assert len(sent) >= 21 and len(replies) == len(sent)
    # Decoded: 1 cell, 1 temperature (14 bytes), about 2 A (the sensor's error), 1 s apart.
    pattern = r"-> SAMPLE seq \d+ len 14: t (\d+)000 ms, I (\d+) mA, cells 3\d{3} mV, temps 2\d\d"
    found = [m.groups() for line in sent[1:] if (m := re.search(pattern, line))]
    assert [int(t) for t, _ in found] == list(range(2, len(sent) + 1)), sent
    assert all(1900 < int(current) < 2100 for _, current in found), sent
    assert "SOC" in replies[-1] and "CHG on" in replies[-1]
    assert any("<- BOOT seq 0" in line for line in lines)


def test_trace_decodes_frames_split_across_reads(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="host.protocol.wire")
    trace = WireTrace()
    sample = encode_frame(FrameType.SAMPLE, 7, encode_sample(5000, [3700, 3701], 1500, [250]))
    state = encode_frame(
        FrameType.STATE, 7, encode_state_raw([5000, 5012] + [0] * 23, [5012, 5012], [0, 0])
    )
    trace.sent(sample)
    banner = b"MicroPython v1.24 on unix\r\n>>> "
    for chunk in (state[:5], state[5:], banner):
        trace.received(chunk)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == (
        "-> SAMPLE seq 7 len 16: t 5000 ms, I 1500 mA, cells 3700,3701 mV, temps 250 ddegC"
    )
    assert messages[1].startswith("<- STATE seq 7 len 75: t 5000 ms, SOC 50.12 %")
    assert messages[2] == f"<- {len(banner)} byte(s) outside frames: {banner.decode()!r}"


def test_trace_names_a_missing_temperature_reading(caplog: pytest.LogCaptureFixture) -> None:
    """A STATE without a temperature reading (-32768) under SENSOR_RANGE reads as the sensor
    fault it is; one with a reading gives it; a SAMPLE without readings says so."""
    caplog.set_level(logging.DEBUG, logger="host.protocol.wire")
    trace = WireTrace()
    raw = [5000, 5012] + [0] * 23
    no_reading = list(raw)
    no_reading[7] = 1 << FAULT_BITS["SENSOR_RANGE"]  # faults
    no_reading[17] = -32768  # max_temp_ddegC
    hot = list(raw)
    hot[17] = 612
    for seq, values in ((1, no_reading), (2, hot)):
        trace.received(encode_frame(FrameType.STATE, seq, encode_state_raw(values, [0], [0])))
    trace.sent(encode_frame(FrameType.SAMPLE, 3, encode_sample(6000, [3700], 0, [])))
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].endswith("faults SENSOR_RANGE, max temp no reading (sensor fault)")
    assert messages[1].endswith("max temp 61.2 degC")
    assert messages[2].endswith("cells 3700 mV, no temperature reading")


def test_trace_costs_nothing_when_off(caplog: pytest.LogCaptureFixture) -> None:
    """Off, nothing is decoded; turned on mid-stream, it starts afresh at the next frame."""
    caplog.set_level(logging.INFO, logger="host.protocol.wire")
    trace = WireTrace()
    state = encode_frame(FrameType.STATE, 9, encode_state_raw([1] + [0] * 24, [0], [0]))
    trace.received(state[:5])  # off: the half frame is not kept
    assert not caplog.records
    caplog.set_level(logging.DEBUG, logger="host.protocol.wire")
    trace.received(state[5:] + state)
    states = [r.getMessage() for r in caplog.records if "<- STATE" in r.getMessage()]
    assert len(states) == 1 and states[0].startswith("<- STATE seq 9 len 71: t 1 ms")

"""Regenerate protocol_vectors.json: `python -m tests.vectors.generate_protocol_vectors`.

The vectors are made by the host codec; the firmware codec is checked against
them under MicroPython, so a change to either codec that breaks the wire
format fails a test. CRC values are also checked against the published
CRC-16/CCITT-FALSE check value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from host.protocol.codec import (
    ErrorCode,
    FrameType,
    crc16,
    encode_frame,
    encode_hello_reply,
    encode_json,
    encode_sample,
    encode_state_raw,
)

OUT = Path(__file__).with_name("protocol_vectors.json")

STATE_FIELDS = [
    "t_ms",
    "soc_cpct",
    "soc_unc_cpct",
    "remaining_mAh",
    "capacity_mAh",
    "anode_util_dmAhg",
    "flags",
    "faults",
    "latched",
    "warnings",
    "balance",
    "cycle_count",
    "bad_frames",
    "samples",
    "current_mA",
    "min_cell_mV",
    "max_cell_mV",
    "max_temp_ddegC",
    "cap_learn_count",
]


def frame(name: str, ftype: int, seq: int, payload: bytes, decoded: dict[str, Any]) -> dict:
    return {
        "name": name,
        "hex": encode_frame(ftype, seq, payload).hex(),
        "type": ftype,
        "seq": seq,
        "payload_hex": payload.hex(),
        "decoded": decoded,
    }


def sample(name: str, seq: int, t_ms: int, cells: list[int], cur: int, temps: list[int]) -> dict:
    decoded = {
        "kind": "sample",
        "t_ms": t_ms,
        "current_mA": cur,
        "cell_mV": cells,
        "temp_ddegC": temps,
    }
    return frame(name, FrameType.SAMPLE, seq, encode_sample(t_ms, cells, cur, temps), decoded)


def state(name: str, ftype: int, seq: int, values: dict[str, int]) -> dict:
    raw = [values[f] for f in STATE_FIELDS]
    return frame(name, ftype, seq, encode_state_raw(raw), {"kind": "state", **values})


def build() -> dict:
    frames = [
        frame("HELLO seq 1", FrameType.HELLO, 1, b"", {"kind": "empty"}),
        frame(
            "HELLO_REPLY 4 cells 2 temps",
            FrameType.HELLO_REPLY,
            1,
            encode_hello_reply(4, 2, 0x0A, 0x1D0F, "0.1.0 virtual"),
            {
                "kind": "hello",
                "protocol_version": 1,
                "n_cells": 4,
                "n_temps": 2,
                "boot_flags": 0x0A,
                "config_crc": 0x1D0F,
                "ident": "0.1.0 virtual",
            },
        ),
        frame(
            "BOOT seq 0",
            FrameType.BOOT,
            0,
            encode_hello_reply(1, 0, 0x02, 0xFFFF, "0.1.0 pico"),
            {
                "kind": "hello",
                "protocol_version": 1,
                "n_cells": 1,
                "n_temps": 0,
                "boot_flags": 0x02,
                "config_crc": 0xFFFF,
                "ident": "0.1.0 pico",
            },
        ),
        sample("SAMPLE 4 cells discharge", 2, 1000, [3700, 3701, 3699, 3702], 1500, [250, 251]),
        sample("SAMPLE 1 cell charge, t_ms high half >= 0x8000", 3, 0xFFFFFFF0, [4190], -2000, []),
        sample(
            "SAMPLE payload bytes 0x03 and 0xA5",
            0x03A5,
            0x03A503A5,
            [0x03A5, 0xA503],
            0x03A5,
            [-0x5AFD],
        ),
        sample(
            "SAMPLE 16 cells 8 temps",
            65535,
            123456789,
            [3000 + 17 * k for k in range(16)],
            -(2**30) + 1,
            [-400 + 100 * k for k in range(8)],
        ),
        state(
            "STATE reply to a SAMPLE",
            FrameType.STATE,
            2,
            {
                "t_ms": 1000,
                "soc_cpct": 5012,
                "soc_unc_cpct": 150,
                "remaining_mAh": 1002,
                "capacity_mAh": 2000,
                "anode_util_dmAhg": 11034,
                "flags": 0b11010,  # DSG on, branch known, discharge branch
                "faults": 1 << 11,  # WIN_TOP: charge off at the window top
                "latched": 0,
                "warnings": 0b10000,
                "balance": 0b1010,
                "cycle_count": 7,
                "bad_frames": 3,
                "samples": 1_000_000,
                "current_mA": 1500,
                "min_cell_mV": 3699,
                "max_cell_mV": 3702,
                "max_temp_ddegC": -105,
                "cap_learn_count": 2,
            },
        ),
        state(
            "GET_STATE reply (type 0x83)",
            FrameType.GET_STATE_REPLY,
            9,
            {f: 0 for f in STATE_FIELDS}
            | {
                "t_ms": 0xFFFFFFF0,
                "current_mA": -(2**30) + 1,
                "faults": (1 << 4) | (1 << 16),  # SC and CONFIG: both switches open
                "latched": 1 << 4,
                "warnings": 0b101,
                "flags": 1 << 9,
            },
        ),
        frame(
            "ERROR E_CRC",
            FrameType.ERROR,
            7,
            bytes([ErrorCode.E_CRC]) + b"crc",
            {"kind": "error", "code": 1, "text": "crc"},
        ),
        frame(
            "CONFIG_WRITE",
            FrameType.CONFIG_WRITE,
            4,
            encode_json({"ov_mV": 4200, "n_cells": 4}),
            {"kind": "json", "value": {"ov_mV": 4200, "n_cells": 4}},
        ),
        frame(
            "CLEAR_FAULTS_REPLY",
            FrameType.CLEAR_FAULTS_REPLY,
            5,
            (1 << 4 | 1 << 9).to_bytes(4, "little"),
            {"kind": "u32", "value": 1 << 4 | 1 << 9},
        ),
    ]
    good = bytes.fromhex(frames[0]["hex"])
    sample_frame = bytes.fromhex(frames[3]["hex"])
    bad_crc = bytearray(sample_frame)
    bad_crc[12] ^= 0x10
    bad_version = bytearray(good)
    bad_version[1] = 2
    body = bytes(bad_version[1:7])
    bad_version[7:9] = crc16(body).to_bytes(2, "little")
    too_long = bytes([0xA5, 1, 2, 0x34, 0x12, 0x01, 0x10])  # len 4097
    streams = [
        {
            "name": "two frames back to back",
            "hex": (good + sample_frame).hex(),
            "events": [
                {"event": "frame", "type": 1, "seq": 1},
                {"event": "frame", "type": 2, "seq": 2},
            ],
        },
        {
            "name": "noise before a frame is skipped",
            "hex": (bytes([0x00, 0x0D, 0x0A, 0x41]) + good).hex(),
            "events": [{"event": "frame", "type": 1, "seq": 1}],
        },
        {
            "name": "bad CRC is reported with the seq as received",
            "hex": bytes(bad_crc).hex(),
            "events": [{"event": "error", "reason": "E_CRC", "type": 2, "seq": 2}],
        },
        {
            "name": "bad version with a good CRC",
            "hex": bytes(bad_version).hex(),
            "events": [{"event": "error", "reason": "E_VERSION", "type": 1, "seq": 1}],
        },
        {
            "name": "length over 4096",
            "hex": too_long.hex(),
            "events": [{"event": "error", "reason": "E_LENGTH", "type": 2, "seq": 0x1234}],
        },
        {
            "name": "truncated frame waits for more bytes",
            "hex": sample_frame[:-3].hex(),
            "events": [],
        },
        {
            "name": "0x03 between frames is Ctrl-C (firmware only); inside a frame it is data",
            "hex": (bytes([0x03]) + bytes.fromhex(frames[5]["hex"])).hex(),
            "events": [{"event": "ctrl_c"}, {"event": "frame", "type": 2, "seq": 0x03A5}],
        },
    ]
    return {
        "comment": "Generated by tests/vectors/generate_protocol_vectors.py; see docs/protocol.md.",
        "crc": [
            {"hex": b"123456789".hex(), "crc": 0x29B1},
            {"hex": "", "crc": 0xFFFF},
            {"hex": good[1:7].hex(), "crc": crc16(good[1:7])},
        ],
        "frames": frames,
        "streams": streams,
    }


def main() -> None:
    OUT.write_text(json.dumps(build(), indent=1) + "\n")


if __name__ == "__main__":
    main()

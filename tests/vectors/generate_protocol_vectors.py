"""Regenerate protocol_vectors.json: `python -m tests.vectors.generate_protocol_vectors`.

The vectors are made from docs/protocol.md alone (tests/vectors/spec.py reads
its tables and encodes with them and the CRC it names), never by either codec.
The host codec (tests/host/test_protocol_codec.py) and the firmware codec under
MicroPython (tests/firmware/test_codec.py) are both checked against them, so a
codec that drifts from the document fails, whichever side it is on.

Every frame type (22) and every reason code (9) has at least one frame.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.vectors import spec

OUT = Path(__file__).with_name("protocol_vectors.json")

STATE_EXAMPLE = {
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
    "capacity_learned_count": 2,
    "ccl_mA": 0,  # charging is off: no charge current allowed
    "dcl_mA": 3997,
    "anode_potential_mV": 286,
    "current_offset_dmA": -123,
    "r_dc_uohm": 57200,
    "capacity_unc_cpct": 150,
    "n_cells": 4,
    "cell_soc_cpct": [5010, 5032, 4987, 5019],
    "cell_util_dmAhg": [11030, 11034, 10990, 11021],
}
STATE_ZERO = {f.name: 0 for f in spec.payload_layouts()["STATE"]} | {
    "n_cells": 1,
    "cell_soc_cpct": [0],
    "cell_util_dmAhg": [0],
}


def hello_value(n_cells: int, n_temps: int, flags: int, crc: int, ident: str) -> dict[str, Any]:
    return {
        "protocol_version": 1,
        "n_cells": n_cells,
        "n_temps": n_temps,
        "boot_flags": flags,
        "config_crc": crc,
        "ident": ident,
    }


def sample_value(t_ms: int, cells: list[int], current_mA: int, temps: list[int]) -> dict:
    return {
        "t_ms": t_ms,
        "current_mA": current_mA,
        "n_cells": len(cells),
        "cell_mV": cells,
        "n_temps": len(temps),
        "temp_ddegC": temps,
    }


ERROR_TEXTS = {
    "E_CRC": "crc",
    "E_VERSION": "version",
    "E_LENGTH": "length",
    "E_TYPE": "type",
    "E_SEQ": "seq",
    "E_TIME": "time",
    "E_PAYLOAD": "payload",
    "E_TIMEOUT": "timeout",  # counted only, never sent; still a code a decoder must know
    "E_BUSY": "busy",
    "E_MEMORY": "memory",
}

# (name, type, seq, value): value as spec.encode_payload takes it for the type's payload.
CASES: list[tuple[str, str, int, Any]] = [
    ("HELLO seq 1", "HELLO", 1, None),
    (
        "HELLO_REPLY 4 cells 2 temps",
        "HELLO_REPLY",
        1,
        hello_value(4, 2, 0x0A, 0x1D0F, "0.1.0 virtual"),
    ),
    ("BOOT seq 0", "BOOT", 0, hello_value(1, 0, 0x02, 0xFFFF, "0.1.0 pico")),
    (
        "SAMPLE 4 cells discharge",
        "SAMPLE",
        2,
        sample_value(1000, [3700, 3701, 3699, 3702], 1500, [250, 251]),
    ),
    (
        "SAMPLE 1 cell charge, t_ms high half >= 0x8000",
        "SAMPLE",
        3,
        sample_value(0xFFFFFFF0, [4190], -2000, []),
    ),
    (
        "SAMPLE payload bytes 0x03 and 0xA5",
        "SAMPLE",
        0x03A5,
        sample_value(0x03A503A5, [0x03A5, 0xA503], 0x03A5, [-0x5AFD]),
    ),
    (
        "SAMPLE 16 cells 8 temps",
        "SAMPLE",
        65535,
        sample_value(
            123456789,
            [3000 + 17 * k for k in range(16)],
            -(2**30) + 1,
            [-400 + 100 * k for k in range(8)],
        ),
    ),
    ("STATE reply to a SAMPLE", "STATE", 2, STATE_EXAMPLE),
    (
        "STATE without a temperature sensor",
        "STATE",
        0x8000,
        STATE_EXAMPLE | {"max_temp_ddegC": -32768, "flags": 0b11, "faults": 0, "warnings": 0},
    ),
    (
        "STATE below SOC 0, no anode estimate yet, 16 cells",
        "STATE",
        0x0C0C,
        STATE_EXAMPLE
        | {
            "soc_cpct": -255,
            "anode_potential_mV": -32768,
            "ccl_mA": 99999,
            "dcl_mA": 0,
            "r_dc_uohm": 2**30 - 1,
            "n_cells": 16,
            "cell_soc_cpct": [-300 + 10 * k for k in range(16)],
            "cell_util_dmAhg": [0] * 15 + [65535],
        },
    ),
    ("GET_STATE", "GET_STATE", 8, None),
    (
        "GET_STATE reply (type 0x83)",
        "GET_STATE_REPLY",
        9,
        STATE_ZERO
        | {
            "t_ms": 0xFFFFFFF0,
            "current_mA": -(2**30) + 1,
            "faults": (1 << 4) | (1 << 16),  # SC and CONFIG: both switches open
            "latched": 1 << 4,
            "warnings": 0b101,
            "flags": 1 << 9,
        },
    ),
    ("CONFIG_READ", "CONFIG_READ", 10, None),
    (
        "CONFIG",
        "CONFIG",
        10,
        {"n_cells": 4, "n_temps": 2, "ocv_soc_cpct": [0, 5000, 10000], "ov_mV": 4220},
    ),
    ("CONFIG_WRITE", "CONFIG_WRITE", 4, {"ov_mV": 4200, "n_cells": 4}),
    ("CONFIG_WRITE_REPLY ok", "CONFIG_WRITE_REPLY", 4, [0, ""]),
    (
        "CONFIG_WRITE_REPLY rejected",
        "CONFIG_WRITE_REPLY",
        11,
        [1, "window_top_dmAhg: 22001 above 22000"],
    ),
    ("CONFIG_WRITE_REPLY not saved", "CONFIG_WRITE_REPLY", 12, [2, "not saved: ENOSPC"]),
    ("CLEAR_LATCHED inspected, all", "CLEAR_LATCHED", 5, {"reason": 2, "mask": 0xFFFFFF}),
    ("CLEAR_LATCHED test, UV_ABUSE", "CLEAR_LATCHED", 6, {"reason": 5, "mask": 1 << 10}),
    ("CLEAR_LATCHED_REPLY", "CLEAR_LATCHED_REPLY", 5, 1 << 4 | 1 << 9),
    ("ENTER_REPL", "ENTER_REPL", 13, None),
    ("ENTER_REPL_REPLY", "ENTER_REPL_REPLY", 13, None),
    ("RESET", "RESET", 14, None),
    ("RESET_REPLY", "RESET_REPLY", 14, None),
    ("FAULT_LOG", "FAULT_LOG", 15, None),
    ("FAULT_LOG_REPLY", "FAULT_LOG_REPLY", 15, [[2000, 1, 1], [7500, 1, 0], [9000, 16, 1]]),
    ("FAULT_LOG_REPLY empty", "FAULT_LOG_REPLY", 16, []),
    ("SAVE", "SAVE", 17, None),
    ("SAVE_REPLY ok", "SAVE_REPLY", 17, [0, ""]),
    ("SAVE_REPLY refused", "SAVE_REPLY", 18, [1, ""]),
    *[
        (f"ERROR {name}", "ERROR", 7 if name == "E_CRC" else 20 + code, [code, ERROR_TEXTS[name]])
        for name, code in spec.error_codes().items()
    ],
]


def frame(name: str, type_name: str, seq: int, value: Any) -> dict[str, Any]:
    code = spec.frame_types()[type_name]
    payload = spec.encode_payload(type_name, value)
    return {
        "name": name,
        "type_name": type_name,
        "type": code,
        "seq": seq,
        "hex": spec.encode_frame(code, seq, payload).hex(),
        "payload_hex": payload.hex(),
        "kind": spec.payload_kind(type_name),
        "value": value,
    }


def streams(frames: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    good = bytes.fromhex(frames["HELLO seq 1"]["hex"])
    sample_frame = bytes.fromhex(frames["SAMPLE 4 cells discharge"]["hex"])
    bad_crc = bytearray(sample_frame)
    bad_crc[12] ^= 0x10
    bad_version = spec.encode_frame(1, 1, b"", version=2)
    too_long = bytes([0xA5, 1, 2, 0x34, 0x12, 0x01, 0x10])  # len 4097
    ctrl_c_frame = bytes.fromhex(frames["SAMPLE payload bytes 0x03 and 0xA5"]["hex"])
    return [
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
            "hex": bad_version.hex(),
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
            "hex": (bytes([0x03]) + ctrl_c_frame).hex(),
            "events": [{"event": "ctrl_c"}, {"event": "frame", "type": 2, "seq": 0x03A5}],
        },
    ]


def build() -> dict[str, Any]:
    frames = [frame(*case) for case in CASES]
    by_name = {f["name"]: f for f in frames}
    assert len(by_name) == len(frames), "frame names are unique"
    missing = set(spec.frame_types()) - {f["type_name"] for f in frames}
    assert not missing, f"no vector for the frame types {sorted(missing)}"
    errors = {f["value"][0] for f in frames if f["type_name"] == "ERROR"}
    assert errors == set(spec.error_codes().values()), "a vector for every reason code"
    _, _, check = spec.crc_parameters()
    assert spec.crc(b"123456789") == check, "the CRC as docs/protocol.md defines it"
    header = bytes.fromhex(by_name["HELLO seq 1"]["hex"])[1:7]
    return {
        "comment": "Generated from docs/protocol.md by tests/vectors/generate_protocol_vectors.py.",
        "types": spec.frame_types(),
        "errors": spec.error_codes(),
        "crc": [
            {"hex": b"123456789".hex(), "crc": check},
            {"hex": "", "crc": spec.crc(b"")},
            {"hex": header.hex(), "crc": spec.crc(header)},
        ],
        "frames": frames,
        "streams": streams(by_name),
    }


def main() -> None:
    OUT.write_text(json.dumps(build(), indent=1) + "\n")


if __name__ == "__main__":
    main()

"""The host codec against the shared vectors, plus round-trip property tests."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.protocol import commands
from host.protocol.codec import (
    MAX_PAYLOAD,
    ClearReason,
    DecodeError,
    Decoder,
    ErrorCode,
    Frame,
    FrameType,
    crc16,
    decode_error,
    decode_hello,
    decode_json,
    decode_sample,
    decode_state,
    decode_status,
    decode_u32,
    encode_frame,
    encode_json,
    encode_sample,
    seq_after,
)
from host.protocol.session import Session
from tests.vectors import spec
from tests.vectors.generate_protocol_vectors import build

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "protocol_vectors.json").read_text())
FRAMES = {c["name"]: c for c in VECTORS["frames"]}


def test_vectors_file_is_what_the_spec_makes() -> None:
    assert build() == VECTORS, "run python -m tests.vectors.generate_protocol_vectors"


def test_frame_types_and_reason_codes_are_the_spec_tables() -> None:
    assert {t.name: t.value for t in FrameType} == VECTORS["types"]
    assert {e.name: e.value for e in ErrorCode} == VECTORS["errors"]
    assert len(VECTORS["types"]) == 22 and len(VECTORS["errors"]) == 10


@pytest.mark.parametrize("case", VECTORS["crc"])
def test_crc(case: dict) -> None:
    assert crc16(bytes.fromhex(case["hex"])) == case["crc"]


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE's published check value


@given(data=st.binary(max_size=300), split=st.integers(0, 300))
def test_crc_is_the_one_the_document_names(data: bytes, split: int) -> None:
    # binascii.crc_hqx against the document's parameters computed bit by bit
    assert crc16(data) == spec.crc(data)
    assert crc16(data[split:], crc16(data[:split])) == crc16(data)  # it can be carried on


def _state_fields(payload: bytes) -> dict[str, int | list[int]]:
    """A decoded STATE back in the document's raw units and names."""
    s = decode_state(payload)
    return {
        "t_ms": s.t_ms,
        "soc_cpct": round(s.soc_pct * 100),
        "soc_unc_cpct": round(s.soc_unc_pct * 100),
        "remaining_mAh": s.remaining_mAh,
        "capacity_mAh": s.capacity_mAh,
        "anode_util_dmAhg": round(s.anode_util_mAh_g * 10),
        "flags": s.flags,
        "faults": s.fault_bits,
        "latched": s.latched_bits,
        "warnings": s.warning_bits,
        "balance": s.balance_bits,
        "cycle_count": s.cycle_count,
        "bad_frames": s.bad_frames,
        "samples": s.samples,
        "current_mA": s.current_mA,
        "min_cell_mV": s.min_cell_mV,
        "max_cell_mV": s.max_cell_mV,
        "max_temp_ddegC": -32768 if s.max_temp_degC is None else round(s.max_temp_degC * 10),
        "capacity_learned_count": s.cap_learn_count,
        "ccl_mA": s.ccl_mA,
        "dcl_mA": s.dcl_mA,
        "anode_potential_mV": -32768 if s.anode_potential_mV is None else s.anode_potential_mV,
        "current_offset_dmA": round(s.current_offset_mA * 10),
        "r_dc_uohm": round(s.r_dc_mohm * 1000),
        "capacity_unc_cpct": round(s.capacity_unc_pct * 100),
        "n_cells": len(s.cell_soc_pct),
        "cell_soc_cpct": [round(v * 100) for v in s.cell_soc_pct],
        "cell_util_dmAhg": [round(v * 10) for v in s.cell_anode_util_mAh_g],
    }


def _decoded(kind: str, payload: bytes) -> object:
    """The host codec's reading of a payload, in the vectors' form."""
    if kind == "HELLO_REPLY":
        h = decode_hello(payload)
        return {
            "protocol_version": h.protocol_version,
            "n_cells": h.n_cells,
            "n_temps": h.n_temps,
            "boot_flags": h.boot_flag_bits,
            "config_crc": h.config_crc,
            "ident": f"{h.firmware_version} {h.board_name}",
        }
    if kind == "SAMPLE":
        s = decode_sample(payload)
        return {
            "t_ms": s.t_ms,
            "current_mA": s.current_mA,
            "n_cells": len(s.cell_mV),
            "cell_mV": list(s.cell_mV),
            "n_temps": len(s.temp_ddegC),
            "temp_ddegC": list(s.temp_ddegC),
        }
    if kind == "STATE":
        return _state_fields(payload)
    if kind == "CLEAR_LATCHED":
        reason, mask = struct.unpack("<BI", payload)
        return {"reason": reason, "mask": mask}
    if kind == "json":
        return decode_json(payload)
    if kind == "status":
        status = decode_status(payload)
        return [status.status, status.text]
    if kind == "error":
        err = decode_error(payload)
        return [err.code, err.text]
    if kind == "u32":
        return decode_u32(payload)
    assert kind == "empty" and payload == b""
    return None


@pytest.mark.parametrize("case", VECTORS["frames"], ids=lambda c: c["name"])
def test_host_codec_reads_every_vector(case: dict) -> None:
    raw = bytes.fromhex(case["hex"])
    payload = bytes.fromhex(case["payload_hex"])
    assert FrameType[case["type_name"]] == case["type"]
    assert encode_frame(case["type"], case["seq"], payload) == raw
    (item,) = Decoder().feed(raw)
    assert item == Frame(case["type"], case["seq"], payload)
    assert _decoded(case["kind"], payload) == case["value"]


def _command(case: dict) -> commands.Command[object]:
    value = case["value"]
    if case["type_name"] == "SAMPLE":
        return commands.sample(
            value["t_ms"], value["cell_mV"], value["current_mA"], value["temp_ddegC"]
        )
    if case["type_name"] == "CONFIG_WRITE":
        return commands.config_write(value)
    if case["type_name"] == "CLEAR_LATCHED":
        return commands.clear_latched(ClearReason(value["reason"]), value["mask"])
    return commands.raw(FrameType[case["type_name"]])


REQUESTS = [c for c in VECTORS["frames"] if not c["type"] & 0x80 and c["type_name"] != "BOOT"]


@pytest.mark.parametrize("case", REQUESTS, ids=lambda c: c["name"])
def test_the_session_sends_every_request_vector(case: dict) -> None:
    session = Session()
    session.seq = case["seq"] - 1  # the session numbers from the one after
    assert session.start(_command(case), 0.0).hex() == case["hex"]


def test_host_encoders_make_the_request_payloads() -> None:
    write = FRAMES["CONFIG_WRITE"]
    assert encode_json(write["value"]).hex() == write["payload_hex"]
    for case in VECTORS["frames"]:
        if case["kind"] == "SAMPLE":
            v = case["value"]
            payload = encode_sample(v["t_ms"], v["cell_mV"], v["current_mA"], v["temp_ddegC"])
            assert payload.hex() == case["payload_hex"], case["name"]


@pytest.mark.parametrize("case", VECTORS["streams"], ids=lambda c: c["name"])
def test_stream_vectors(case: dict) -> None:
    expected = [e for e in case["events"] if e["event"] != "ctrl_c"]  # host never sees Ctrl-C
    got = Decoder().feed(bytes.fromhex(case["hex"]))
    assert len(got) == len(expected)
    for item, exp in zip(got, expected, strict=True):
        if exp["event"] == "frame":
            assert isinstance(item, Frame)
        else:
            assert isinstance(item, DecodeError) and item.reason == ErrorCode[exp["reason"]]
        assert (item.ftype, item.seq) == (exp["type"], exp["seq"])


def test_state_faults_as_names() -> None:
    s = decode_state(bytes.fromhex(FRAMES["STATE reply to a SAMPLE"]["payload_hex"]))
    assert s.faults == ("WIN_TOP",) and s.latched == () and s.warnings == ("NEAR_WINDOW_TOP",)
    assert not s.chg_on and s.dsg_on
    assert s.flag_names == ("DSG_ON", "BRANCH_KNOWN", "BRANCH_DISCHARGE")
    assert s.balancing(4) == (False, True, False, True)
    s = decode_state(bytes.fromhex(FRAMES["GET_STATE reply (type 0x83)"]["payload_hex"]))
    assert s.faults == ("SC", "CONFIG") and s.latched == ("SC",)
    assert s.warnings == ("SOC_UNCERTAIN", "STATE_DEFAULTS") and s.current_mA == -(2**30) + 1
    s = decode_state(bytes.fromhex(FRAMES["STATE without a temperature sensor"]["payload_hex"]))
    assert s.max_temp_degC is None and s.chg_on and s.dsg_on


def test_seq_wraps_past_zero() -> None:
    assert seq_after(0) == 1 and seq_after(65534) == 65535 and seq_after(65535) == 1


@given(
    ftype=st.integers(0, 255),
    seq=st.integers(0, 65535),
    payload=st.binary(max_size=300),
    noise=st.binary(max_size=20).map(lambda b: b.replace(b"\xa5", b"")),
    cut=st.integers(1, 50),
)
def test_roundtrip_through_noise_and_any_chunking(
    ftype: int, seq: int, payload: bytes, noise: bytes, cut: int
) -> None:
    raw = noise + encode_frame(ftype, seq, payload)
    dec = Decoder()
    items = []
    for i in range(0, len(raw), cut):
        items += dec.feed(raw[i : i + cut])
    assert items == [Frame(ftype, seq, payload)]


@given(payload=st.binary(max_size=64), flip=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_single_bit_flip_is_never_a_valid_frame(payload: bytes, flip: int, bit: int) -> None:
    raw = bytearray(encode_frame(2, 5, payload))
    # bytes after sync, except the length: a shorter length moves the CRC onto other
    # bytes, which then match by chance once in 65536 (a framing limit, not a CRC one)
    positions = [i for i in range(1, len(raw)) if i not in (5, 6)]
    i = positions[flip % len(positions)]
    raw[i] ^= 1 << bit
    # CRC-16 detects every single-bit error, so the damaged frame never decodes
    assert not [x for x in Decoder().feed(bytes(raw)) if isinstance(x, Frame)]


def test_encode_refuses_oversized_payload() -> None:
    with pytest.raises(ValueError):
        encode_frame(2, 1, bytes(MAX_PAYLOAD + 1))

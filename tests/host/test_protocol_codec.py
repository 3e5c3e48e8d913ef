"""The host codec against the shared vectors, plus round-trip property tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.protocol.codec import (
    MAX_PAYLOAD,
    DecodeError,
    Decoder,
    ErrorCode,
    Frame,
    crc16,
    decode_error,
    decode_hello,
    decode_json,
    decode_sample,
    decode_state,
    decode_u32,
    encode_frame,
    encode_sample,
    seq_after,
)
from tests.vectors.generate_protocol_vectors import build

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "protocol_vectors.json").read_text())


def test_vectors_file_is_what_the_generator_makes() -> None:
    assert build() == VECTORS, "run python -m tests.vectors.generate_protocol_vectors"


@pytest.mark.parametrize("case", VECTORS["crc"])
def test_crc(case: dict) -> None:
    assert crc16(bytes.fromhex(case["hex"])) == case["crc"]


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1


@pytest.mark.parametrize("case", VECTORS["frames"], ids=lambda c: c["name"])
def test_frame_vectors(case: dict) -> None:
    raw = bytes.fromhex(case["hex"])
    payload = bytes.fromhex(case["payload_hex"])
    assert encode_frame(case["type"], case["seq"], payload) == raw
    (item,) = Decoder().feed(raw)
    assert item == Frame(case["type"], case["seq"], payload)
    d = case["decoded"]
    kind = d["kind"]
    if kind == "sample":
        s = decode_sample(payload)
        assert (s.t_ms, s.current_mA, list(s.cell_mV), list(s.temp_ddegC)) == (
            d["t_ms"],
            d["current_mA"],
            d["cell_mV"],
            d["temp_ddegC"],
        )
        assert encode_sample(d["t_ms"], d["cell_mV"], d["current_mA"], d["temp_ddegC"]) == payload
    elif kind == "state":
        s = decode_state(payload)
        assert s.t_ms == d["t_ms"]
        assert s.soc_pct == pytest.approx(d["soc_cpct"] / 100)
        assert s.anode_util_mAh_g == pytest.approx(d["anode_util_dmAhg"] / 10)
        assert s.fault_bits == d["faults"] and s.latched_bits == d["latched"]
        assert s.current_mA == d["current_mA"] and s.samples == d["samples"]
        assert s.max_temp_degC == pytest.approx(d["max_temp_ddegC"] / 10)
        assert s.chg_on == bool(d["flags"] & 1) and s.dsg_on == bool(d["flags"] & 2)
    elif kind == "hello":
        h = decode_hello(payload)
        assert (h.n_cells, h.n_temps, h.boot_flag_bits, h.config_crc) == (
            d["n_cells"],
            d["n_temps"],
            d["boot_flags"],
            d["config_crc"],
        )
        assert f"{h.firmware_version} {h.board_name}" == d["ident"]
    elif kind == "error":
        e = decode_error(payload)
        assert (e.code, e.text) == (d["code"], d["text"])
    elif kind == "json":
        assert decode_json(payload) == d["value"]
    elif kind == "u32":
        assert decode_u32(payload) == d["value"]
    else:
        assert kind == "empty" and payload == b""


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
    frames = {c["name"]: c for c in VECTORS["frames"]}
    s = decode_state(bytes.fromhex(frames["STATE reply to a SAMPLE"]["payload_hex"]))
    assert s.faults == ("WIN_TOP",) and s.latched == () and s.warnings == ("NEAR_WINDOW_TOP",)
    assert not s.chg_on and s.dsg_on
    assert s.flag_names == ("DSG_ON", "BRANCH_KNOWN", "BRANCH_DISCHARGE")
    assert s.balancing(4) == (False, True, False, True)
    s = decode_state(bytes.fromhex(frames["GET_STATE reply (type 0x83)"]["payload_hex"]))
    assert s.faults == ("SC", "CONFIG") and s.latched == ("SC",)
    assert s.warnings == ("SOC_UNCERTAIN", "STATE_DEFAULTS") and s.current_mA == -(2**30) + 1


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

"""The worked examples in docs/protocol.md: real frames of the shared test vectors, and
field tables that spell out exactly those bytes with the values they carry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from host.protocol.codec import Decoder, ErrorCode, Frame, FrameType, crc16

REPO = Path(__file__).resolve().parents[2]
VECTORS = json.loads((REPO / "tests" / "vectors" / "protocol_vectors.json").read_text())


def worked_examples() -> list[tuple[str, bytes, list[tuple[bytes, str, str]]]]:
    """(heading, frame bytes, [(bytes, field, value)]) for each worked example."""
    doc = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")
    examples = doc.split("## Worked examples", 1)[1]
    out = []
    for section in re.split(r"^### ", examples, flags=re.M)[1:]:
        heading = section.splitlines()[0].strip()
        (block,) = re.findall(r"```\n([0-9a-f \n]+)```", section)
        rows = re.findall(r"^\| `([0-9a-f ]+)` \| ([^|]+) \| (.+) \|$", section, re.M)
        out.append(
            (
                heading,
                bytes.fromhex(block.replace("\n", " ")),
                [(bytes.fromhex(b), f.strip(), v.strip()) for b, f, v in rows],
            )
        )
    return out


EXAMPLES = worked_examples()


def test_there_are_worked_examples() -> None:
    assert [h for h, _, _ in EXAMPLES] == ["HELLO", "HELLO_REPLY", "SAMPLE", "STATE", "ERROR"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e[0])
def test_worked_example_is_a_vector_frame(example: tuple[str, bytes, list]) -> None:
    heading, raw, _ = example
    (frame,) = Decoder().feed(raw)
    assert isinstance(frame, Frame)
    assert FrameType(frame.ftype).name == heading
    assert raw.hex() in {f["hex"] for f in VECTORS["frames"]}


def _check_value(raw: bytes, data: bytes, field: str, value: str) -> None:
    text = re.match(r'^"(.*)"', value)
    if text:
        assert data.decode("utf-8") == text.group(1), field
        return
    number = re.match(r"^(-?0x[0-9A-Fa-f]+|-?\d+)", value)
    assert number, f"{field}: no value in {value!r}"
    n = int(number.group(1), 0)
    assert int.from_bytes(data, "little", signed=n < 0) == n, f"{field}: {value!r}"
    named = re.search(r"`(\w+)`", value)
    if named and field == "type":
        assert FrameType(n).name == named.group(1)
    elif named and field == "reason":
        assert ErrorCode(n).name == named.group(1)
    if field == "crc":
        span = re.search(r"of bytes 1\.\.(\d+)", value)
        assert span and int(span.group(1)) == len(raw) - 3, value
        assert crc16(raw[1:-2]) == n


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e[0])
def test_field_table_spells_out_the_frame(example: tuple[str, bytes, list]) -> None:
    _, raw, rows = example
    assert b"".join(data for data, _, _ in rows) == raw
    for data, field, value in rows:
        _check_value(raw, data, field, value)

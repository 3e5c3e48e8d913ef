"""docs/protocol.md read as data: its tables, and a reference encoder built only from them.

This is a third implementation of the wire format, independent of both codecs:
the frame header, the payload layouts (HELLO_REPLY/BOOT, SAMPLE, STATE), the
type and reason-code tables and the CRC parameters all come from the document,
so the shared vectors it makes test the host and firmware codecs against the
specification rather than against each other.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

_SCALARS = {"u8": "B", "u16": "H", "u32": "I", "i16": "h", "i32": "i"}


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # u8 .. i32, or "text" (UTF-8 to the end)
    count_of: str | None  # an array: the field holding its length ("2*n_cells")
    offset: str  # as the document writes it ("9+2n")


@dataclass(frozen=True)
class TypeRow:
    code: int
    name: str
    direction: str
    payload: str  # the document's description


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    """The text under `heading` (a line starting with it) up to the next heading."""
    match = re.search(rf"^#+ {re.escape(heading)}.*?$(.*?)(?=^#)", text, re.S | re.M)
    if match is None:
        raise ValueError(f"docs/protocol.md: no section {heading!r}")
    return match.group(1)


def _rows(section: str) -> list[list[str]]:
    """Table rows (header and rule excluded) as stripped cells; `\\|` stays in its cell."""
    rows = []
    for line in section.splitlines():
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append(cells)
    return rows[1:]


def _field(offset: str, size: str, text: str) -> Field:
    match = re.match(r"(u8|u16|u32|i16|i32|UTF-8)(?: text)? `(\w+)`", text)
    if match is None:
        raise ValueError(f"docs/protocol.md: cannot read the field {text!r}")
    kind = "text" if match.group(1) == "UTF-8" else match.group(1)
    count = re.fullmatch(r"\d+\*(\w+)", size)
    if kind != "text" and count is None and int(size) != struct.calcsize(_SCALARS[kind]):
        raise ValueError(f"docs/protocol.md: field {text!r} is {size} bytes, not a {kind}")
    return Field(match.group(2), kind, count.group(1) if count else None, offset)


@cache
def payload_layouts() -> dict[str, tuple[Field, ...]]:
    """'HELLO_REPLY', 'SAMPLE', 'STATE', 'CLEAR_LATCHED' -> their fields in wire order."""
    text = doc_text()
    layouts = {}
    for heading, name in (
        ("HELLO_REPLY / BOOT payload", "HELLO_REPLY"),
        ("SAMPLE payload", "SAMPLE"),
        ("STATE payload", "STATE"),
        ("CLEAR_LATCHED payload", "CLEAR_LATCHED"),
    ):
        rows = _rows(_section(text, heading))
        layouts[name] = tuple(_field(offset, size, f) for offset, size, f in rows)
    return layouts


@cache
def state_len() -> tuple[int, int]:
    """The STATE payload's size as the heading states it: (fixed bytes, bytes per cell)."""
    match = re.search(r"^### STATE payload .*?(\d+) \+ (\d+) n_cells bytes$", doc_text(), re.M)
    assert match is not None, "docs/protocol.md: the STATE heading names its size"
    return int(match.group(1)), int(match.group(2))


@cache
def header_fields() -> tuple[tuple[str, str], ...]:
    """(name, size) of the frame's fields in order, sync to crc."""
    return tuple((f.strip("`"), size) for _, size, f, _ in _rows(_section(doc_text(), "Frame")))


@cache
def type_rows() -> tuple[TypeRow, ...]:
    rows = _rows(_section(doc_text(), "Types"))
    return tuple(TypeRow(int(c, 16), n.strip("`"), d, p) for c, n, d, p in rows)


@cache
def frame_types() -> dict[str, int]:
    """Every frame type: the table's, and the reply type of each request (`type | 0x80`)."""
    types = {row.name: row.code for row in type_rows()}
    reply_of = re.search(r"Reply frames have `type \| (0x[0-9A-Fa-f]+)`", doc_text())
    assert reply_of is not None, "docs/protocol.md: the reply-type rule"
    for row in type_rows():
        if row.direction == "host -> fw":
            code = row.code | int(reply_of.group(1), 16)
            if code not in types.values():
                match = re.search(rf"reply `\w+` \(type {code:#04x}\)", row.payload)
                assert match, f"docs/protocol.md: {row.name}'s reply type {code:#04x} is not named"
                types[row.name + "_REPLY"] = code
    return types


@cache
def error_codes() -> dict[str, int]:
    match = re.search(r"Reason codes: (.*?)\n\n", doc_text(), re.S)
    assert match is not None, "docs/protocol.md: the reason codes"
    return {name: int(code) for code, name in re.findall(r"(\d+) `(E_\w+)`", match.group(1))}


@cache
def crc_parameters() -> tuple[int, int, int]:
    """(polynomial, initial value, check value of "123456789") as the document states them."""
    match = re.search(
        r"polynomial (0x[0-9A-F]+), initial value (0x[0-9A-F]+),\s+no reflection,\s+no final"
        r" XOR; the check value of ASCII \"123456789\" is (0x[0-9A-F]+)",
        doc_text(),
    )
    assert match is not None, "docs/protocol.md: the CRC parameters"
    poly, init, check = (int(g, 16) for g in match.groups())
    return poly, init, check


def crc(data: bytes) -> int:
    """The CRC the document names, bit by bit (MSB first, no reflection, no final XOR)."""
    poly, value, _ = crc_parameters()
    for byte in data:
        value ^= byte << 8
        for _ in range(8):
            value = ((value << 1) ^ poly) if value & 0x8000 else value << 1
            value &= 0xFFFF
    return value


def payload_kind(type_name: str) -> str:
    """How a type's payload is made: empty, a table (HELLO_REPLY, SAMPLE, STATE), json,
    status, error or u32, read from the Types table's payload column."""
    rows = {r.name: r for r in type_rows()}
    if type_name not in rows:  # a reply without a row of its own: its request's row says
        row = rows[type_name.removesuffix("_REPLY")]
        assert re.search(r"with the same payload as 0x82", row.payload), row
        return "STATE"
    text = rows[type_name].payload
    if text == "see below":
        return type_name
    for pattern, kind in (
        (r"^empty", "empty"),
        (r"^the `HELLO_REPLY` payload", "HELLO_REPLY"),
        (r"^UTF-8 JSON", "json"),
        (r"^u8 status", "status"),
        (r"^u8 reason code", "error"),
        (r"^u32 ", "u32"),
    ):
        if re.search(pattern, text):
            return kind
    raise ValueError(f"docs/protocol.md: cannot tell the payload of {type_name}: {text!r}")


def encode_table(layout: str, values: dict[str, Any]) -> bytes:
    """A payload laid out as the document's table for `layout`, from named values."""
    out = bytearray()
    for f in payload_layouts()[layout]:
        if f.offset.isdigit() and int(f.offset) != len(out):
            raise ValueError(f"docs/protocol.md: {layout}.{f.name} at {f.offset}, not {len(out)}")
        if f.kind == "text":
            out += values[f.name].encode("utf-8")
        elif f.count_of is not None:
            items = values[f.name]
            assert len(items) == values[f.count_of], f"{layout}.{f.name}: count mismatch"
            out += struct.pack(f"<{len(items)}{_SCALARS[f.kind]}", *items)
        else:
            out += struct.pack("<" + _SCALARS[f.kind], values[f.name])
    return bytes(out)


def encode_payload(type_name: str, value: Any) -> bytes:
    kind = payload_kind(type_name)
    if kind == "empty":
        assert value is None
        return b""
    if kind in payload_layouts():
        return encode_table(kind, value)
    if kind == "json":
        return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    if kind in ("status", "error"):
        code, text = value
        return bytes([code]) + text.encode("utf-8")
    assert kind == "u32"
    return struct.pack("<I", value)


def encode_frame(code: int, seq: int, payload: bytes, version: int = 1) -> bytes:
    """A frame laid out as the document's Frame table, with its CRC."""
    values = {"sync": 0xA5, "version": version, "type": code, "seq": seq, "len": len(payload)}
    out = bytearray()
    for name, size in header_fields():
        if name == "payload":
            out += payload
        elif name == "crc":
            out += struct.pack("<H", crc(bytes(out[1:])))
        else:
            out += values[name].to_bytes(int(size), "little")
    return bytes(out)

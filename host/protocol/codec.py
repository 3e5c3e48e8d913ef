"""Sans-I/O codec of the sisnbms serial protocol, version 1 (docs/protocol.md).

Encodes host frames, decodes firmware frames incrementally, and turns
payloads into dataclasses with units in their names. Current is positive on
discharge. Mirrors firmware/bms/codec.py; both are checked against
tests/vectors/protocol_vectors.json, which are made from docs/protocol.md's
tables by an encoder of their own (tests/vectors/spec.py).
"""

from __future__ import annotations

import binascii
import enum
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from host.protocol.faults import BOOT_FLAG_BITS, FAULT_BITS, FLAG_BITS, WARNING_BITS, names

SYNC = 0xA5
VERSION = 1
HEADER_LEN = 7
CRC_LEN = 2
MAX_PAYLOAD = 4096
MAX_CELLS = 16
MAX_TEMPS = 8
STATE_FIXED_LEN = 67  # the STATE payload before its per-cell part
STATE_CELL_LEN = 4  # bytes a cell: u16 SOC, u16 utilization
NO_ANODE_MV = -32768  # anode_potential_mV before the first plausible sample
REPLY = 0x80
# max_temp_ddegC when the sample had no temperature reading: it carried none, or every
# reading was -32768 itself; on a board with sensors a sensor fault (docs/protocol.md)
NO_TEMP_DDEGC = -32768
NO_TEMP_READING = "no reading"
NO_TEMP_SENSOR_FAULT = "no reading (sensor fault)"
SEQ_MODULUS = 0x10000


class FrameType(enum.IntEnum):
    HELLO = 0x01
    SAMPLE = 0x02
    GET_STATE = 0x03
    CONFIG_READ = 0x04
    CONFIG_WRITE = 0x05
    ENTER_REPL = 0x07
    RESET = 0x08
    FAULT_LOG = 0x09
    SAVE = 0x0A
    CLEAR_LATCHED = 0x0B
    HELLO_REPLY = 0x81
    STATE = 0x82
    GET_STATE_REPLY = 0x83
    CONFIG = 0x84
    CONFIG_WRITE_REPLY = 0x85
    ENTER_REPL_REPLY = 0x87
    RESET_REPLY = 0x88
    FAULT_LOG_REPLY = 0x89
    SAVE_REPLY = 0x8A
    CLEAR_LATCHED_REPLY = 0x8B
    BOOT = 0x40
    ERROR = 0xFF


class ClearReason(enum.IntEnum):
    """Why latched faults are cleared (CLEAR_LATCHED). 0 and 1 are no reasons: the fault
    log's event field uses them for "released" and "set"."""

    INSPECTED = 2  # the pack and its wiring were inspected and found sound
    CELL_REPLACED = 3
    SENSOR_REPAIRED = 4  # the trip came from a faulty sensor or tap, now repaired
    TEST = 5  # bench test or commissioning


class ErrorCode(enum.IntEnum):
    E_CRC = 1
    E_VERSION = 2
    E_LENGTH = 3
    E_TYPE = 4
    E_SEQ = 5
    E_TIME = 6
    E_PAYLOAD = 7
    E_TIMEOUT = 8
    E_BUSY = 9
    E_MEMORY = 10


def crc16(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR.

    binascii.crc_hqx is that CRC with the initial value passed in (the firmware keeps
    its own table CRC, which stays in small ints on 32-bit ports).
    """
    return binascii.crc_hqx(data, crc)


@dataclass(frozen=True)
class Frame:
    ftype: int
    seq: int
    payload: bytes
    version: int = VERSION


@dataclass(frozen=True)
class DecodeError:
    """A frame whose header was readable but which was rejected (bad CRC, version, length)."""

    reason: ErrorCode
    ftype: int
    seq: int


def encode_frame(ftype: int, seq: int, payload: bytes = b"", *, version: int = VERSION) -> bytes:
    if not 0 <= seq < SEQ_MODULUS:
        raise ValueError(f"seq {seq} outside 0..65535")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = struct.pack("<BBHH", version, ftype, seq, len(payload)) + payload
    return bytes([SYNC]) + body + struct.pack("<H", crc16(body))


class Decoder:
    """Incremental frame decoder: bytes in, frames and rejections out, in order.

    `receive()` only buffers; `next()` parses one item at a time, so bytes after a
    frame stay unparsed until asked for (after ENTER_REPL_REPLY they are the REPL's
    text, see `unparsed()`). `feed()` does both and returns every complete item.
    Bytes between frames are skipped (counted in `skipped`). A header with a length
    over MAX_PAYLOAD is reported and resynchronised on the next sync.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.skipped = 0

    def receive(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    def next(self) -> Frame | DecodeError | None:
        """The next complete frame or rejection in the buffer; None until more bytes come."""
        buf = self._buf
        start = buf.find(SYNC)
        if start < 0:
            self.skipped += len(buf)
            buf.clear()
            return None
        if start:
            self.skipped += start
            del buf[:start]
        if len(buf) < HEADER_LEN:
            return None
        version, ftype, seq, length = struct.unpack_from("<BBHH", buf, 1)
        if length > MAX_PAYLOAD:
            del buf[:1]
            return DecodeError(ErrorCode.E_LENGTH, ftype, seq)
        end = HEADER_LEN + length + CRC_LEN
        if len(buf) < end:
            return None
        (rx_crc,) = struct.unpack_from("<H", buf, end - CRC_LEN)
        if crc16(buf[1 : end - CRC_LEN]) != rx_crc:
            # A false sync inside noise: skip only that byte so a real frame behind it is found.
            del buf[:1]
            return DecodeError(ErrorCode.E_CRC, ftype, seq)
        payload = bytes(buf[HEADER_LEN : end - CRC_LEN])
        del buf[:end]
        if version != VERSION:
            return DecodeError(ErrorCode.E_VERSION, ftype, seq)
        return Frame(ftype, seq, payload, version)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | DecodeError]:
        """Buffer `data` and return every item complete so far."""
        self.receive(data)
        out: list[Frame | DecodeError] = []
        while (item := self.next()) is not None:
            out.append(item)
        return out

    def drop_partial(self) -> bool:
        """Give up on the partial frame held (it stalled, or its sync byte was noise and its
        length field a random number): the bytes after its sync byte are searched again.
        False when no partial frame is held."""
        if not self._buf:
            return False
        del self._buf[:1]
        self.skipped += 1
        return True

    def pending(self) -> int:
        """Bytes held waiting for the rest of a frame (or not parsed yet)."""
        return len(self._buf)

    def unparsed(self) -> bytes:
        """The bytes received and not parsed yet, as they came."""
        return bytes(self._buf)


# ---- payloads ------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A SAMPLE frame's payload: sensor readings at simulated time t_ms."""

    t_ms: int
    current_mA: int  # positive on discharge
    cell_mV: tuple[int, ...]
    temp_ddegC: tuple[int, ...]


def encode_sample(
    t_ms: int, cell_mV: Sequence[int], current_mA: int, temp_ddegC: Sequence[int] = ()
) -> bytes:
    """SAMPLE payload; current_mA positive on discharge."""
    if not 1 <= len(cell_mV) <= MAX_CELLS:
        raise ValueError(f"{len(cell_mV)} cells outside 1..{MAX_CELLS}")
    if len(temp_ddegC) > MAX_TEMPS:
        raise ValueError(f"{len(temp_ddegC)} temperatures over {MAX_TEMPS}")
    n, nt = len(cell_mV), len(temp_ddegC)
    return (
        struct.pack("<IiB", t_ms, current_mA, n)
        + struct.pack(f"<{n}H", *cell_mV)
        + struct.pack(f"<B{nt}h", nt, *temp_ddegC)
    )


def decode_sample(payload: bytes) -> Sample:
    t_ms, current_mA, n = struct.unpack_from("<IiB", payload)
    cells = struct.unpack_from(f"<{n}H", payload, 9)
    nt = payload[9 + 2 * n]
    temps = struct.unpack_from(f"<{nt}h", payload, 10 + 2 * n)
    if len(payload) != 10 + 2 * n + 2 * nt:
        raise ValueError("SAMPLE payload size does not match its counts")
    return Sample(t_ms, current_mA, cells, temps)


_STATE = struct.Struct("<IhHHHHHIIHHHHIiHHhHIIhhIHB")
assert _STATE.size == STATE_FIXED_LEN


def state_len(n_cells: int) -> int:
    """STATE payload bytes for n_cells cells."""
    return STATE_FIXED_LEN + STATE_CELL_LEN * n_cells


def is_state_payload(payload: bytes) -> bool:
    """A STATE payload's size agrees with the cell count it carries."""
    n = len(payload) - STATE_FIXED_LEN
    return n >= STATE_CELL_LEN and payload[STATE_FIXED_LEN - 1] * STATE_CELL_LEN == n


@dataclass(frozen=True)
class State:
    """A STATE payload in host units. Current positive on discharge; ccl_mA and dcl_mA are
    magnitudes (the largest charge and discharge current the BMS allows now)."""

    t_ms: int
    soc_pct: float
    soc_unc_pct: float
    remaining_mAh: int
    capacity_mAh: int
    anode_util_mAh_g: float
    flags: int
    fault_bits: int
    latched_bits: int
    warning_bits: int
    balance_bits: int
    cycle_count: int
    bad_frames: int
    samples: int
    current_mA: int
    min_cell_mV: int
    max_cell_mV: int
    max_temp_degC: float | None  # None: no reading (NO_TEMP_DDEGC); see max_temp_reading
    cap_learn_count: int
    ccl_mA: int = 0
    dcl_mA: int = 0
    anode_potential_mV: int | None = None  # the cell nearest plating; None: no estimate yet
    current_offset_mA: float = 0.0  # the learned current-sensor offset
    r_dc_mohm: float = 0.0  # the learned DC resistance (25 degC, mid SOC) of the highest cell
    capacity_unc_pct: float = 0.0  # the learned capacity's relative uncertainty
    cell_soc_pct: tuple[float, ...] = ()
    cell_anode_util_mAh_g: tuple[float, ...] = ()

    @property
    def chg_on(self) -> bool:
        return bool(self.flags & 1)

    @property
    def dsg_on(self) -> bool:
        return bool(self.flags & 2)

    @property
    def faults(self) -> tuple[str, ...]:
        return names(self.fault_bits, FAULT_BITS)

    @property
    def latched(self) -> tuple[str, ...]:
        return names(self.latched_bits, FAULT_BITS)

    @property
    def warnings(self) -> tuple[str, ...]:
        return names(self.warning_bits, WARNING_BITS)

    @property
    def flag_names(self) -> tuple[str, ...]:
        return names(self.flags, FLAG_BITS)

    @property
    def max_temp_reading(self) -> str:
        """What max_temp_degC is: "measured"; or, for NO_TEMP_DDEGC, "no reading (sensor
        fault)" when the reply carries SENSOR_RANGE (the firmware's verdict on a sample that
        lacked a configured probe or read -32768), else "no reading" (a board without
        temperature sensors, or a fault still within sensor_delay_ms)."""
        if self.max_temp_degC is not None:
            return "measured"
        return NO_TEMP_SENSOR_FAULT if "SENSOR_RANGE" in self.faults else NO_TEMP_READING

    @property
    def max_temp_text(self) -> str:
        """'25.1 degC', or max_temp_reading when there is no reading."""
        if self.max_temp_degC is None:
            return self.max_temp_reading
        return f"{self.max_temp_degC:.1f} degC"

    def balancing(self, n_cells: int) -> tuple[bool, ...]:
        """Bleed decision per cell, cell 1 first."""
        return tuple(bool(self.balance_bits >> k & 1) for k in range(n_cells))

    def as_dict(self) -> dict[str, Any]:
        return {
            **{f: getattr(self, f) for f in self.__dataclass_fields__},
            "cell_soc_pct": list(self.cell_soc_pct),
            "cell_anode_util_mAh_g": list(self.cell_anode_util_mAh_g),
            "chg_on": self.chg_on,
            "dsg_on": self.dsg_on,
            "faults": list(self.faults),
            "latched": list(self.latched),
            "warnings": list(self.warnings),
            "flag_names": list(self.flag_names),
            "max_temp_reading": self.max_temp_reading,
        }


def decode_state(payload: bytes) -> State:
    if not is_state_payload(payload):
        raise ValueError(
            f"STATE payload of {len(payload)} bytes: not {STATE_FIXED_LEN} + "
            f"{STATE_CELL_LEN} x its cell count"
        )
    v = _STATE.unpack_from(payload)
    n = v[25]
    cells = struct.unpack_from(f"<{n}h{n}H", payload, STATE_FIXED_LEN)
    return State(
        t_ms=v[0],
        soc_pct=v[1] / 100.0,
        soc_unc_pct=v[2] / 100.0,
        remaining_mAh=v[3],
        capacity_mAh=v[4],
        anode_util_mAh_g=v[5] / 10.0,
        flags=v[6],
        fault_bits=v[7],
        latched_bits=v[8],
        warning_bits=v[9],
        balance_bits=v[10],
        cycle_count=v[11],
        bad_frames=v[12],
        samples=v[13],
        current_mA=v[14],
        min_cell_mV=v[15],
        max_cell_mV=v[16],
        max_temp_degC=None if v[17] == NO_TEMP_DDEGC else v[17] / 10.0,
        cap_learn_count=v[18],
        ccl_mA=v[19],
        dcl_mA=v[20],
        anode_potential_mV=None if v[21] == NO_ANODE_MV else v[21],
        current_offset_mA=v[22] / 10.0,
        r_dc_mohm=v[23] / 1000.0,
        capacity_unc_pct=v[24] / 100.0,
        cell_soc_pct=tuple(c / 100.0 for c in cells[:n]),
        cell_anode_util_mAh_g=tuple(c / 10.0 for c in cells[n:]),
    )


def encode_state_raw(
    values: Sequence[int], cell_soc: Sequence[int], cell_util: Sequence[int]
) -> bytes:
    """STATE payload from its 25 fixed raw integer fields in wire order (the cell count is
    added) and the per-cell lists (for tests and vectors)."""
    n = len(cell_soc)
    return _STATE.pack(*values, n) + struct.pack(f"<{n}h{n}H", *cell_soc, *cell_util)


@dataclass(frozen=True)
class HelloReply:
    """HELLO_REPLY or BOOT payload."""

    protocol_version: int
    n_cells: int
    n_temps: int
    boot_flag_bits: int
    config_crc: int
    firmware_version: str
    board_name: str

    @property
    def boot_flags(self) -> tuple[str, ...]:
        return names(self.boot_flag_bits, BOOT_FLAG_BITS)


def decode_hello(payload: bytes) -> HelloReply:
    if len(payload) < 8:
        raise ValueError(f"HELLO_REPLY payload of {len(payload)} bytes, expected >= 8")
    version, n_cells, n_temps, flags, crc = struct.unpack_from("<BBBBI", payload)
    text = payload[8:].decode("utf-8", "replace")
    fw, _, board = text.partition(" ")
    return HelloReply(version, n_cells, n_temps, flags, crc, fw, board)


def encode_hello_reply(
    n_cells: int, n_temps: int, boot_flag_bits: int, config_crc: int, ident: str
) -> bytes:
    return struct.pack("<BBBBI", VERSION, n_cells, n_temps, boot_flag_bits, config_crc) + (
        ident.encode()
    )


@dataclass(frozen=True)
class ErrorReply:
    code: int
    text: str

    @property
    def name(self) -> str:
        try:
            return ErrorCode(self.code).name
        except ValueError:
            return f"E_{self.code}"


def decode_error(payload: bytes) -> ErrorReply:
    if not payload:
        raise ValueError("ERROR payload is empty")
    return ErrorReply(payload[0], payload[1:].decode("utf-8", "replace"))


@dataclass(frozen=True)
class StatusReply:
    """CONFIG_WRITE_REPLY / SAVE_REPLY: status 0 ok, 1 rejected, 2 applied but not saved."""

    status: int
    text: str

    @property
    def ok(self) -> bool:
        return self.status == 0


def decode_status(payload: bytes) -> StatusReply:
    if not payload:
        raise ValueError("status payload is empty")
    return StatusReply(payload[0], payload[1:].decode("utf-8", "replace"))


def encode_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def decode_json(payload: bytes) -> Any:
    return json.loads(payload.decode("utf-8"))


def encode_clear_latched(reason: int, mask: int = 0xFFFFFF) -> bytes:
    """CLEAR_LATCHED payload: the reason code and the latched bits to clear."""
    return struct.pack("<BI", int(ClearReason(reason)), mask)


def decode_u32(payload: bytes) -> int:
    if len(payload) != 4:
        raise ValueError(f"expected a u32 payload, got {len(payload)} bytes")
    return int(struct.unpack("<I", payload)[0])


def seq_after(seq: int) -> int:
    """The next host sequence number: 1..65535, wrapping past 0 (reserved)."""
    return 1 if seq >= SEQ_MODULUS - 1 else seq + 1

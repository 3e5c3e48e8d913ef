"""A trace of the frames on the wire, for `sisnbms -vv`: type, seq, length and what they say.

BmsClient hands every chunk it writes and reads to its WireTrace; nothing is decoded
unless the `host.protocol.wire` logger is enabled for DEBUG, so the trace costs one
level check per chunk otherwise. Received chunks may split frames: a trace keeps its
own decoder across them. Current is positive on discharge.
"""

from __future__ import annotations

import logging

from host.protocol.codec import (
    DecodeError,
    Decoder,
    Frame,
    FrameType,
    decode_error,
    decode_hello,
    decode_json,
    decode_sample,
    decode_state,
    decode_status,
)

log = logging.getLogger("host.protocol.wire")

_HEX_SHOWN = 24  # payload bytes shown for a frame the trace does not decode
_TEXT_SHOWN = 300  # bytes of text between frames shown


class WireTrace:
    """Logs the frames in the bytes a client sends (->) and receives (<-)."""

    def __init__(self) -> None:
        self._rx = Decoder()
        self._rx_live = False  # the decoder has followed the stream since tracing began

    def sent(self, data: bytes) -> None:
        if log.isEnabledFor(logging.DEBUG):
            _log_items("->", Decoder(), data)

    def received(self, data: bytes) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            self._rx_live = False
            return
        if not self._rx_live:
            self._rx, self._rx_live = Decoder(), True
        _log_items("<-", self._rx, data)


def _log_items(arrow: str, decoder: Decoder, data: bytes) -> None:
    skipped = decoder.skipped
    items = decoder.feed(data)
    for item in items:
        log.debug("%s %s", arrow, describe(item))
    if decoder.skipped > skipped:
        # Text between frames: a REPL's banner, a traceback, line noise. Shown when the chunk
        # holds nothing else (a mixed chunk's text cannot be told from a frame's bytes here).
        text = "" if items else f": {data[:_TEXT_SHOWN].decode(errors='replace')!r}"
        log.debug("%s %d byte(s) outside frames%s", arrow, decoder.skipped - skipped, text)


def describe(item: Frame | DecodeError) -> str:
    """One line: frame type, seq, payload length and a decoded summary."""
    if isinstance(item, DecodeError):
        return f"rejected frame ({item.reason.name}) type 0x{item.ftype:02x} seq {item.seq}"
    name = _type_name(item.ftype)
    head = f"{name} seq {item.seq} len {len(item.payload)}"
    try:
        summary = _summary(item)
    except (ValueError, KeyError, IndexError, TypeError) as exc:  # a malformed payload
        summary = f"undecodable ({exc}): {item.payload[:_HEX_SHOWN].hex(' ')}"
    return f"{head}: {summary}" if summary else head


def _type_name(ftype: int) -> str:
    try:
        return FrameType(ftype).name
    except ValueError:
        return f"0x{ftype:02x}"


def _summary(frame: Frame) -> str:
    ftype, payload = frame.ftype, frame.payload
    if ftype == FrameType.SAMPLE:
        s = decode_sample(payload)
        temps = ",".join(str(t) for t in s.temp_ddegC)
        cells = ",".join(str(v) for v in s.cell_mV)
        # A sample without readings: a sensor fault on a board configured for probes.
        temps = f"temps {temps} ddegC" if temps else "no temperature reading"
        return f"t {s.t_ms} ms, I {s.current_mA} mA, cells {cells} mV, {temps}"
    if ftype in (FrameType.STATE, FrameType.GET_STATE_REPLY):
        st = decode_state(payload)
        faults = ",".join(st.faults) or "none"
        return (
            f"t {st.t_ms} ms, SOC {st.soc_pct:.2f} %, CHG {_on(st.chg_on)}, "
            f"DSG {_on(st.dsg_on)}, faults {faults}, max temp {st.max_temp_text}"
        )
    if ftype in (FrameType.HELLO_REPLY, FrameType.BOOT):
        h = decode_hello(payload)
        flags = ",".join(h.boot_flags) or "none"
        return (
            f"firmware {h.firmware_version} on {h.board_name}, {h.n_cells} cell(s), "
            f"{h.n_temps} temp(s), boot flags {flags}, config CRC 0x{h.config_crc:08x}"
        )
    if ftype == FrameType.ERROR:
        err = decode_error(payload)
        return f"{err.name} {err.text!r}"
    if ftype in (FrameType.CONFIG_WRITE_REPLY, FrameType.SAVE_REPLY):
        status = decode_status(payload)
        return f"status {status.status} {status.text!r}"
    if ftype in (FrameType.CONFIG, FrameType.CONFIG_WRITE, FrameType.FAULT_LOG_REPLY):
        value = decode_json(payload)
        return f"{len(value)} entries" if isinstance(value, (dict, list)) else repr(value)
    return payload[:_HEX_SHOWN].hex(" ") + (" ..." if len(payload) > _HEX_SHOWN else "")


def _on(flag: bool) -> str:
    return "on" if flag else "off"

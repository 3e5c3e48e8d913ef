"""The host's requests as data: frame type, payload, retry policy and how to read the reply.

A driver hands a Command to `Session.start()`, writes the bytes it gets, and
when the session reports the reply frame calls `command.decode(frame)` for
the typed result. Every driver (asyncio, lockstep) shares these, so each
request is defined once. Current is positive on discharge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from host.protocol.codec import (
    ClearReason,
    Frame,
    FrameType,
    HelloReply,
    State,
    decode_hello,
    decode_json,
    decode_state,
    decode_status,
    decode_u32,
    encode_clear_latched,
    encode_json,
    encode_sample,
)
from host.protocol.errors import BmsError, BmsRejected

T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True)
class Command(Generic[T_co]):
    """One request. `sample_t_ms`: a SAMPLE's time, for the E_TIME recovery after a resend."""

    ftype: FrameType
    decode: Callable[[Frame], T_co]
    payload: bytes = b""
    retry_on_timeout: bool = True
    sample_t_ms: int | None = None


def _state(frame: Frame) -> State:
    return decode_state(frame.payload)


def _nothing(frame: Frame) -> None:
    return None


def _config(frame: Frame) -> dict[str, Any]:
    value = decode_json(frame.payload)
    if not isinstance(value, dict):
        raise BmsError("CONFIG_READ: the firmware sent a JSON value that is not an object")
    return value


def _fault_log(frame: Frame) -> list[list[int]]:
    value = decode_json(frame.payload)
    if not isinstance(value, list):
        raise BmsError("FAULT_LOG: the firmware sent a JSON value that is not a list")
    return value


def _status_of(request: str) -> Callable[[Frame], None]:
    def check(frame: Frame) -> None:
        status = decode_status(frame.payload)
        if not status.ok:
            raise BmsRejected(request, 0, status.text)

    return check


def raw(ftype: FrameType, payload: bytes = b"", *, retry_on_timeout: bool = True) -> Command[Frame]:
    """Any request; its result is the reply frame itself."""
    return Command(ftype, lambda frame: frame, payload, retry_on_timeout)


def hello() -> Command[HelloReply]:
    return Command(FrameType.HELLO, lambda frame: decode_hello(frame.payload))


def sample(
    t_ms: int, cell_mV: Sequence[int], current_mA: int, temp_ddegC: Sequence[int] = ()
) -> Command[State]:
    """One sample (current positive on discharge); its reply holds the firmware's decisions."""
    payload = encode_sample(t_ms, cell_mV, current_mA, temp_ddegC)
    return Command(FrameType.SAMPLE, _state, payload, sample_t_ms=t_ms)


def get_state() -> Command[State]:
    return Command(FrameType.GET_STATE, _state)


def config_read() -> Command[dict[str, Any]]:
    return Command(FrameType.CONFIG_READ, _config)


def config_write(changes: dict[str, Any]) -> Command[None]:
    """All the changes or none; decoding raises BmsRejected with the firmware's reason."""
    return Command(FrameType.CONFIG_WRITE, _status_of("CONFIG_WRITE"), encode_json(changes))


def clear_latched(reason: ClearReason, mask: int = 0xFFFFFF) -> Command[int]:
    """Clear the latched faults in mask, saying why; the result is the bits that were cleared
    (the firmware logs them with the reason and persists the change)."""
    return Command(
        FrameType.CLEAR_LATCHED,
        lambda frame: decode_u32(frame.payload),
        encode_clear_latched(reason, mask),
    )


def enter_repl() -> Command[None]:
    # Not resent on timeout: a copy arriving at the REPL would be typed into it.
    return Command(FrameType.ENTER_REPL, _nothing, retry_on_timeout=False)


def reset() -> Command[None]:
    # Not resent on timeout: a copy would reset the freshly booted firmware again.
    return Command(FrameType.RESET, _nothing, retry_on_timeout=False)


def fault_log() -> Command[list[list[int]]]:
    return Command(FrameType.FAULT_LOG, _fault_log)


def save() -> Command[None]:
    return Command(FrameType.SAVE, _status_of("SAVE"))

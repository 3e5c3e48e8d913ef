"""BmsClient: the host's protocol session over any byte link (docs/protocol.md).

Numbers frames, matches replies by sequence number, retries a bounded number
of times on a timeout or an ERROR(E_CRC) (each retry is a new frame with a
new seq), and counts what happened in `stats`. The link only moves bytes:
`write(data)` and `await read(max_bytes, timeout_s) -> bytes`, as
host.link.SerialLink does. Current is positive on discharge.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from host.protocol.codec import (
    DecodeError,
    Decoder,
    ErrorCode,
    ErrorReply,
    Frame,
    FrameType,
    HelloReply,
    State,
    decode_error,
    decode_hello,
    decode_json,
    decode_state,
    decode_status,
    decode_u32,
    encode_frame,
    encode_json,
    encode_sample,
    seq_after,
)


class Link(Protocol):
    def write(self, data: bytes) -> None | Awaitable[None]: ...

    async def read(self, max_bytes: int, timeout_s: float) -> bytes: ...


class BmsError(Exception):
    """The firmware did not do what was asked."""


class BmsTimeout(BmsError):
    """No reply after every retry."""


class BmsRejected(BmsError):
    """The firmware answered ERROR (or a non-zero status)."""

    def __init__(self, request: str, code: int, text: str, *, retried: bool = False) -> None:
        self.request = request
        self.code = code
        self.text = text
        self.retried = retried
        reason = ErrorReply(code, text).name if code else "rejected"
        super().__init__(f"{request}: {reason}" + (f": {text}" if text else ""))


@dataclass
class ClientStats:
    frames_sent: int = 0
    frames_received: int = 0
    crc_errors: int = 0  # frames from the firmware that failed the host's CRC check
    crc_rejects: int = 0  # ERROR(E_CRC) replies: the firmware saw our frame damaged
    error_replies: int = 0  # every ERROR reply, E_CRC included
    other_errors: int = 0  # undecodable frames other than CRC (version, length)
    timeouts: int = 0
    retries: int = 0
    stale_replies: int = 0  # replies to an earlier attempt or a frame we gave up on
    boots: int = 0  # BOOT frames seen: the firmware (re)started

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class BmsClient:
    def __init__(self, link: Link, *, timeout_s: float = 1.0, retries: int = 2) -> None:
        self.link = link
        self.timeout_s = timeout_s
        self.retries = retries
        self.stats = ClientStats()
        # Fault injection: every outgoing frame passes through it (corrupt, truncate, drop).
        self.tx_filter: Callable[[bytes], bytes] | None = None
        self.last_boot: HelloReply | None = None
        self._boot_pending = False  # a BOOT seen that wait_boot() has not returned yet
        self._seq = 0
        self._decoder = Decoder()
        self._frames: deque[Frame] = deque()
        self._lock = asyncio.Lock()

    # -- commands ------------------------------------------------------------
    async def hello(self) -> HelloReply:
        frame = await self.request(FrameType.HELLO)
        return decode_hello(frame.payload)

    async def sample(
        self,
        t_ms: int,
        cell_mV: Sequence[int],
        current_mA: int,
        temp_ddegC: Sequence[int] = (),
    ) -> State:
        """Send one sample (current positive on discharge); its reply holds its decisions."""
        payload = encode_sample(t_ms, cell_mV, current_mA, temp_ddegC)
        try:
            frame = await self.request(FrameType.SAMPLE, payload)
        except BmsRejected as err:
            # A retry after a lost reply meets E_TIME because the first copy was
            # accepted: the state it produced is still there to read.
            if err.retried and err.code == ErrorCode.E_TIME:
                state = await self.get_state()
                if state.t_ms == t_ms:
                    return state
            raise
        return decode_state(frame.payload)

    async def get_state(self) -> State:
        frame = await self.request(FrameType.GET_STATE)
        return decode_state(frame.payload)

    async def config_read(self) -> dict[str, Any]:
        frame = await self.request(FrameType.CONFIG_READ)
        value = decode_json(frame.payload)
        if not isinstance(value, dict):
            raise BmsError("CONFIG_READ: the firmware sent a JSON value that is not an object")
        return value

    async def config_write(self, changes: dict[str, Any]) -> None:
        """Apply all the changes or none; raises BmsRejected with the firmware's reason."""
        frame = await self.request(FrameType.CONFIG_WRITE, encode_json(changes))
        status = decode_status(frame.payload)
        if not status.ok:
            raise BmsRejected("CONFIG_WRITE", 0, status.text)

    async def clear_faults(self) -> int:
        """Clear latched faults; return the bits that were cleared."""
        frame = await self.request(FrameType.CLEAR_FAULTS)
        return decode_u32(frame.payload)

    async def enter_repl(self) -> None:
        # Not retried on timeout: a copy arriving at the REPL would be typed into it.
        await self.request(FrameType.ENTER_REPL, retry_on_timeout=False)

    async def reset(self) -> None:
        """Soft-reset the firmware; follow with wait_boot() for its BOOT frame."""
        self._boot_pending = False
        # Not retried on timeout: a copy would reset the freshly booted firmware again.
        await self.request(FrameType.RESET, retry_on_timeout=False)

    async def fault_log(self) -> list[list[int]]:
        frame = await self.request(FrameType.FAULT_LOG)
        value = decode_json(frame.payload)
        if not isinstance(value, list):
            raise BmsError("FAULT_LOG: the firmware sent a JSON value that is not a list")
        return value

    async def save(self) -> None:
        frame = await self.request(FrameType.SAVE)
        status = decode_status(frame.payload)
        if not status.ok:
            raise BmsRejected("SAVE", 0, status.text)

    async def wait_boot(self, timeout_s: float) -> HelloReply:
        """The firmware's unsolicited BOOT frame (after power-on or RESET).

        Returns at once if a BOOT arrived since the last call (or since reset()),
        even while another request was waiting for its reply.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            while self._frames:
                self._unsolicited(self._frames.popleft())
            if self._boot_pending and self.last_boot is not None:
                self._boot_pending = False
                return self.last_boot
            left = deadline - loop.time()
            if left <= 0:
                raise BmsTimeout(f"no BOOT frame within {timeout_s} s")
            await self._receive(left)

    # -- session -------------------------------------------------------------
    async def request(
        self, ftype: FrameType, payload: bytes = b"", *, retry_on_timeout: bool = True
    ) -> Frame:
        """Send a frame and return its reply frame; retries per the class docstring."""
        async with self._lock:
            retried = False
            for attempt in range(self.retries + 1):
                if attempt:
                    self.stats.retries += 1
                    retried = True
                self._seq = seq_after(self._seq)
                seq = self._seq
                data = encode_frame(ftype, seq, payload)
                if self.tx_filter is not None:
                    data = self.tx_filter(data)
                if data:
                    result = self.link.write(data)
                    if inspect.isawaitable(result):
                        await result
                self.stats.frames_sent += 1
                reply = await self._reply(seq, ftype | 0x80)
                if reply is None:
                    self.stats.timeouts += 1
                    if not retry_on_timeout:
                        break
                    continue
                if reply.ftype == FrameType.ERROR:
                    err = decode_error(reply.payload)
                    self.stats.error_replies += 1
                    if err.code == ErrorCode.E_CRC:
                        self.stats.crc_rejects += 1
                        continue
                    raise BmsRejected(ftype.name, err.code, err.text, retried=retried)
                return reply
            raise BmsTimeout(f"{ftype.name}: no valid reply after {self.retries + 1} attempts")

    async def _reply(self, seq: int, reply_type: int) -> Frame | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while True:
            while self._frames:
                frame = self._frames.popleft()
                if frame.seq == seq and frame.ftype in (reply_type, FrameType.ERROR):
                    return frame
                self._unsolicited(frame)
            left = deadline - loop.time()
            if left <= 0:
                return None
            await self._receive(left)

    def _unsolicited(self, frame: Frame) -> None:
        if frame.ftype == FrameType.BOOT:
            self.stats.boots += 1
            self.last_boot = decode_hello(frame.payload)
            self._boot_pending = True
        else:
            self.stats.stale_replies += 1

    async def _receive(self, timeout_s: float) -> None:
        data = await self.link.read(4096, timeout_s)
        if not data:
            return
        for item in self._decoder.feed(data):
            if isinstance(item, DecodeError):
                if item.reason == ErrorCode.E_CRC:
                    self.stats.crc_errors += 1
                else:
                    self.stats.other_errors += 1
            else:
                self.stats.frames_received += 1
                self._frames.append(item)

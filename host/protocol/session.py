"""The host's protocol session, sans I/O (docs/protocol.md), in the style of h11.

No I/O, no clock reads, no asyncio: the caller passes in the bytes it read and
the time (seconds on any monotonic clock, real or simulated), and gets back
bytes to write and events. A driver runs it like this::

    data = session.start(commands.sample(...), now_s)        # write data
    while True:
        event = session.next_event(now_s)
        if event is NEED_DATA:     # read until session.deadline_s, then receive_data()
        elif Transmit:             # write event.data (a resend, or the E_TIME recovery)
        else:                      # Reply, Rejected or NoReply (Booted or NoBoot): done

What the session keeps as state: sequence numbers (1..65535, wrapping past 0,
which the firmware's unsolicited frames use), the request in flight and its
deadline, the retries (a timeout or an ERROR(E_CRC) sends the frame again with
a new seq, at most `retries` times; ENTER_REPL and RESET are not resent after a
timeout), the E_TIME recovery (a resent SAMPLE rejected with E_TIME was
accepted the first time: its state is read with GET_STATE), the last BOOT
frame and whether a wait for one has seen it, and the counters in `stats`.
Current is positive on discharge.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

from host.protocol.codec import (
    REPLY,
    DecodeError,
    Decoder,
    ErrorCode,
    Frame,
    FrameType,
    HelloReply,
    decode_error,
    decode_hello,
    decode_state,
    encode_frame,
    is_state_payload,
    seq_after,
)
from host.protocol.commands import Command
from host.protocol.errors import BmsError, BmsMalformedReply, BmsRejected, BmsTimeout

T = TypeVar("T")


@dataclass
class ClientStats:
    frames_sent: int = 0
    frames_received: int = 0
    crc_errors: int = 0  # frames from the firmware that failed the host's CRC check
    crc_rejects: int = 0  # ERROR(E_CRC) replies: the firmware saw our frame damaged
    error_replies: int = 0  # every ERROR reply, E_CRC included
    other_errors: int = 0  # undecodable frames other than CRC (version, length, stalled)
    timeouts: int = 0
    retries: int = 0
    stale_replies: int = 0  # replies to an earlier attempt or a frame we gave up on
    boots: int = 0  # BOOT frames seen: the firmware (re)started

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Pending(enum.Enum):
    """What `next_event` returns when nothing has happened yet."""

    NEED_DATA = "need data"  # feed received bytes, or call again once deadline_s has passed
    IDLE = "idle"  # nothing in progress: start a request or a boot wait


NEED_DATA = Pending.NEED_DATA
IDLE = Pending.IDLE


@dataclass(frozen=True)
class Transmit:
    """Write `data` now and go on (empty when the tx_filter dropped the frame)."""

    data: bytes
    ftype: FrameType
    seq: int
    attempt: int  # 1 for the first copy of a request


@dataclass(frozen=True)
class Reply:
    """The request was answered; `frame` is its reply (for a recovered SAMPLE, GET_STATE's)."""

    request: FrameType
    frame: Frame
    retried: bool


@dataclass(frozen=True)
class Rejected:
    """The firmware answered ERROR with a reason other than E_CRC."""

    request: FrameType
    code: int
    text: str
    retried: bool


@dataclass(frozen=True)
class NoReply:
    """No valid reply after every attempt (timeouts or ERROR(E_CRC))."""

    request: FrameType
    attempts: int


@dataclass(frozen=True)
class Booted:
    """A BOOT frame: seen since the last boot wait ended (or since RESET), or during this one."""

    hello: HelloReply


@dataclass(frozen=True)
class NoBoot:
    timeout_s: float


Done = Reply | Rejected | NoReply
BootDone = Booted | NoBoot
Event = Transmit | Reply | Rejected | NoReply | Booted | NoBoot


def reply_frame(event: Done) -> Frame:
    """The reply frame of a finished request, or the BmsError it ended in."""
    if isinstance(event, Reply):
        return event.frame
    if isinstance(event, Rejected):
        raise BmsRejected(event.request.name, event.code, event.text, retried=event.retried)
    raise BmsTimeout(f"{event.request.name}: no valid reply after {event.attempts} attempts")


def decode_reply(command: Command[T], event: Done) -> T:
    """The typed result of a finished request: the BmsError it ended in, or its reply decoded
    (BmsMalformedReply when the firmware's reply cannot be read)."""
    frame = reply_frame(event)
    try:
        return command.decode(frame)
    except BmsError:
        raise
    except (ValueError, struct.error) as exc:
        raise BmsMalformedReply(
            f"{event.request.name}: the firmware's reply (type 0x{frame.ftype:02X}, "
            f"{len(frame.payload)} bytes) cannot be read: {exc}"
        ) from exc


def boot_hello(event: BootDone) -> HelloReply:
    """The BOOT payload of a finished boot wait, or BmsTimeout."""
    if isinstance(event, NoBoot):
        raise BmsTimeout(f"no BOOT frame within {event.timeout_s} s")
    return event.hello


@dataclass
class _Request:
    ftype: FrameType
    payload: bytes
    retry_on_timeout: bool
    sample_t_ms: int | None  # a SAMPLE's time: recover its state after E_TIME on a resend
    recovering: Rejected | None = None  # on the GET_STATE of a recovery: the SAMPLE's E_TIME
    attempts: int = 0
    seq: int = 0
    deadline_s: float = 0.0


class Session:
    """One host's view of one firmware session; see the module docstring."""

    def __init__(self, *, timeout_s: float = 1.0, retries: int = 2) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.stats = ClientStats()
        # Fault injection: every outgoing frame passes through it (corrupt, truncate, drop).
        self.tx_filter: Callable[[bytes], bytes] | None = None
        self.last_boot: HelloReply | None = None
        self.boot_pending = False  # a BOOT seen that no boot wait has returned yet
        self.seq = 0  # the last sequence number sent
        self._decoder = Decoder()
        self._request: _Request | None = None
        self._boot_deadline_s: float | None = None
        self._boot_timeout_s = 0.0

    # -- starting ------------------------------------------------------------
    def start(self, command: Command[object], now_s: float) -> bytes:
        """Begin `command`; returns the bytes to write (empty if the tx_filter dropped them)."""
        return self.start_request(
            command.ftype,
            command.payload,
            now_s=now_s,
            retry_on_timeout=command.retry_on_timeout,
            sample_t_ms=command.sample_t_ms,
        )

    def start_request(
        self,
        ftype: FrameType,
        payload: bytes = b"",
        *,
        now_s: float,
        retry_on_timeout: bool = True,
        sample_t_ms: int | None = None,
    ) -> bytes:
        """Begin a request of any type; see `start`."""
        self._check_idle()
        if ftype == FrameType.RESET:
            self.boot_pending = False  # the BOOT a wait returns must come after this reset
        self._request = _Request(ftype, payload, retry_on_timeout, sample_t_ms)
        try:
            return self._transmit(self._request, now_s).data
        except Exception:  # a tx_filter that raised: nothing is in flight
            self.abandon()
            raise

    def start_boot_wait(self, now_s: float, timeout_s: float) -> None:
        """Wait for the firmware's BOOT frame until now_s + timeout_s (nothing to write)."""
        self._check_idle()
        self._boot_deadline_s = now_s + timeout_s
        self._boot_timeout_s = timeout_s

    def abandon(self) -> None:
        """Forget the request or boot wait in progress (its caller gave up); a late reply
        to it is counted stale."""
        self._request = None
        self._boot_deadline_s = None

    def _check_idle(self) -> None:
        if self.busy:
            raise RuntimeError("a request or boot wait is in progress: one at a time")

    # -- bytes in, events out --------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Bytes read from the link (any split); parsed by `next_event`."""
        self._decoder.receive(data)

    def next_event(self, now_s: float) -> Event | Pending:
        """What happened by `now_s`. Raises BmsMalformedReply (a BmsError and a ValueError) on
        an ERROR or BOOT frame whose payload cannot be read (the request is then abandoned)."""
        what = "boot wait" if self._request is None else self._request.ftype.name
        try:
            if self._request is not None:
                return self._request_event(self._request, now_s)
            if self._boot_deadline_s is not None:
                return self._boot_event(self._boot_deadline_s, now_s)
            return IDLE
        except (ValueError, struct.error) as exc:
            self.abandon()
            if isinstance(exc, BmsMalformedReply):
                raise
            text = f"{what}: a frame from the firmware cannot be read: {exc}"
            raise BmsMalformedReply(text) from exc
        except Exception:
            self.abandon()
            raise

    @property
    def busy(self) -> bool:
        return self._request is not None or self._boot_deadline_s is not None

    @property
    def deadline_s(self) -> float | None:
        """When the operation in progress times out (None when idle)."""
        if self._request is not None:
            return self._request.deadline_s
        return self._boot_deadline_s

    @property
    def trailing_data(self) -> bytes:
        """Bytes received but not parsed. Parsing stops at the reply that ends a request,
        so after ENTER_REPL_REPLY these are what the REPL printed."""
        return self._decoder.unparsed()

    # -- internals -------------------------------------------------------------
    def _request_event(self, req: _Request, now_s: float) -> Event | Pending:
        while True:
            while (frame := self._next_frame()) is not None:
                if frame.seq == req.seq and frame.ftype in (req.ftype | REPLY, FrameType.ERROR):
                    return self._answered(req, frame, now_s)
                self._unsolicited(frame)
            if now_s < req.deadline_s:
                return NEED_DATA
            if not self._drop_stalled():
                break
        self.stats.timeouts += 1
        if req.retry_on_timeout and req.attempts <= self.retries:
            return self._transmit(req, now_s)
        return self._finish(NoReply(req.ftype, req.attempts))

    def _answered(self, req: _Request, frame: Frame, now_s: float) -> Event:
        if frame.ftype != FrameType.ERROR:
            return self._finish(self._reply(req, frame))
        err = decode_error(frame.payload)
        self.stats.error_replies += 1
        if err.code == ErrorCode.E_CRC:
            self.stats.crc_rejects += 1
            if req.attempts <= self.retries:
                return self._transmit(req, now_s)
            return self._finish(NoReply(req.ftype, req.attempts))
        rejected = Rejected(req.ftype, err.code, err.text, req.attempts > 1)
        recoverable = req.sample_t_ms is not None and req.recovering is None
        if err.code == ErrorCode.E_TIME and rejected.retried and recoverable:
            # The first copy was accepted and its reply lost: the state it produced is
            # still there to read.
            self._request = _Request(FrameType.GET_STATE, b"", True, req.sample_t_ms, rejected)
            return self._transmit(self._request, now_s)
        return self._finish(rejected)

    @staticmethod
    def _reply(req: _Request, frame: Frame) -> Reply | Rejected:
        if req.recovering is None:
            return Reply(req.ftype, frame, req.attempts > 1)
        # A malformed STATE is passed on: decoding the result reports it, as for any reply.
        payload = frame.payload
        if not is_state_payload(payload) or decode_state(payload).t_ms == req.sample_t_ms:
            return Reply(req.recovering.request, frame, True)
        return req.recovering

    def _transmit(self, req: _Request, now_s: float) -> Transmit:
        if req.attempts:
            self.stats.retries += 1
        req.attempts += 1
        self.seq = req.seq = seq_after(self.seq)
        data = encode_frame(req.ftype, req.seq, req.payload)
        if self.tx_filter is not None:
            data = self.tx_filter(data)
        self.stats.frames_sent += 1
        req.deadline_s = now_s + self.timeout_s
        return Transmit(data, req.ftype, req.seq, req.attempts)

    def _finish(self, event: Done) -> Done:
        self._request = None
        return event

    def _boot_event(self, deadline_s: float, now_s: float) -> BootDone | Pending:
        while True:
            while not self.boot_pending and (frame := self._next_frame()) is not None:
                self._unsolicited(frame)
            if self.boot_pending and self.last_boot is not None:
                self.boot_pending = False
                self._boot_deadline_s = None
                return Booted(self.last_boot)
            if now_s < deadline_s:
                return NEED_DATA
            if not self._drop_stalled():
                break
        self._boot_deadline_s = None
        return NoBoot(self._boot_timeout_s)

    def _drop_stalled(self) -> bool:
        """At a deadline: a partial frame still held has stalled, or began at a noise byte
        0xA5 whose length field claims more than will come, hiding the frames behind it.
        Drop its sync byte so they are found (the firmware drops a stalled frame too)."""
        if not self._decoder.drop_partial():
            return False
        self.stats.other_errors += 1
        return True

    def _next_frame(self) -> Frame | None:
        while (item := self._decoder.next()) is not None:
            if isinstance(item, DecodeError):
                if item.reason == ErrorCode.E_CRC:
                    self.stats.crc_errors += 1
                else:
                    self.stats.other_errors += 1
                continue
            self.stats.frames_received += 1
            return item
        return None

    def _unsolicited(self, frame: Frame) -> None:
        if frame.ftype == FrameType.BOOT:
            self.stats.boots += 1
            self.last_boot = decode_hello(frame.payload)
            self.boot_pending = True
        else:
            self.stats.stale_replies += 1

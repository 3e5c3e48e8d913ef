"""BmsClient: the asyncio driver of the protocol session over any byte link.

Everything the protocol decides (sequence numbers, matching, retries,
timeouts, the E_TIME recovery, BOOT frames, counters) lives in
host.protocol.session.Session; this class only moves bytes between it and a
link (`write(data)`, `await read(max_bytes, timeout_s) -> bytes`, as
host.link.SerialLink does) and reads the time from `clock`. It never asks
for the running event loop, and when the link's read and write complete at
once, a request completes without ever suspending, so a lockstep driver can
run it by hand. Current is positive on discharge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from host.protocol import commands
from host.protocol.codec import ClearReason, Frame, FrameType, HelloReply, State
from host.protocol.commands import Command
from host.protocol.errors import BmsError, BmsRejected, BmsTimeout
from host.protocol.session import (
    IDLE,
    NEED_DATA,
    BootDone,
    Booted,
    ClientStats,
    Done,
    NoBoot,
    Session,
    Transmit,
    boot_hello,
    decode_reply,
)
from host.protocol.wire_trace import WireTrace

__all__ = ["BmsClient", "BmsError", "BmsRejected", "BmsTimeout", "ClientStats", "Link"]

T = TypeVar("T")

READ_CHUNK = 4096


class Link(Protocol):
    """A byte link: write may return an awaitable, read returns b"" after timeout_s."""

    def write(self, data: bytes) -> Awaitable[None] | None: ...

    def read(self, max_bytes: int, timeout_s: float) -> Awaitable[bytes]: ...


class BmsClient:
    def __init__(
        self,
        link: Link,
        *,
        timeout_s: float = 1.0,
        retries: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link = link
        self.session = Session(timeout_s=timeout_s, retries=retries)
        self._clock = clock
        # One operation at a time; taken without suspending when free (needs no loop).
        self._lock = asyncio.Lock()
        self._in_flight: Command[Any] | None = None  # started by send(), ended by finish()
        self._trace = WireTrace()  # frames logged at DEBUG on host.protocol.wire (-vv)

    # -- the session's settings and state ----------------------------------------
    @property
    def stats(self) -> ClientStats:
        return self.session.stats

    @property
    def tx_filter(self) -> Callable[[bytes], bytes] | None:
        """Fault injection: every outgoing frame passes through it (corrupt, truncate, drop)."""
        return self.session.tx_filter

    @tx_filter.setter
    def tx_filter(self, value: Callable[[bytes], bytes] | None) -> None:
        self.session.tx_filter = value

    @property
    def last_boot(self) -> HelloReply | None:
        return self.session.last_boot

    @property
    def timeout_s(self) -> float:
        return self.session.timeout_s

    @timeout_s.setter
    def timeout_s(self, value: float) -> None:
        self.session.timeout_s = value

    @property
    def retries(self) -> int:
        return self.session.retries

    @retries.setter
    def retries(self, value: int) -> None:
        self.session.retries = value

    @property
    def trailing_data(self) -> bytes:
        """Bytes read but not parsed: after enter_repl(), what the REPL printed so far."""
        return self.session.trailing_data

    # -- commands ------------------------------------------------------------
    async def hello(self) -> HelloReply:
        return await self.call(commands.hello())

    async def sample(
        self,
        t_ms: int,
        cell_mV: Sequence[int],
        current_mA: int,
        temp_ddegC: Sequence[int] = (),
    ) -> State:
        """Send one sample (current positive on discharge); its reply holds its decisions."""
        return await self.call(commands.sample(t_ms, cell_mV, current_mA, temp_ddegC))

    async def get_state(self) -> State:
        return await self.call(commands.get_state())

    async def config_read(self) -> dict[str, Any]:
        return await self.call(commands.config_read())

    async def config_write(self, changes: dict[str, Any]) -> None:
        """Apply all the changes or none; raises BmsRejected with the firmware's reason."""
        await self.call(commands.config_write(changes))

    async def clear_latched(self, reason: ClearReason, mask: int = 0xFFFFFF) -> int:
        """Clear the latched faults in mask (all by default), saying why; return the bits that
        were cleared."""
        return await self.call(commands.clear_latched(reason, mask))

    async def enter_repl(self) -> None:
        """The firmware hands the port to its REPL; see trailing_data for what it printed."""
        await self.call(commands.enter_repl())

    async def reset(self) -> None:
        """Soft-reset the firmware; follow with wait_boot() for its BOOT frame."""
        await self.call(commands.reset())

    async def fault_log(self) -> list[list[int]]:
        return await self.call(commands.fault_log())

    async def save(self) -> None:
        await self.call(commands.save())

    # -- overlapped requests (the lockstep loop's pipeline) ---------------------------
    def send(self, command: Command[object]) -> None:
        """Start a request and return at once; `await finish()` gives its result. Meanwhile the
        caller may compute (the lockstep loop steps its cells while the firmware works), but
        no other request may start. Needs a link whose write completes at once."""
        if self._lock.locked() or self._in_flight is not None:
            raise RuntimeError("a request is already in progress")
        data = self.session.start(command, self._clock())
        self._trace.sent(data)
        if data and self.link.write(data) is not None:
            raise TypeError("send() needs a link whose write() completes at once")
        self._in_flight = command

    @property
    def in_flight(self) -> bool:
        return self._in_flight is not None

    async def finish(self) -> Any:
        """The result of the request send() started (or the BmsError it ended in)."""
        command, self._in_flight = self._in_flight, None
        if command is None:
            raise RuntimeError("no request in progress")
        async with self._lock:
            event = await self._drive(b"")
        assert not isinstance(event, (Booted, NoBoot))
        return decode_reply(command, event)

    async def wait_boot(self, timeout_s: float) -> HelloReply:
        """The firmware's unsolicited BOOT frame (after power-on or RESET).

        Returns at once if a BOOT arrived since the last call (or since reset()),
        even while another request was waiting for its reply.
        """
        async with self._lock:
            self.session.start_boot_wait(self._clock(), timeout_s)
            event = await self._drive(b"")
        assert isinstance(event, (Booted, NoBoot))  # a boot wait ends in one of these
        return boot_hello(event)

    async def request(
        self, ftype: FrameType, payload: bytes = b"", *, retry_on_timeout: bool = True
    ) -> Frame:
        """Send a frame and return its reply frame (retries as the session's docstring says)."""
        return await self.call(commands.raw(ftype, payload, retry_on_timeout=retry_on_timeout))

    async def call(self, command: Command[T]) -> T:
        """Run any command to its end; its typed result, or a BmsError."""
        if self._in_flight is not None:
            raise RuntimeError("a request started with send() is still in progress: finish() it")
        async with self._lock:
            data = self.session.start(command, self._clock())
            event = await self._drive(data)
        assert not isinstance(event, (Booted, NoBoot))  # a request never ends in these
        return decode_reply(command, event)

    # -- the driver ------------------------------------------------------------
    async def _drive(self, data: bytes) -> Done | BootDone:
        session = self.session
        try:
            while True:
                if data:
                    self._trace.sent(data)
                    written = self.link.write(data)
                    if written is not None:
                        await written
                    data = b""
                event = session.next_event(self._clock())
                if event is NEED_DATA:
                    await self._receive(session.deadline_s)
                elif isinstance(event, Transmit):
                    data = event.data
                elif event is IDLE:
                    raise RuntimeError("the protocol session has nothing in progress")
                else:
                    return event
        finally:
            session.abandon()  # nothing left after an end; drops one cut short (cancelled)

    async def _receive(self, deadline_s: float | None) -> None:
        left = 0.0 if deadline_s is None else deadline_s - self._clock()
        if left > 0:
            data = await self.link.read(READ_CHUNK, left)
            if data:
                self._trace.received(data)
                self.session.receive_data(data)

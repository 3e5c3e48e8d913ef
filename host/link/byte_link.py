"""What every byte link shares: reads up to an ending or until quiet, and `async with`.

A link (SerialLink on the event loop, LockstepLink in select() for lockstep runs) writes
bytes, reads what has arrived within a timeout and closes; the rest is built on those
three here, once, so the two cannot drift apart.
"""

from __future__ import annotations

import abc
import time
from types import TracebackType
from typing import TypeVar

_L = TypeVar("_L", bound="ByteLink")


class ByteLink(abc.ABC):
    port: str

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send `data` (or queue it: SerialLink)."""

    @abc.abstractmethod
    async def read(self, max_bytes: int, timeout_s: float) -> bytes:
        """Up to `max_bytes` bytes as soon as any arrive; b"" after `timeout_s` without any."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the port; a second close does nothing."""

    async def read_until(self, ending: bytes, timeout_s: float) -> bytes:
        """Bytes up to and including `ending`, or what arrived before `timeout_s` ran out."""
        deadline = time.monotonic() + timeout_s
        data = bytearray()
        while not data.endswith(ending):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            data += await self.read(1 if ending else 4096, left)
        return bytes(data)

    async def drain_input(self, quiet_s: float = 0.05) -> bytes:
        """Read and return whatever arrives until the port has been quiet for `quiet_s`."""
        data = bytearray()
        while chunk := await self.read(4096, quiet_s):
            data += chunk
        return bytes(data)

    async def __aenter__(self: _L) -> _L:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

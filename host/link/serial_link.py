"""The asyncio serial link, the same for a real board's USB port and a virtual board's pty.

Bytes only: framing belongs to host.protocol. Built on pyserial-asyncio-fast
(the maintained fork of pyserial-asyncio).
"""

from __future__ import annotations

import asyncio
import contextlib

import serial
import serial_asyncio_fast

from host.link.byte_link import ByteLink
from host.link.port_error import open_error


class SerialLink(ByteLink):
    """An open serial port: `write()` queues bytes, `read()` waits for some."""

    def __init__(
        self, port: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.port = port
        self._reader = reader
        self._writer = writer
        self._closed = False

    @classmethod
    async def open(cls, port: str, baudrate: int = 115200) -> SerialLink:
        """Open `port` (raises InputError naming the port if it cannot be opened)."""
        try:
            # exclusive: a second program on the same port (a stray mpremote or
            # another link) would steal bytes; fail loudly instead.
            reader, writer = await serial_asyncio_fast.open_serial_connection(
                url=port, baudrate=baudrate, exclusive=True
            )
        except (serial.SerialException, OSError) as exc:
            raise open_error(port, exc) from exc
        return cls(port, reader, writer)

    def write(self, data: bytes) -> None:
        """Queue `data` for sending; it leaves without awaiting."""
        if self._closed:
            raise ConnectionError(f"{self.port}: link closed")
        self._writer.write(data)

    async def drain(self) -> None:
        """Wait until the queued bytes have been handed to the port."""
        await self._writer.drain()

    async def read(self, max_bytes: int, timeout_s: float) -> bytes:
        """Up to `max_bytes` bytes as soon as any arrive; b"" after `timeout_s` without any."""
        if self._closed:
            raise ConnectionError(f"{self.port}: link closed")
        try:
            data = await asyncio.wait_for(self._reader.read(max_bytes), timeout_s)
        except asyncio.TimeoutError:
            return b""
        if not data and self._reader.at_eof():
            raise ConnectionError(f"{self.port}: serial port closed")
        return data

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with contextlib.suppress(OSError, serial.SerialException):
            await self._writer.wait_closed()

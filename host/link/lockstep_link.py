"""A byte link for lockstep runs against a board on this machine (a virtual or QEMU board).

In lockstep nothing else happens while the host waits for the firmware's reply, so paying
the event loop for every frame (a future, a callback, a select round) buys nothing. This
link writes with os.write and waits for the reply in select() on the port's descriptor:
when the board answers within SPIN_S, read() completes without ever suspending, and a
round trip costs a handful of system calls. A longer wait (a board booting after a reset,
a lost frame) hands control back to the event loop every POLL_S, so the virtual board's
supervisor and timers keep running.

With `busy_s` (a pipelined run, which has a core of its own: host.emulator.run) the wait for
a reply first polls the port without sleeping, up to busy_s: a process asleep in select()
is woken by the kernel when the reply comes, and on a virtual machine that wake-up of an
idle core is a good part of a round trip (issue 13's profile: about 30 us of 200 per step).

A ByteLink as host.link.SerialLink is (write, read, close; read_until and drain_input from
the base); real time runs and boards at a serial port keep SerialLink.
"""

from __future__ import annotations

import asyncio
import os
import select
import time

import serial

from host.link.byte_link import ByteLink
from host.link.port_error import open_error

# A reply in lockstep takes a few hundred microseconds; waiting this long without yielding
# costs nothing then, and bounds how long the event loop can be kept waiting.
SPIN_S = 0.02
POLL_S = 0.002


class LockstepLink(ByteLink):
    def __init__(self, port: str, ser: serial.Serial, *, busy_s: float = 0.0) -> None:
        self.port = port
        self._ser = ser
        self._fd = ser.fileno()
        self._closed = False
        self.busy_s = busy_s

    @classmethod
    async def open(cls, port: str, baudrate: int = 115200, *, busy_s: float = 0.0) -> LockstepLink:
        """Open `port` raw and exclusive (InputError naming the port if it cannot be)."""
        try:
            ser = serial.Serial(port, baudrate, timeout=0, exclusive=True)
        except (serial.SerialException, OSError) as exc:
            raise open_error(port, exc) from exc
        return cls(port, ser, busy_s=busy_s)

    def write(self, data: bytes) -> None:
        """Write all of `data` now (a pty or USB port takes a frame at once)."""
        if self._closed:
            raise ConnectionError(f"{self.port}: link closed")
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._fd, view)
            except BlockingIOError:
                select.select([], [self._fd], [], POLL_S)
                continue
            view = view[n:]

    def _ready(self, timeout_s: float) -> bool:
        return bool(select.select([self._fd], [], [], max(timeout_s, 0.0))[0])

    def _poll(self, busy_s: float) -> bool:
        """Whether bytes arrive within busy_s, asked without sleeping."""
        ready = self._ready
        end = time.perf_counter() + busy_s
        while not ready(0.0):
            if time.perf_counter() >= end:
                return False
            os.sched_yield()  # a busy machine: the core goes to whoever waits for it
        return True

    def _take(self, max_bytes: int) -> bytes:
        try:
            data = os.read(self._fd, max_bytes)
        except BlockingIOError:
            return b""
        except OSError as exc:  # EIO: the other side of the pty is gone
            raise ConnectionError(f"{self.port}: serial port closed ({exc})") from exc
        if not data:
            raise ConnectionError(f"{self.port}: serial port closed")
        return data

    async def read(self, max_bytes: int, timeout_s: float) -> bytes:
        """Up to `max_bytes` bytes as soon as any arrive; b"" after `timeout_s` without any."""
        if self._closed:
            raise ConnectionError(f"{self.port}: link closed")
        deadline = time.monotonic() + timeout_s
        if self.busy_s > 0.0 and self._poll(min(timeout_s, self.busy_s)):
            return self._take(max_bytes)
        if self._ready(min(timeout_s, SPIN_S)):
            return self._take(max_bytes)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return b""
            await asyncio.sleep(min(POLL_S, left))
            if self._ready(0.0):
                return self._take(max_bytes)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._ser.close()

"""SerialLink over a real pseudo-terminal: bytes pass unchanged, timeouts return b""."""

from __future__ import annotations

import asyncio
import os

import pytest

from cellmodel.errors import InputError
from host.link import SerialLink
from host.link.lockstep_link import LockstepLink
from host.vboard.pty_port import PtyPort


@pytest.fixture
def pty_port():
    port = PtyPort()
    yield port
    port.close()


def _read_master(port: PtyPort, n: int) -> bytes:
    data = b""
    while len(data) < n:
        data += os.read(port.master_fd, n - len(data))
    return data


async def test_every_byte_value_passes_both_ways(pty_port: PtyPort) -> None:
    # 0x03, 0x04, CR, LF, XON/XOFF and DEL are what a cooked tty would eat or rewrite.
    payload = bytes(range(256)) * 4
    async with await SerialLink.open(pty_port.path) as link:
        os.write(pty_port.master_fd, payload)
        got = b""
        while len(got) < len(payload):
            chunk = await link.read(4096, 2.0)
            assert chunk, "link read timed out"
            got += chunk
        assert got == payload

        link.write(payload)
        await link.drain()
        assert await asyncio.to_thread(_read_master, pty_port, len(payload)) == payload


async def test_read_times_out_with_empty_bytes(pty_port: PtyPort) -> None:
    async with await SerialLink.open(pty_port.path) as link:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await link.read(10, 0.1) == b""
        assert loop.time() - t0 >= 0.09
        os.write(pty_port.master_fd, b"late")
        assert await link.read(10, 1.0) == b"late"


async def test_read_until_and_drain_input(pty_port: PtyPort) -> None:
    async with await SerialLink.open(pty_port.path) as link:
        os.write(pty_port.master_fd, b"noise\r\nraw REPL; CTRL-B to exit\r\n>tail")
        got = await link.read_until(b"exit\r\n>", 1.0)
        assert got.endswith(b"exit\r\n>")
        assert await link.drain_input(0.05) == b"tail"


async def test_missing_port_is_input_error() -> None:
    with pytest.raises(InputError, match="/dev/nonexistent-port"):
        await SerialLink.open("/dev/nonexistent-port")


async def test_closed_link_refuses_io(pty_port: PtyPort) -> None:
    link = await SerialLink.open(pty_port.path)
    await link.close()
    await link.close()  # idempotent
    with pytest.raises(ConnectionError):
        link.write(b"x")


# Why a port would not open, as the user meets it: each case is a real path opened by the
# real link (pyserial underneath), for both the asyncio link and the lock-step one.
def _open(kind: str, port: str):
    if kind == "asyncio":
        return SerialLink.open(port)
    return LockstepLink.open(port)


@pytest.mark.parametrize("kind", ["asyncio", "lockstep"])
async def test_a_port_that_cannot_open_says_why_in_the_users_words(
    kind: str, tmp_path, pty_port: PtyPort
) -> None:
    regular = tmp_path / "log.txt"
    regular.write_text("")
    for port, why in (
        (str(tmp_path / "ttyACM9"), "no such port (is the board plugged in?)"),
        (str(tmp_path), "not a serial port (a directory)"),
        (str(regular), "not a serial port (a regular file)"),
        ("/dev/null", "not a serial port (a device that is no terminal)"),
    ):
        with pytest.raises(InputError) as info:
            await _open(kind, port)
        assert (info.value.source, info.value.field) == ("--port", port)
        assert info.value.reason == f"cannot open serial port: {why}"
    # a port another program holds (both links open exclusively)
    async with await SerialLink.open(pty_port.path):
        with pytest.raises(InputError) as info:
            await _open(kind, pty_port.path)
        assert "in use by another program" in info.value.reason

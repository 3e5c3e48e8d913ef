"""The board's filesystem through mpremote's serial transport (the real mpremote, as a library).

Synchronous, like mpremote itself: callers run it in a thread. `request_repl` asks a
running firmware to hand the port to the REPL first (protocol ENTER_REPL).
"""

from __future__ import annotations

import ast
import asyncio
import posixpath

from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from cellmodel.errors import InputError
from host.link.serial_link import SerialLink

# Runs on the board: sha256 of each path, None when missing. hashlib is in
# the rp2 and esp32 builds; without it the caller reads the files back.
_HASH_SCRIPT = """\
import hashlib, binascii
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    with f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(m[:n])
    return binascii.hexlify(h.digest()).decode()
print(repr([_h(p) for p in {paths!r}]))
del _h
"""


class BoardFiles:
    """An mpremote raw-REPL session on a board: hash, write and remove files, then reboot."""

    def __init__(self, port: str) -> None:
        try:
            # A read timeout: on a pty mpremote otherwise blocks forever in read(1)
            # when the board never answers.
            self._t = SerialTransport(port, baudrate=115200, timeout=5)
        except TransportError as exc:
            raise InputError("--port", port, f"mpremote cannot open it: {exc}") from exc
        self.port = port
        self._dirs: set[str] = {""}

    def enter_raw_repl(self) -> None:
        """Stop whatever runs and soft-reset into the raw REPL (boot.py runs, main.py not)."""
        try:
            self._t.enter_raw_repl(soft_reset=True)
        except TransportError as exc:
            raise InputError(
                "--port", self.port, f"no MicroPython REPL answers ({exc}); is MicroPython flashed?"
            ) from exc

    def exec(self, code: str) -> bytes:
        return self._t.exec(code)

    def hashes(self, paths: list[str]) -> dict[str, str | None]:
        """sha256 hex of each file on the board (None when missing)."""
        if not paths:
            return {}
        try:
            out = self._t.exec(_HASH_SCRIPT.format(paths=paths))
        except TransportExecError as exc:
            if "ImportError" not in exc.error_output:
                raise
            return {p: self._hash_by_reading(p) for p in paths}
        values = ast.literal_eval(out.decode().strip())
        return dict(zip(paths, values, strict=True))

    def _hash_by_reading(self, path: str) -> str | None:
        import hashlib

        try:
            data = self._t.fs_readfile(path)
        except OSError:
            return None
        return hashlib.sha256(bytes(data)).hexdigest()

    def read(self, path: str) -> bytes:
        """A file's contents; OSError when it is missing."""
        return bytes(self._t.fs_readfile(path))

    def write(self, path: str, data: bytes) -> None:
        self._make_dirs(posixpath.dirname(path))
        self._t.fs_writefile(path, data)

    def remove(self, path: str) -> None:
        self._t.exec(f"import os\nos.remove({path!r})")

    def _make_dirs(self, folder: str) -> None:
        if folder in self._dirs:
            return
        self._make_dirs(posixpath.dirname(folder))
        self._t.exec(f"import os\ntry:\n os.mkdir({folder!r})\nexcept OSError:\n pass")
        self._dirs.add(folder)

    def reboot_into_firmware(self) -> None:
        """Leave the raw REPL and soft-reset from the friendly REPL, so main.py runs."""
        self._t.exit_raw_repl()
        self._t.read_until(1, b">>> ", timeout=2)
        self._t.serial.write(b"\x04")

    def close(self) -> None:
        self._t.close()


async def request_repl(port: str, timeout_s: float = 0.5, *, wait_s: float = 0.0) -> bool:
    """Send HELLO then ENTER_REPL so a running firmware hands the port back; True if it did.

    HELLO first: it opens a session whatever sequence number the previous
    session ended on. No answer is normal: the board may sit at its REPL
    already, and mpremote's Ctrl-C then does the rest. `wait_s`: a board just powered
    up may still be booting (a QEMU board under -icount on a busy machine took more than
    the 0.5 s of one HELLO, and mpremote's Ctrl-C cannot stop a firmware that turned it
    off): HELLO is asked again until the firmware answers or wait_s has passed.
    """
    from host.protocol.client import BmsClient, BmsError

    async with await SerialLink.open(port) as link:
        client = BmsClient(link, timeout_s=timeout_s, retries=0)
        loop = asyncio.get_running_loop()
        give_up_s = loop.time() + wait_s
        while True:
            try:
                await client.hello()
                break
            except BmsError:
                if loop.time() >= give_up_s:
                    return False
        try:
            await client.enter_repl()
        except BmsError:
            return False
        # Let the firmware save its state and print the REPL banner.
        await link.drain_input(0.2)
        return True

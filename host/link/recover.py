"""Bring a board found at its REPL back to the firmware: interrupt, soft reset, wait for BOOT.

A board is at its REPL instead of serving frames when the firmware was left
(ENTER_REPL, mpremote, a deliberate Ctrl-C) or did not start, and it may be
running code typed there (`while True: pass`). `recover_firmware()` takes any
of these back to a freshly booted firmware over a pyserial port, with the
keys a person would press, and does nothing to a firmware that answers:

1. HELLO. A firmware that answers is left as it is.
2. "\\r\\x03": Ctrl-C interrupts code running at either REPL (the board takes it
   off the line as an interrupt), clears a half-typed line or raw-REPL
   command, cancels paste mode, and is the deliberate Ctrl-C a firmware that
   no longer answers frames leaves its loop on (mpremote sends the same).
3. Ctrl-B: the friendly REPL, from wherever the board is; it prints its banner.
4. Ctrl-D at that empty prompt: a soft reset, so boot.py and main.py run again.
5. The firmware's BOOT frame.

The HELLO probe's sequence number is chosen so the frame holds no 0x03, 0x04
or 0x05 (Ctrl-C, Ctrl-D, Ctrl-E), which a REPL would act on. What a board
cannot be brought back from this way (a loop that disabled Ctrl-C with
micropython.kbd_intr(-1), a main.py that fails) raises RecoveryError with
what the board said.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import serial

from host.protocol.client import BmsError
from host.protocol.codec import Decoder, Frame, FrameType, HelloReply, decode_hello, encode_frame

INTERRUPT = b"\r\x03"
FRIENDLY = b"\x02"
SOFT_RESET = b"\x04"
# The friendly REPL's banner ends so on every MicroPython port, after Ctrl-B.
BANNER_END = b'Type "help()" for more information.\r\n>>> '
_PROBE_SEQ = 1  # a5 01 01 01 00 00 00 55 97: no byte a REPL acts on but Ctrl-A
_POLL_S = 0.05


class RecoveryError(BmsError):
    """The board could not be brought back to its firmware; says what it showed."""


@dataclass(frozen=True)
class Recovery:
    found: str
    """"firmware" (it answered; nothing done), "REPL" or "running code" (interrupted)."""
    boot: HelloReply | None
    """The BOOT frame after the soft reset; None when the firmware already answered."""
    transcript: bytes
    """Everything the board sent meanwhile, for a log."""


def recover_firmware(
    port: serial.Serial | str,
    *,
    probe_timeout_s: float = 1.0,
    repl_timeout_s: float = 5.0,
    boot_timeout_s: float = 10.0,
) -> Recovery:
    """Make the board at `port` (an open pyserial port, or a device path) run its firmware.

    Returns how it was found; raises RecoveryError if it did not come back
    (no REPL answer within `repl_timeout_s`, no BOOT within `boot_timeout_s`).
    """
    if isinstance(port, str):
        with serial.Serial(port, 115200, exclusive=True) as opened:
            return recover_firmware(
                opened,
                probe_timeout_s=probe_timeout_s,
                repl_timeout_s=repl_timeout_s,
                boot_timeout_s=boot_timeout_s,
            )
    talk = _Talk(port)
    talk.send(encode_frame(FrameType.HELLO, _PROBE_SEQ))
    if talk.wait_frame(lambda f: True, probe_timeout_s) is not None:
        return Recovery("firmware", None, bytes(talk.transcript))
    talk.send(INTERRUPT + FRIENDLY)
    if not talk.wait_text(BANNER_END, repl_timeout_s):
        raise RecoveryError(
            f"{port.port}: no REPL answered Ctrl-C and Ctrl-B (a loop that disabled Ctrl-C, "
            f"or no MicroPython board); it said: {_tail(talk.transcript)}"
        )
    found = "running code" if b"KeyboardInterrupt" in talk.transcript else "REPL"
    talk.send(SOFT_RESET)
    boot = talk.wait_frame(lambda f: f.ftype == FrameType.BOOT, boot_timeout_s)
    if boot is None:
        raise RecoveryError(
            f"{port.port}: soft reset, but no BOOT frame within {boot_timeout_s} s "
            f"(main.py missing or failing?); it said: {_tail(talk.transcript)}"
        )
    return Recovery(found, decode_hello(boot.payload), bytes(talk.transcript))


class _Talk:
    """Writes to the port and reads from it into one transcript."""

    def __init__(self, port: serial.Serial) -> None:
        self.port = port
        self.transcript = bytearray()
        self._seen = 0  # transcript offset where the current wait started

    def send(self, data: bytes) -> None:
        self._seen = len(self.transcript)
        self.port.write(data)
        self.port.flush()

    def _read(self, deadline: float) -> bytes:
        self.port.timeout = max(0.0, min(_POLL_S, deadline - time.monotonic()))
        data = self.port.read(max(1, self.port.in_waiting))
        self.transcript += data
        return data

    def wait_text(self, ending: bytes, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while ending not in self.transcript[self._seen :]:
            if time.monotonic() >= deadline:
                return False
            self._read(deadline)
        return True

    def wait_frame(self, wanted: Callable[[Frame], bool], timeout_s: float) -> Frame | None:
        decoder = Decoder()
        data = bytes(self.transcript[self._seen :])
        deadline = time.monotonic() + timeout_s
        while True:
            for item in decoder.feed(data):
                if isinstance(item, Frame) and wanted(item):
                    return item
            if time.monotonic() >= deadline:
                return None
            data = self._read(deadline)


def _tail(data: bytes | bytearray, n: int = 300) -> str:
    text = bytes(data[-n:]).decode("ascii", errors="replace")
    return repr(text) if text else "nothing"

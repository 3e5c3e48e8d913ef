"""The virtual board: a confined MicroPython unix-port process on a pseudo-terminal.

The board process (host/vboard/jail.py) runs the ROM script
(host/vboard/rom/vboard_rom.py), which plays a board's C firmware: boot.py,
main.py, then the REPLs mpremote expects. It is confined to the flash folder
(see jail.py: its own namespaces, a root holding only the folder and the
interpreter), and a line process between it and the master side of a pty
serves the port: bytes both ways, and Ctrl-C as a board's USB stack does. The
pty's slave path is the board's `port`.

This supervisor owns the pty, so the port path survives soft resets and power
cycles. The ROM ends the process with status 94 (soft reset, main.py runs
again) or 95 (soft reset from the raw REPL: boot.py only, raw REPL again) and
the supervisor starts it again in that mode; any other end is a crash, and the
board restarts after a delay as a watchdog would. Killing the process group is
a power loss; the flash folder persists across everything.

Starts, resets, crashes and exits are logged on the `host.vboard` logger (INFO
and WARNING), with the board process's own notes (DEBUG: each Ctrl-C it
delivers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from types import TracebackType

from cellmodel.errors import InputError
from host.interpreter import find_micropython
from host.vboard.jail import EXIT_JAIL, READY
from host.vboard.launch import ROM_SCRIPT, UNCONFINED_ENV, jail_command, unconfined
from host.vboard.pty_port import PtyPort

__all__ = ["EXIT_SOFT", "EXIT_SOFT_RAW", "ROM_SCRIPT", "VirtualBoard"]

log = logging.getLogger("host.vboard")

EXIT_SOFT = 94
EXIT_SOFT_RAW = 95
# A crashed interpreter is restarted like a watchdog reset would, but not in a
# tight loop.
_CRASH_RESTART_DELAY_S = 0.5
_NOTE_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


class VirtualBoard:
    """A MicroPython board whose flash is `flash_dir` and whose USB port is a pty.

    `heap` is the interpreter's heap (MicroPython -X heapsize); a 64-bit
    interpreter needs about twice the heap of a 32-bit board for the same
    objects.
    """

    def __init__(
        self,
        flash_dir: str | os.PathLike[str],
        micropython: str | os.PathLike[str] | None = None,
        *,
        heap: str = "1M",
    ) -> None:
        self.flash_dir = Path(flash_dir)
        self.micropython = find_micropython(micropython)
        self.heap = heap
        jail_command(self.micropython, self.flash_dir, heap, "power")  # InputError if unusable
        self._pty: PtyPort | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._notes: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._powered = False
        self.boots = 0
        """Interpreter starts since `start()` (power-ups and soft resets)."""
        self.crashes = 0
        """Exits other than a soft reset while powered (restarted after a delay)."""
        self.last_exit: int | None = None

    @property
    def port(self) -> str:
        if self._pty is None:
            raise RuntimeError("virtual board not started")
        return self._pty.path

    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def _name(self) -> str:
        return f"virtual board on {self._pty.path}" if self._pty else "virtual board"

    async def start(self, *, powered: bool = True) -> None:
        """Create the serial port and (unless `powered=False`) power the board up.

        pyserial empties the input buffer when it opens a port, so a host that
        must see the BOOT frame opens its link between `start(powered=False)`
        and `power_on()`.
        """
        if self._pty is not None:
            raise RuntimeError("virtual board already started")
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        self._pty = PtyPort()
        log.info("%s: flash folder %s", self._name, self.flash_dir.resolve())
        if unconfined():
            log.warning(
                "%s: not confined (%s is set): code at its REPL can reach this machine",
                self._name, UNCONFINED_ENV,
            )  # fmt: skip
        if powered:
            await self.power_on()

    async def power_on(self) -> None:
        """Start from cold: boot.py, main.py, friendly REPL.

        Raises InputError if the board cannot be confined to its flash folder
        (no user namespaces here): the board does not run unconfined unless
        the user sets SISNBMS_VBOARD_UNCONFINED=1.
        """
        if self._pty is None:
            raise RuntimeError("virtual board not started")
        if self._powered:
            return
        log.info("%s: power on", self._name)
        self._powered = True
        failed = await self._spawn("power")
        if failed is not None:
            self._powered = False
            await self._kill()
            raise InputError(
                "virtual board",
                "sandbox",
                f"{failed}; a board runs only confined to its flash folder unless "
                f"{UNCONFINED_ENV}=1 is set (then code at its REPL can reach this machine)",
            )
        self._watch = asyncio.create_task(self._supervise())

    async def power_cut(self) -> None:
        """Kill the interpreter (RAM is lost, nothing is saved) and drop bytes in flight."""
        if not self._powered:
            return
        log.info("%s: power cut", self._name)
        self._powered = False
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        await self._kill()
        if self._pty is not None:
            self._pty.drop_pending()

    async def soft_reset(self) -> None:
        """Restart the interpreter as a reset would: boot.py and main.py run again.

        Unlike the firmware's RESET frame, the firmware gets no chance to save.
        """
        if not self._powered:
            await self.power_on()
            return
        log.info("%s: soft reset (forced)", self._name)
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self._kill()
        await self._spawn("soft")  # a failure is logged; the supervisor restarts it
        self._watch = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        """Power off and release the port."""
        await self.power_cut()
        if self._pty is not None:
            log.info("%s: stopped", self._name)
            self._pty.close()
            self._pty = None

    async def __aenter__(self) -> VirtualBoard:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _spawn(self, mode: str) -> str | None:
        """Start the board process; None once it runs, else why it could not start."""
        assert self._pty is not None
        fd = self._pty.master_fd
        self._proc = proc = await asyncio.create_subprocess_exec(
            *jail_command(self.micropython, self.flash_dir, self.heap, mode),
            stdin=fd,
            stdout=fd,
            stderr=asyncio.subprocess.PIPE,
            env={},  # nothing of the host's environment reaches the board
            # Its own session and process group: a Ctrl-C in the terminal running the
            # supervisor must not reach the board, and a power cut kills the group.
            start_new_session=True,
        )
        self.boots += 1
        assert proc.stderr is not None
        errors: list[str] = []
        while raw := await proc.stderr.readline():
            line = raw.decode(errors="replace").rstrip("\n")
            if line == READY:
                log.debug("%s: interpreter running (boot %d, %s)", self._name, self.boots, mode)
                self._notes = asyncio.create_task(self._relay_notes(proc.stderr))
                return None
            errors.append(line.removeprefix("error: "))
            log.error("%s: %s", self._name, line)
        return "; ".join(errors) or f"the board process exited ({await proc.wait()})"

    async def _relay_notes(self, stream: asyncio.StreamReader) -> None:
        while raw := await stream.readline():
            line = raw.decode(errors="replace").rstrip("\n")
            level, sep, text = line.partition(": ")
            log.log(
                _NOTE_LEVELS.get(level, logging.WARNING),
                "%s: %s",
                self._name,
                text if sep else line,
            )

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        notes, self._notes = self._notes, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the line and the board together
            await proc.wait()
        if notes is not None:
            notes.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await notes

    async def _supervise(self) -> None:
        while self._powered:
            proc = self._proc
            assert proc is not None
            code = await proc.wait()
            self.last_exit = code
            if self._notes is not None:
                await self._notes  # the board's last notes come before the news of its end
                self._notes = None
            if code in (EXIT_SOFT, EXIT_SOFT_RAW):
                log.info("%s: soft reset (status %d)", self._name, code)
                failed = await self._spawn("soft" if code == EXIT_SOFT else "raw")
            else:
                self.crashes += 1
                log.warning(
                    "%s: interpreter ended (%s); restarting in %.1f s",
                    self._name, _describe(code), _CRASH_RESTART_DELAY_S,
                )  # fmt: skip
                failed = "crash"
            while failed is not None and self._powered:
                await asyncio.sleep(_CRASH_RESTART_DELAY_S)
                failed = await self._spawn("power")


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code == EXIT_JAIL:
        return "could not start"
    return f"exit status {code}"

"""The virtual board: a MicroPython unix-port process on a pseudo-terminal.

The process runs the ROM script (host/vboard/rom/vboard_rom.py), which plays
a board's C firmware: boot.py, main.py, then the REPLs mpremote expects. Its
working directory is the flash folder and its stdin/stdout is the master side
of a pty whose slave path is the board's `port`.

This supervisor owns the pty, so the port path survives soft resets and power
cycles. The ROM ends the process with status 94 (soft reset, main.py runs
again) or 95 (soft reset from the raw REPL: boot.py only, raw REPL again) and
the supervisor starts it again in that mode. Killing the process is a power
loss; the flash folder persists across everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from types import TracebackType

from host.interpreter import find_micropython
from host.vboard.pty_port import PtyPort

ROM_SCRIPT = Path(__file__).resolve().parent / "rom" / "vboard_rom.py"
EXIT_SOFT = 94
EXIT_SOFT_RAW = 95
# A crashed interpreter is restarted like a watchdog reset would, but not in a
# tight loop.
_CRASH_RESTART_DELAY_S = 0.5


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
        self._pty: PtyPort | None = None
        self._proc: asyncio.subprocess.Process | None = None
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
        if powered:
            await self.power_on()

    async def power_on(self) -> None:
        """Start from cold: boot.py, main.py, friendly REPL."""
        if self._pty is None:
            raise RuntimeError("virtual board not started")
        if self._powered:
            return
        self._powered = True
        await self._spawn("power")
        self._watch = asyncio.create_task(self._supervise())

    async def power_cut(self) -> None:
        """Kill the interpreter (RAM is lost, nothing is saved) and drop bytes in flight."""
        if not self._powered:
            return
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
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self._kill()
        await self._spawn("soft")
        self._watch = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        """Power off and release the port."""
        await self.power_cut()
        if self._pty is not None:
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

    async def _spawn(self, mode: str) -> None:
        assert self._pty is not None
        fd = self._pty.master_fd
        self._proc = await asyncio.create_subprocess_exec(
            str(self.micropython),
            "-X",
            f"heapsize={self.heap}",
            str(ROM_SCRIPT),
            mode,
            stdin=fd,
            stdout=fd,
            stderr=fd,
            cwd=str(self.flash_dir),
            # Its own session: a Ctrl-C in the terminal running the supervisor
            # must not reach the board (SIGINT kills MicroPython while the
            # firmware has kbd_intr(-1)).
            start_new_session=True,
        )
        self.boots += 1

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def _supervise(self) -> None:
        while self._powered:
            proc = self._proc
            assert proc is not None
            code = await proc.wait()
            self.last_exit = code
            if code == EXIT_SOFT:
                await self._spawn("soft")
            elif code == EXIT_SOFT_RAW:
                await self._spawn("raw")
            else:
                self.crashes += 1
                await asyncio.sleep(_CRASH_RESTART_DELAY_S)
                await self._spawn("power")

"""The QEMU board: bare-metal MicroPython on an emulated Cortex-M0, its UART on a pty.

`QemuBoard` has the public API of host.vboard.board.VirtualBoard (start, power_on,
power_cut, soft_reset, stop, port, async context manager), so the host never asks which
board it drives. It runs qemu-system-arm (`microbit` machine) on the firmware image built by
`sisnbms micropython build --target qemu-cortex-m0`, with the emulated UART on QEMU's stdio,
which is the master side of a pty this supervisor owns: the port path survives resets and
power cycles.

The board's flash is the file `flash.img` in `board_dir`, which the firmware reads and writes
block by block through semihosting (boards/qemu/README.md): whatever the firmware wrote
survives a power cut; RAM does not. A power cut kills QEMU; power-on starts it again on the
same image. `machine.reset()` on the board ends QEMU and the supervisor powers it up again,
as a chip reset does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from pathlib import Path
from types import TracebackType

from cellmodel.errors import InputError
from host.vboard.pty_port import PtyPort

QEMU_ENV = "SISNBMS_QEMU"
FLASH_IMAGE = "flash.img"
QEMU_LOG = "qemu.log"
_CRASH_RESTART_DELAY_S = 0.5
# boards/qemu/mpconfigboard.mk: the machine, with the RAM of an RP2040.
_MACHINE_ARGS = (
    "-machine",
    "microbit",
    "-global",
    "nrf51-soc.flash-size=1048576",
    "-global",
    "nrf51-soc.sram-size=262144",
)


def find_qemu(explicit: str | os.PathLike[str] | None = None) -> Path:
    """qemu-system-arm: an explicit path, $SISNBMS_QEMU, or PATH; InputError if none."""
    name = explicit or os.environ.get(QEMU_ENV) or "qemu-system-arm"
    found = shutil.which(str(name))
    if found is None:
        raise InputError(
            "qemu-system-arm",
            str(name),
            "not found; install the Debian package qemu-system-arm (or your system's "
            f"equivalent), or point {QEMU_ENV} at the binary",
        )
    return Path(found)


def qemu_command(qemu: Path, firmware: Path, *, icount_shift: int | None = None) -> list[str]:
    """The qemu-system-arm command line of the board (UART on stdio, no monitor, no display).

    `icount_shift`: run with `-icount shift=N`: the emulated clock advances 2**N ns per
    instruction, so time.ticks_us() on the board counts instructions (N=0: 1000 per us).
    """
    args = [
        str(qemu),
        *_MACHINE_ARGS,
        "-semihosting-config",
        "enable=on,target=native",
        "-display",
        "none",
        "-monitor",
        "none",
        # signal=off: a 0x03 on the line is data for the board, never a SIGINT for QEMU.
        "-chardev",
        "stdio,id=uart,signal=off",
        "-serial",
        "chardev:uart",
        "-kernel",
        str(firmware),
    ]
    if icount_shift is not None:
        args += ["-icount", f"shift={icount_shift},sleep=off"]
    return args


class QemuBoard:
    """A MicroPython board emulated by QEMU: flash image in `board_dir`, UART at `port`."""

    def __init__(
        self,
        board_dir: str | os.PathLike[str],
        firmware: str | os.PathLike[str],
        *,
        qemu: str | os.PathLike[str] | None = None,
        icount_shift: int | None = None,
    ) -> None:
        self.board_dir = Path(board_dir)
        self.firmware = Path(firmware)
        if not self.firmware.is_file():
            raise InputError(
                "firmware",
                str(self.firmware),
                "no such file; build it with `sisnbms micropython build --target qemu-cortex-m0`",
            )
        self.qemu = find_qemu(qemu)
        self.icount_shift = icount_shift
        self._pty: PtyPort | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._powered = False
        self.boots = 0
        """QEMU starts since `start()` (power-ups, resets)."""
        self.crashes = 0
        """QEMU exits with a non-zero status while powered (restarted after a delay)."""
        self.last_exit: int | None = None

    @property
    def flash_image(self) -> Path:
        """The board's flash: a littlefs image the firmware writes through semihosting."""
        return self.board_dir / FLASH_IMAGE

    @property
    def port(self) -> str:
        if self._pty is None:
            raise RuntimeError("QEMU board not started")
        return self._pty.path

    @property
    def powered(self) -> bool:
        return self._powered

    async def start(self, *, powered: bool = True) -> None:
        """Create the serial port and (unless `powered=False`) power the board up.

        As with VirtualBoard: a host that must see the BOOT frame opens its link between
        `start(powered=False)` and `power_on()`.
        """
        if self._pty is not None:
            raise RuntimeError("QEMU board already started")
        self.board_dir.mkdir(parents=True, exist_ok=True)
        self._pty = PtyPort()
        if powered:
            await self.power_on()

    async def power_on(self) -> None:
        """Start from cold: _boot.py mounts the flash image, boot.py, main.py, REPL."""
        if self._pty is None:
            raise RuntimeError("QEMU board not started")
        if self._powered:
            return
        self._powered = True
        await self._spawn()
        self._watch = asyncio.create_task(self._supervise())

    async def power_cut(self) -> None:
        """Kill QEMU (RAM is lost; the flash image keeps what was written) and drop bytes."""
        if not self._powered:
            return
        self._powered = False
        await self._stop_watch()
        await self._kill()
        if self._pty is not None:
            self._pty.drop_pending()

    async def soft_reset(self) -> None:
        """Reset the chip (QEMU restarted): boot.py and main.py run again; RAM is lost.

        Unlike the firmware's RESET frame, the firmware gets no chance to save.
        """
        if not self._powered:
            await self.power_on()
            return
        await self._stop_watch()
        await self._kill()
        await self._spawn()
        self._watch = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        """Power off and release the port."""
        await self.power_cut()
        if self._pty is not None:
            self._pty.close()
            self._pty = None

    async def __aenter__(self) -> QemuBoard:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _spawn(self) -> None:
        assert self._pty is not None
        fd = self._pty.master_fd
        with (self.board_dir / QEMU_LOG).open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *qemu_command(self.qemu, self.firmware.resolve(), icount_shift=self.icount_shift),
                stdin=fd,
                stdout=fd,
                stderr=log,
                cwd=str(self.board_dir),  # semihosting opens flash.img here
                start_new_session=True,  # a Ctrl-C in the supervisor's terminal is not for it
            )
        self.boots += 1

    async def _stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None

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
            if code != 0:  # a fatal error on the board (or QEMU failing to start)
                self.crashes += 1
                await asyncio.sleep(_CRASH_RESTART_DELAY_S)
            await self._spawn()  # machine.reset() exits QEMU with status 0: a chip reset

"""A fresh virtual board for one run: the real firmware under the MicroPython unix port.

Its flash is a folder the user can look at afterwards (the run's `flash/`):
provisioned from host.image for the cell the BMS is configured for, plus the
persisted state the run starts from.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from cellmodel.errors import InputError
from host.board_session.base import BOOT_TIMEOUT_S, BoardSetup, EmulatedBoardSession
from host.board_session.state_file import write_initial_state
from host.boards import load_board
from host.protocol.client import BmsClient, BmsError, BmsTimeout
from host.vboard import VirtualBoard
from host.vboard.provision import provision_flash

_CRASH_POLL_S = 0.05


class VirtualBoardSession(EmulatedBoardSession[VirtualBoard]):
    kind = "virtual"

    def __init__(
        self,
        flash_dir: str | os.PathLike[str],
        *,
        micropython: str | os.PathLike[str] | None = None,
        board: str = "virtual",
        heap: str = "1M",
        lockstep: bool = False,
    ) -> None:
        """`micropython`: the unix-port interpreter (default: host.interpreter's choice);
        `heap`: its -X heapsize."""
        super().__init__(lockstep=lockstep)
        self.flash_dir = Path(flash_dir)
        self.micropython = micropython
        self.board_name = board
        self.heap = heap

    async def start(self, setup: BoardSetup, *, connect: bool = True) -> None:
        flash = self.flash_dir
        if flash.exists():
            shutil.rmtree(flash)
        provision_flash(flash, setup.design, board=setup.for_board(load_board(self.board_name)))
        if setup.initial is not None:
            write_initial_state(flash, setup.initial, setup.design, setup.cell_soc)
        self.board = VirtualBoard(flash, self.micropython, heap=self.heap)
        # Open the port before power-up: pyserial empties the input buffer on open, which
        # would otherwise race with (and may swallow) the BOOT frame; and until BOOT the board
        # is still booting, where a 0x03 in a frame would interrupt it as on a real board.
        await self.board.start(powered=False)
        client = await self._open_link()
        await self.board.power_on()
        await _wait_boot(self.board, client)
        if not connect:
            await self._close_link()  # the firmware runs; the port is free for another program

    def describe(self) -> dict[str, Any]:
        # the interpreter and its heap: which object model the firmware ran on (a chip
        # target's build, or the desktop's) is part of what a result means
        interpreter = self.board.micropython if self.board is not None else self.micropython
        return {
            **super().describe(),
            "flash_dir": str(self.flash_dir),
            "micropython": None if interpreter is None else str(interpreter),
            "heap": self.heap,
        }


async def _wait_boot(board: VirtualBoard, client: BmsClient) -> None:
    """The firmware's BOOT frame; InputError naming the interpreter at once if it ends first
    (a fresh flash boots or the interpreter cannot run it), or after BOOT_TIMEOUT_S."""
    boot = asyncio.ensure_future(client.wait_boot(BOOT_TIMEOUT_S))
    try:
        while not boot.done():
            if board.crashes:
                raise InputError(
                    "virtual board",
                    str(board.micropython),
                    f"the interpreter ended before the firmware booted (exit status "
                    f"{board.last_exit}); run with -vv to see what it said",
                )
            await asyncio.wait({boot}, timeout=_CRASH_POLL_S)
        boot.result()
    except BmsTimeout:
        raise InputError(
            "virtual board",
            str(board.micropython),
            f"no BOOT frame from the firmware within {BOOT_TIMEOUT_S:g} s under this "
            "interpreter; run with -vv to see what the board said",
        ) from None
    finally:
        if not boot.done():
            boot.cancel()
            with contextlib.suppress(asyncio.CancelledError, BmsError):
                await boot

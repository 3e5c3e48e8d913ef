"""A fresh QEMU board for one run: bare-metal MicroPython on an emulated Cortex-M0.

Flashed the way a real board is: `sisnbms flash`'s own flasher (mpremote over the board's
UART, the firmware as armv6m .mpy), then the run's persisted state with mpremote, as for a
board at a serial port. Its flash is an image file (`flash.img` in the board folder) that
survives power cuts; the host switches its power by ending and restarting QEMU.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

from host.board_session.base import BoardSetup, EmulatedBoardSession
from host.board_session.serial import put_state
from host.boards import load_board
from host.flash.flasher import flash_board
from host.link.board_files import request_repl
from host.vboard.qemu_board import QemuBoard

QEMU_BOARD = "qemu_cortex_m0"


class FlashError(RuntimeError):
    """The QEMU board could not be flashed (a broken build or toolchain, not bad input)."""


class QemuBoardSession(EmulatedBoardSession[QemuBoard]):
    kind = "qemu"

    def __init__(
        self, board_dir: str | os.PathLike[str], firmware: Path, *, lockstep: bool = False
    ) -> None:
        super().__init__(lockstep=lockstep)
        self.board_dir = Path(board_dir)
        self.firmware = firmware

    async def start(self, setup: BoardSetup, *, connect: bool = True) -> None:
        if self.board_dir.exists():
            shutil.rmtree(self.board_dir)
        self.board_dir.mkdir(parents=True)
        self.board = QemuBoard(self.board_dir, self.firmware)
        await self.board.start()
        result = await flash_board(
            self.port, setup.for_board(load_board(QEMU_BOARD)), setup.design, mpy=True
        )
        if not result.ok:
            raise FlashError(f"flashing the QEMU board failed: {'; '.join(result.problems)}")
        if setup.initial is not None:
            await request_repl(self.port)
            await asyncio.to_thread(
                put_state, self.port, setup.initial, setup.design, setup.cell_soc
            )
        if connect:
            await self.connect()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "board_dir": str(self.board_dir)}

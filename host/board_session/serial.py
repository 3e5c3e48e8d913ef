"""A flashed board at a serial port (a real Pico or ESP32, or a virtual board started apart).

The board runs the firmware in link mode. Before the run, the scenario's persisted
state is put on it the way `sisnbms flash` reaches a board: ENTER_REPL over the
protocol, then mpremote writes (or removes) bms_state.json and the board reboots
into the firmware, which restores that state at boot. So `hil` starts from the
same firmware state as `emulate`. The host cannot switch its power.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

import serial

from cellmodel.design import CellDesign
from cellmodel.errors import InputError
from host.board_session.base import BoardSession, BoardSetup
from host.board_session.state_file import STATE_FILE, initial_state_dict
from host.link.board_files import BoardFiles, request_repl
from host.link.port_error import open_error
from host.link.recover import Recovery, RecoveryError, recover_firmware
from host.scenarios import InitialState

log = logging.getLogger(__name__)


class SerialBoardSession(BoardSession):
    kind = "serial"

    def __init__(self, port: str) -> None:
        super().__init__()
        self._port = port

    @property
    def port(self) -> str:
        return self._port

    async def start(self, setup: BoardSetup, *, connect: bool = True) -> None:
        # A board left at its REPL (or running code typed there) is brought back first;
        # a firmware that answers is left alone.
        recovery = await asyncio.to_thread(reach_firmware, self._port)
        if recovery.found != "firmware":
            log.info("%s: the board was at its %s; soft reset into the firmware", self._port,
                     recovery.found)  # fmt: skip
        if setup.initial is not None:
            await request_repl(self._port)
            await asyncio.to_thread(
                put_state, self._port, setup.initial, setup.design, setup.cell_soc
            )
        if connect:
            await self.connect()


def reach_firmware(port: str) -> Recovery:
    """recover_firmware(port), with a port that cannot be opened or holds no board that
    answers as bad input naming --port (exit 2), not a traceback."""
    try:
        return recover_firmware(port)
    except RecoveryError as exc:
        raise InputError("--port", port, f"no firmware answered: {exc}") from None
    except (serial.SerialException, OSError) as exc:
        raise open_error(port, exc) from None


def put_state(
    port: str, init: InitialState, design: CellDesign, cell_soc: Sequence[float] = ()
) -> None:
    files = BoardFiles(port)
    try:
        files.enter_raw_repl()
        if init.state_file:
            try:
                config = json.loads(bytes(files.read("bms_config.json")).decode())
            except (OSError, ValueError) as exc:
                raise InputError(
                    "--port", port, f"no readable bms_config.json on the board ({exc}); flash it"
                ) from exc
            capacity_mAh = int(config.get("capacity_mAh") or round(design.capacity_Ah * 1000))
            state = initial_state_dict(init, capacity_mAh, cell_soc)
            files.write(STATE_FILE, json.dumps(state).encode())
        elif files.hashes([STATE_FILE])[STATE_FILE] is not None:
            files.remove(STATE_FILE)
        files.reboot_into_firmware()
    finally:
        files.close()

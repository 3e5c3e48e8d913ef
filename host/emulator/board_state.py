"""Give a flashed board (real or virtual, at a port) the scenario's initial persisted state.

A virtual board started by the emulator gets bms_state.json written straight
into its flash folder (host.emulator.state_file). A board at a port is
reached the way `sisnbms flash` reaches it: ENTER_REPL over the protocol,
then mpremote writes (or removes) bms_state.json and the board reboots into
the firmware, which restores that state at boot. So `hil` starts a scenario
from the same firmware state as `emulate` does.
"""

from __future__ import annotations

import asyncio
import json

from cellmodel.design import CellDesign
from cellmodel.errors import InputError
from host.emulator.state_file import STATE_FILE, initial_state_dict
from host.scenarios import Scenario


def _put_state(port: str, scenario: Scenario, design: CellDesign) -> None:
    from host.flash.board_files import BoardFiles

    files = BoardFiles(port)
    try:
        files.enter_raw_repl()
        if scenario.initial.state_file:
            try:
                config = json.loads(bytes(files.read("bms_config.json")).decode())
            except (OSError, ValueError) as exc:
                raise InputError(
                    "--port", port, f"no readable bms_config.json on the board ({exc}); flash it"
                ) from exc
            capacity_mAh = int(config.get("capacity_mAh") or round(design.capacity_Ah * 1000))
            state = initial_state_dict(scenario, capacity_mAh)
            files.write(STATE_FILE, json.dumps(state).encode())
        elif files.hashes([STATE_FILE])[STATE_FILE] is not None:
            files.remove(STATE_FILE)
        files.reboot_into_firmware()
    finally:
        files.close()


async def prepare_board_state(port: str, scenario: Scenario, design: CellDesign) -> None:
    """Write the scenario's initial bms_state.json to the board at `port` and reboot it."""
    from host.flash.flasher import request_repl

    await request_repl(port)
    await asyncio.to_thread(_put_state, port, scenario, design)

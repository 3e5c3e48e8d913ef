"""The firmware's own protocol machine on an in-memory line, for sans-I/O host tests.

`MemoryBoard` runs firmware/bms/app.py's App (with the real Bms, configuration
and state file in a folder) under CPython: what the host writes reaches it at
once, what it answers waits in `outbox` until the host takes it. Tests damage
the line in between (lost requests, lost or held replies, any split). Time is
a `Clock` the test moves; the firmware reads the same clock in milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.firmware.bms_harness import firmware_module

CELLS = [3700, 3701, 3699, 3702]
REPL_BANNER = b'MicroPython v1.24.0 on unix\r\nType "help()" for more information.\r\n>>> '


@dataclass
class Clock:
    now_s: float = 100.0

    def __call__(self) -> float:
        return self.now_s

    @property
    def ms(self) -> int:
        return int(round(self.now_s * 1000))


class MemoryBoard:
    def __init__(self, flash: Path, clock: Clock, config: dict[str, Any] | None = None) -> None:
        flash.mkdir(parents=True, exist_ok=True)
        cfg_path = flash / "bms_config.json"
        if not cfg_path.exists():
            cfg_path.write_text(json.dumps(config or {"n_cells": 4, "n_temps": 1}))
        app_mod = firmware_module("bms.app")
        cfg, flags = firmware_module("bms.config").load(str(cfg_path))
        bms = firmware_module("bms.core").Bms(cfg, str(flash / "bms_state.json"))
        self.app = app_mod.App(
            bms,
            cfg,
            board_name="memory",
            config_flags=flags,
            config_path=str(cfg_path),
            now_ms=clock.ms,
        )
        self.clock = clock
        self.outbox = bytearray()
        self.lose_requests = 0  # the next n frames the host writes never arrive
        self.lose_replies = 0  # the next n replies never reach the host
        self.damage_replies = 0  # the next n replies arrive with one bit flipped
        self.received: list[bytes] = []  # every write that arrived, as it arrived

    @property
    def acted(self) -> bool:
        """The firmware left its loop (ENTER_REPL or RESET answered)."""
        return bool(self.app.action)

    def boot(self) -> None:
        """Send the unsolicited BOOT frame, as main.py does on start."""
        self.app.boot_frame()
        self._emit()

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.lose_requests:
            self.lose_requests -= 1
            return
        self.received.append(data)
        i = 0
        while i < len(data) and not self.app.action:
            i = self.app.receive(data, i, len(data), self.clock.ms)
            if self.app.out_len:
                self._emit()
            if self.app.action:
                self.app.bms.shutdown()  # as main.py does when the loop ends: open, save

    def take(self, max_bytes: int = 4096) -> bytes:
        data = bytes(self.outbox[:max_bytes])
        del self.outbox[:max_bytes]
        return data

    def _emit(self) -> None:
        app = self.app
        reply = bytearray(app.out[: app.out_len])
        app.out_len = 0
        if self.lose_replies:
            self.lose_replies -= 1
            return
        if self.damage_replies:
            self.damage_replies -= 1
            reply[-1] ^= 0x01
        self.outbox += reply


class MemoryLink:
    """A link to a MemoryBoard whose read and write complete at once.

    A read with nothing to take lets the clock run to its timeout, as a real
    read would have waited, and returns b"".
    """

    def __init__(self, board: MemoryBoard) -> None:
        self.board = board

    def write(self, data: bytes) -> None:
        self.board.write(data)

    async def read(self, max_bytes: int, timeout_s: float) -> bytes:
        data = self.board.take(max_bytes)
        if not data:
            self.board.clock.now_s += timeout_s
        return data

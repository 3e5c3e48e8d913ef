"""Board sessions: one interface over every kind of board a run can use (see base.py)."""

from __future__ import annotations

import os

from host.board_session.base import (
    BOOT_TIMEOUT_S,
    REPLY_TIMEOUT_S,
    BoardSession,
    BoardSetup,
    PowerNotControllable,
)
from host.board_session.serial import SerialBoardSession
from host.board_session.virtual import VirtualBoardSession


def open_board(
    *,
    port: str | None = None,
    flash_dir: str | os.PathLike[str] | None = None,
    micropython: str | os.PathLike[str] | None = None,
    board: str = "virtual",
) -> BoardSession:
    """The board a run asked for: the one at `port`, else a fresh virtual board whose flash
    folder is `flash_dir`, provisioned as board definition `board`. The one place that
    chooses a kind."""
    if port is not None:
        return SerialBoardSession(port)
    if flash_dir is None:
        raise ValueError("a virtual board needs a flash folder")
    return VirtualBoardSession(flash_dir, micropython=micropython, board=board)


__all__ = [
    "BOOT_TIMEOUT_S",
    "REPLY_TIMEOUT_S",
    "BoardSession",
    "BoardSetup",
    "PowerNotControllable",
    "SerialBoardSession",
    "VirtualBoardSession",
    "open_board",
]

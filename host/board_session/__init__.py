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
from host.board_session.qemu import QemuBoardSession
from host.board_session.serial import SerialBoardSession
from host.board_session.virtual import VirtualBoardSession
from host.micropython.resolve import UNIX64_TARGET, UNIX_HEAP, is_qemu, target_binary


def board_kind(*, port: str | None = None, target: str = UNIX64_TARGET) -> type[BoardSession]:
    """The kind of board a run asked for: the one at `port`, else a fresh board of `target`.
    The one place that chooses a kind; a run's checks ask it (can_cut_power) before the
    board exists."""
    if port is not None:
        return SerialBoardSession
    return QemuBoardSession if is_qemu(target) else VirtualBoardSession


def open_board(
    *,
    port: str | None = None,
    flash_dir: str | os.PathLike[str] | None = None,
    micropython: str | os.PathLike[str] | None = None,
    board: str = "virtual",
    target: str = UNIX64_TARGET,
    lockstep: bool = False,
) -> BoardSession:
    """The board a run asked for: the one at `port`, else a fresh virtual board of `target`
    (host.micropython.resolve) whose flash folder is `flash_dir`, provisioned as board
    definition `board` (board_kind chooses which)."""
    if port is not None:
        return SerialBoardSession(port)
    if flash_dir is None:
        raise ValueError("a virtual board needs a flash folder")
    binary = target_binary(target, micropython)
    if board_kind(target=target) is QemuBoardSession:
        return QemuBoardSession(flash_dir, binary, lockstep=lockstep)
    return VirtualBoardSession(
        flash_dir, micropython=binary, board=board, heap=UNIX_HEAP[target], lockstep=lockstep
    )


__all__ = [
    "BOOT_TIMEOUT_S",
    "REPLY_TIMEOUT_S",
    "BoardSession",
    "BoardSetup",
    "PowerNotControllable",
    "QemuBoardSession",
    "SerialBoardSession",
    "VirtualBoardSession",
    "board_kind",
    "open_board",
]

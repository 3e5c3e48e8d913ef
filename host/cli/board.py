"""`sisnbms board --virtual`: run a virtual board until interrupted.

Prints the board's serial port (a pseudo-terminal) so mpremote, a terminal,
`sisnbms flash` or `sisnbms hil` can open it like a USB board. With -v (the
global option) the board's starts, resets, crashes and exits are logged on
stderr (-vv: each Ctrl-C it delivers as well).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from cellmodel import load_cell
from cellmodel.errors import InputError
from cellmodel.files import check_output_dir
from host.boards import load_board
from host.cli.options import CLI
from host.cli.output import emit_json
from host.image import config_files
from host.interpreter import find_micropython
from host.vboard import VirtualBoard
from host.vboard.provision import has_firmware, provision_flash

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "board",
        help="run a virtual board (MicroPython unix port on a pseudo-terminal)",
        description=(
            "Start a virtual board: MicroPython's unix port runs the firmware from a folder "
            "standing for the flash, with a pseudo-terminal as its USB serial port. Runs "
            "until Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument(
        "--virtual", action="store_true", help="a virtual board (the only kind this starts)"
    )
    parser.add_argument(
        "--fs",
        metavar="DIR",
        help="flash folder (kept; default: a temporary folder removed on exit)",
    )
    parser.add_argument(
        "--bms-cell",
        "--cell",
        dest="cell",
        metavar="X",
        help="the design the BMS is configured for (bms_config.json): cell preset or file",
    )
    parser.add_argument(
        "--board",
        default="virtual",
        metavar="NAME",
        help="board file for board.json (default: virtual)",
    )
    parser.add_argument(
        "--blank",
        action="store_true",
        help="do not install the firmware into an empty flash folder (to try `sisnbms flash`)",
    )
    parser.add_argument("--micropython", metavar="PATH", help="MicroPython unix-port binary")
    parser.add_argument(
        "--json", action="store_true", help='print {"port": ..., "fs": ...} on stdout'
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.virtual:
        raise InputError(CLI, "--virtual", "required: only virtual boards start here")
    # Everything is checked before a folder is made or a file written.
    design = load_cell(args.cell, "--bms-cell", args.cell) if args.cell else load_cell()
    board_def = load_board(args.board)
    if not args.blank:
        config_files(design, board_def)  # the firmware's configuration: the design must fit it
    micropython = find_micropython(args.micropython)
    if args.fs:
        flash = check_output_dir(args.fs, CLI, "--fs")
    temp = None if args.fs else tempfile.mkdtemp(prefix="sisnbms-flash-")
    flash = Path(temp) if temp else Path(args.fs)
    try:
        provisioned = False
        if not args.blank and not has_firmware(flash):
            provision_flash(flash, design, board_def)
            provisioned = True
            log.info(
                "installed the firmware for %s on %s in %s", design.name, board_def.name, flash
            )
        return asyncio.run(_serve(flash, micropython, args, provisioned))
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


async def _serve(
    flash: Path, micropython: Path, args: argparse.Namespace, provisioned: bool
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    board = VirtualBoard(flash, micropython)
    await board.start()
    try:
        if args.json:
            # One line: a program reads it with readline() while the board runs.
            emit_json({"port": board.port, "fs": str(flash.resolve())}, indent=None)
        else:
            what = "installed the firmware, " if provisioned else ""
            print(f"virtual board on {board.port}", flush=True)
            print(f"flash folder {flash.resolve()} ({what}Ctrl-C to stop)", flush=True)
        await stop.wait()
    finally:
        await board.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    if not args.json:
        print("virtual board stopped", file=sys.stderr)
    return 0

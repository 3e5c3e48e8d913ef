"""`sisnbms boards`: list the board files shipped with sisnbms."""

from __future__ import annotations

import argparse
from typing import Any

from host.boards import board_summary, list_boards
from host.cli.output import emit_json


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "boards",
        help="list the supported boards",
        description="List the board files (boards/*.toml): MCU, mpy-cross arch, MicroPython.",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"boards": [{"name", "description", ...}]} on stdout',
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    boards = list_boards()
    if args.json:
        emit_json({"boards": [board_summary(b) for b in boards]})
        return 0
    width = max(len(b.name) for b in boards)
    for b in boards:
        print(
            f"{b.name:<{width}}  {b.mcu:<6}  {b.mpy_arch:<9}  MicroPython >= {b.micropython_min}"
            f"  {b.description}"
        )
    return 0

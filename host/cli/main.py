"""Entry point of the `sisnbms` command.

Each subcommand lives in its own module under host.cli with two functions:
`register(subparsers)` adds its parser and sets `func=run`, and
`run(args) -> int` returns the exit code (0 ok, 1 expectation or safety
check failed, 2 bad input).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from cellmodel.errors import InputError

# Order is the order shown in --help.
SUBCOMMANDS = (
    "design",
    "simulate",
    "emulate",
    "board",
    "boards",
    "flash",
    "hil",
    "campaign",
    "bench",
    "micropython",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sisnbms",
        description="Battery-management firmware-in-the-loop emulator for Si-Sn anode cells.",
    )
    from host import __version__

    parser.add_argument("--version", action="version", version=f"sisnbms {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"host.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as exc:
        print(f"sisnbms {args.command}: error: {exc}", file=sys.stderr)
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc), "source": exc.source, "field": exc.field}))
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

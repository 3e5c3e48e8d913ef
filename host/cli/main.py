"""Entry point of the `sisnbms` command.

Each subcommand lives in its own module under host.cli with two functions:
`register(subparsers)` adds its parser and sets `func=run`, and
`run(args) -> int` returns the exit code (0 ok, 1 expectation or safety
check failed, 2 bad input).

Bad input never ends in a traceback: a usage error (argparse), an InputError (a file,
field or option with the reason) and an OSError (a file or port the system refused)
print one line on stderr and exit 2; under --json the same error is also one JSON
object on stdout ({"error", "source", "field", "reason"}). A board that stops
answering (BmsError) is exit 1 with its message. `-v`/`-vv` (before or after the
command) turn on logging (host.cli.logs).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from cellmodel.errors import InputError
from host.cli import logs
from host.cli.options import CLI
from host.cli.output import emit_json
from host.protocol.errors import BmsError

log = logging.getLogger("host.cli")

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
VERBOSE_HELP = "log what the host does on stderr (-vv: also a trace of every frame on the wire)"


class UsageError(Exception):
    """A command line argparse rejects; carries the parser for its usage line, and the option
    (field) and reason when one option's value is at fault."""

    def __init__(
        self,
        parser: argparse.ArgumentParser,
        message: str,
        field: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.parser = parser
        self.field = field
        self.reason = message if reason is None else reason


# A negative number as an option's value, in every form float() reads: argparse's own
# pattern knows only -5 and -5.5, and takes `--ambient -1e1`, `-10.` or `-inf` for an
# unknown option ("expected one argument"). No option of sisnbms looks like one.
_NEGATIVE_NUMBER = re.compile(
    r"^-(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE
)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError instead of exiting, so main() can answer
    in JSON too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


class CommandParser(Parser):
    """A subcommand's parser: an argument it does not know is its error, with its usage
    (`sisnbms emulate: error: unrecognized arguments: --bogus`). argparse would hand the
    argument up for the top parser to refuse under `sisnbms`'s usage. Everything after
    the command is the command's, so nothing it leaves over belongs to another parser."""

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        parsed, extras = super().parse_known_args(*args, **kwargs)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="sisnbms",
        description="Battery-management firmware-in-the-loop emulator for Si-Sn anode cells.",
    )
    from host import __version__

    parser.add_argument("--version", action="version", version=f"sisnbms {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"host.cli.{name}").register(sub)
    _add_verbose(sub)
    return parser


def _add_verbose(sub: Any) -> None:
    """-v after the command as well as before it (`sisnbms board --virtual -vv`)."""
    for parser in sub.choices.values():
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            for action in nested:
                _add_verbose(action)
        else:
            parser.add_argument(
                "-v", "--verbose", dest="verbose_after", action="count", default=0,
                help=VERBOSE_HELP,
            )  # fmt: skip


def _no_empty_values(
    parser: argparse.ArgumentParser, args: argparse.Namespace, argv: Sequence[str] = ()
) -> None:
    """An empty option value (`--out ""`, `--cell ""`) is a usage error, not a default. Like
    a value out of range, it is reported as source "command line", field the option (the
    spelling given: `--cell` of `--bms-cell/--cell`)."""
    for owner, action in _actions(parser, args):
        value = getattr(args, action.dest, None)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values):
            given = [
                o for o in action.option_strings
                if any(a == o or a.startswith(f"{o}=") for a in argv)
            ]  # fmt: skip
            name = (
                given[-1] if given
                else "/".join(action.option_strings) or str(action.metavar or action.dest)
            )  # fmt: skip
            reason = "empty value"
            raise UsageError(owner, f"{CLI}: {name}: {reason}", field=name, reason=reason)


def _actions(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> list[tuple[argparse.ArgumentParser, argparse.Action]]:
    """(parser, action) of `parser` and of the subcommands args chose, nested ones too."""
    found: list[tuple[argparse.ArgumentParser, argparse.Action]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, str(action.dest), None)
            if chosen in action.choices:
                found += _actions(action.choices[chosen], args)
        else:
            found.append((parser, action))
    return found


def _command_parser(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The parser of the (sub)command args chose: its prog names it in error messages, as
    argparse's usage errors do."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, str(action.dest), None)
            if chosen in action.choices:
                return _command_parser(action.choices[chosen], args)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _no_empty_values(parser, args, argv)
    except UsageError as exc:
        exc.parser.print_usage(sys.stderr)
        return _fail(f"{exc.parser.prog}: error: {exc}", as_json, CLI, exc.field, exc.reason)
    logs.configure(args.verbose + getattr(args, "verbose_after", 0))
    as_json = bool(getattr(args, "json", False))
    prefix = f"{_command_parser(parser, args).prog}: error:"  # sisnbms micropython build
    try:
        return int(args.func(args))
    except InputError as exc:
        return _fail(f"{prefix} {exc}", as_json, exc.source, exc.field, exc.reason)
    except OSError as exc:
        log.debug("OSError", exc_info=True)
        where = exc.filename if exc.filename is not None else "system"
        reason = exc.strerror or str(exc)
        return _fail(f"{prefix} {where}: {reason}", as_json, str(where), None, reason)
    except KeyboardInterrupt:
        return 130
    except BmsError as exc:
        log.debug("board error", exc_info=True)
        return _fail(f"{prefix} board: {exc}", as_json, "board", None, str(exc), code=1)


def _fail(
    message: str,
    as_json: bool,
    source: str,
    field: str | None,
    reason: str,
    *,
    code: int = 2,
) -> int:
    print(message, file=sys.stderr)
    if as_json:
        error = {"error": message.split(": error: ", 1)[-1], "source": source, "field": field}
        emit_json({**error, "reason": reason, "exit_code": code}, indent=None)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""`-v` / `-vv` on every command: the standard logging module, on stderr.

Default: warnings only (a board that crashed, a run that was cut short). -v: what the
host does (files read and written, the board started, flashed, recovered; runs begun
and ended). -vv: also debugging detail, including a trace of every protocol frame on
the wire (host.protocol.wire_trace) and the virtual board's own notes.

Only sisnbms's loggers (`host`, `cellmodel`) are configured, so a program or test
runner that embeds the CLI keeps its own logging. On a terminal the lines go through
the console the progress bar uses (rich), above the bar.
"""

from __future__ import annotations

import logging
import sys

from rich.logging import RichHandler

from host.progress import stderr_console

LOGGERS = ("host", "cellmodel")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_installed: list[tuple[logging.Logger, logging.Handler]] = []


def level_for(verbosity: int) -> int:
    return logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG


def configure(verbosity: int) -> None:
    """Send sisnbms's log records at the level `verbosity` (-v count) asks for to stderr.

    Called once per command; a second call (the CLI run again in one process, as tests
    do) replaces the handler the first installed.
    """
    for logger, handler in _installed:
        logger.removeHandler(handler)
    _installed.clear()
    console = stderr_console()
    handler: logging.Handler
    if console.is_terminal:
        handler = RichHandler(console=console, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
    level = level_for(verbosity)
    handler.setLevel(level)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
        _installed.append((logger, handler))

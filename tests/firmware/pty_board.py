"""A firmware process on a real pseudo-terminal, for tests that talk to it as to a board.

`FirmwareOnPty` copies firmware/ into a temporary flash folder with a
board.json for the unix port and a bms_config.json, starts
`micropython main.py` (or `micropython -i main.py`, which drops into the REPL
when main.py returns, as a board does; or a given script) with stdin/stdout on
the pty master,
and exposes the slave device path for pyserial or host.link.SerialLink.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import termios
import tty
from pathlib import Path
from typing import Any

from host.interpreter import find_micropython

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
UNIX_BOARD = {
    "name": "pty-test",
    "mcu": "unix",
    "mode": "link",
    "pins": {},
    "wdt_timeout_ms": 0,
    "sample_period_ms": 1000,
}


def provision(flash: Path, config: dict[str, Any], board: dict[str, Any] | None = None) -> None:
    flash.mkdir(parents=True, exist_ok=True)
    for name in ("main.py", "boot.py"):
        shutil.copy(FIRMWARE / name, flash / name)
    for pkg in ("bms", "adapters"):
        shutil.copytree(FIRMWARE / pkg, flash / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (flash / "board.json").write_text(json.dumps(board or UNIX_BOARD))
    (flash / "bms_config.json").write_text(json.dumps(config))


class FirmwareOnPty:
    def __init__(self, flash: Path, *, repl_after: bool = False, script: str | None = None) -> None:
        self.flash = flash
        self.repl_after = repl_after
        self.master_fd, self._slave_fd = pty.openpty()
        # raw both ways: no echo (the firmware would read its own frames back),
        # no CR/LF rewriting, no signals from 0x03
        tty.setraw(self._slave_fd, termios.TCSANOW)
        tty.setraw(self.master_fd, termios.TCSANOW)
        self.port = os.ttyname(self._slave_fd)
        args = [str(find_micropython()), "-X", "heapsize=512K"]
        if repl_after:
            args.append("-i")
        # `script` runs instead of main.py (a measurement harness around main's pieces)
        self.proc = subprocess.Popen(
            [*args, "main.py"] if script is None else [*args, "-c", script],
            stdin=self.master_fd,
            stdout=self.master_fd,
            stderr=subprocess.PIPE,
            cwd=flash,
            start_new_session=True,
        )

    def wait(self, timeout_s: float = 10.0) -> int:
        return self.proc.wait(timeout_s)

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        for fd in (self.master_fd, self._slave_fd):
            os.close(fd)

    def __enter__(self) -> FirmwareOnPty:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

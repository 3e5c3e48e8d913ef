"""A one-line progress bar on stderr for runs that take more than a couple of seconds.

Silent under --json and when stderr is not a terminal, so logs and pipes stay clean.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

SHOW_AFTER_S = 2.0
REDRAW_S = 0.1
WIDTH = 30


class Progress:
    def __init__(
        self,
        total: float,
        *,
        label: str = "",
        enabled: bool | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.total = max(float(total), 1e-9)
        self.label = label
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self._t0 = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def update(self, done: float, note: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._t0 < SHOW_AFTER_S or now - self._last_draw < REDRAW_S:
            return
        self._last_draw = now
        frac = min(max(done / self.total, 0.0), 1.0)
        filled = int(frac * WIDTH)
        bar = "#" * filled + "-" * (WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {frac * 100:5.1f}% {note}\x1b[K")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

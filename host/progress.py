"""The progress bar of a run that takes more than a couple of seconds (rich), on stderr.

It shows the steps done, elapsed time and an ETA, appears only after SHOW_AFTER_S (a
quick run draws nothing) and only when stderr is a terminal, and is never enabled under
--json, so logs, pipes and machine-readable output stay clean. Log lines written while it
is shown go through the same console (host.cli.logs), above the bar.
"""

from __future__ import annotations

import time
from functools import cache
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import (
    Progress as RichProgress,
)

SHOW_AFTER_S = 2.0
# The loop reports after every sample; the bar redraws at most this often.
UPDATE_EVERY_S = 0.1


@cache
def stderr_console() -> Console:
    """The one console on stderr that progress bars and log lines share."""
    return Console(stderr=True)


class Progress:
    """`update(done, note)` as work advances (done of `total`), `close()` at the end."""

    def __init__(
        self,
        total: float,
        *,
        label: str = "",
        enabled: bool | None = None,
        console: Console | None = None,
    ) -> None:
        self.console = console or stderr_console()
        self.total = max(float(total), 1e-9)
        self.label = label
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self._t0 = time.monotonic()
        self._next_update = self._t0 + SHOW_AFTER_S
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None

    def update(self, done: float, note: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self._next_update:
            return
        self._next_update = now + UPDATE_EVERY_S
        if self._bar is None:
            self._start()
        assert self._bar is not None and self._task is not None
        self._bar.update(self._task, completed=min(done, self.total), note=note)

    def close(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.stop()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self) -> None:
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
            console=self.console,
            transient=True,  # the bar goes when the run ends; the report follows
        )
        self._task = self._bar.add_task(self.label, total=self.total, note="")
        self._bar.start()

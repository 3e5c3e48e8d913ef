"""The campaign's progress bar (rich): runs done of all, failures so far, ETA, on stderr.

Shown only when stderr is a terminal; never under --json.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class CampaignProgress:
    def __init__(self, label: str, total: int, *, done: int = 0, enabled: bool = True) -> None:
        console = Console(stderr=True)
        self.enabled = enabled and console.is_terminal
        self.failed = 0
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=not self.enabled,
        )
        self._task: TaskID = self._progress.add_task(label, total=total, completed=done, failed=0)

    def __enter__(self) -> CampaignProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def advance(self, passed: bool) -> None:
        self.failed += not passed
        self._progress.update(self._task, advance=1, failed=self.failed)

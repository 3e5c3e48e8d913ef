"""Draw a run's plot in a process of its own, started when the run starts (issue 13).

matplotlib's import, a first drawing (fonts, the Agg renderer) and the empty panels
cost a default `sisnbms emulate` a third of a second after its loop: a worker started
before the board makes them on the core the run's start-up leaves idle, then waits for
the log. At the end the run hands it the log (pickled on its stdin) and writes the CSV log
while it draws.

The worker ignores Ctrl-C (the run handles it and still hands over its partial log) and
ends without drawing when its stdin closes without a job.
"""

from __future__ import annotations

import io
import pickle
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from cellmodel.files import atomic_path


class PlotWorker:
    """The worker process; `draw` hands it the job, `wait` until the plot is written."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def draw(self, log: Any, path: Path, **plot_args: Any) -> None:
        """Hand over the job: write_plot(log, path, **plot_args), path written atomically."""
        assert self._proc.stdin is not None
        try:
            pickle.dump((log, str(path), plot_args), self._proc.stdin)
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass  # the worker has ended: wait() reports why

    def wait(self) -> None:
        """Until the worker has ended; RuntimeError with its error output if it failed."""
        _, err = self._proc.communicate()
        if self._proc.returncode != 0:
            raise RuntimeError(
                f"the plot worker failed (exit {self._proc.returncode}): "
                + err.decode(errors="replace").strip()
            )

    def close(self) -> None:
        """End the worker if it still runs (the run failed before its outputs)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.communicate()

    def __enter__(self) -> PlotWorker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _warm_up() -> None:
    """Draw a small figure once: loads the Agg renderer, the font and the text layout."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    ax = fig.subplots()
    ax.plot([0.0, 1.0], [0.0, 1.0], label="warm-up")
    ax.set_ylabel("a / 1")
    ax.legend(fontsize=7)
    fig.suptitle("warm-up")
    fig.savefig(io.BytesIO(), format="png", dpi=20)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's; EOF ends the worker
    from host.report.plot import new_canvas, write_plot  # the import to overlap

    _warm_up()
    canvas = new_canvas()
    try:
        log, path, plot_args = pickle.load(sys.stdin.buffer)  # from the run that started us
    except EOFError:
        return 0  # the run ended without outputs
    with atomic_path(path) as tmp:
        write_plot(log, tmp, canvas=canvas, **plot_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

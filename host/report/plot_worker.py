"""Draw a run's plot in a process of its own, forked when the run starts (issue 13).

matplotlib's import (0.25-0.3 s), a first drawing (fonts, the Agg renderer) and the empty
panels cost a default `sisnbms emulate` about a third of a second after its loop. A worker
forked before the board makes them on the core that start-up leaves idle, and on the
host's core while the host waits for the firmware's replies (the lockstep poll yields its
core), then waits for the log. At the end the run hands it the log (pickled on a pipe) and
writes the CSV log while it draws. Measured on a 2-core machine: the default emulate 2.03-2.15
s -> 1.92-2.06 s (4 interleaved pairs); a worker started as a fresh interpreter instead
gained nothing (it imports numpy and Python's start-up again, on the cores the loop uses).

Forked, not spawned: the run's process has numpy and the host's modules loaded, and the
child starts with them. Fork only while the process has one thread (a lock held by another
thread at the fork stays held in the child forever); otherwise, and where fork does not
exist, the plot is drawn in the run's process when the log is handed over.

The worker ignores Ctrl-C (the run handles it and still hands over its partial log) and
ends without drawing when its pipe closes without a job.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from cellmodel.files import atomic_path


class PlotWorker:
    """The worker process; `draw` hands it the job, `wait` until the plot is written."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._jobs: BinaryIO | None = None
        self._errors = -1
        self._failed: Exception | None = None  # drawn here, and failed: wait() says so
        if not hasattr(os, "fork") or threading.active_count() > 1:
            return  # drawn here, in draw()
        jobs_r, jobs_w = os.pipe()
        errors_r, errors_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(jobs_w)
            os.close(errors_r)
            _serve(jobs_r, errors_w)  # never returns
        os.close(jobs_r)
        os.close(errors_w)
        self._pid = pid
        self._jobs = os.fdopen(jobs_w, "wb")
        self._errors = errors_r

    def draw(self, log: Any, path: Path, **plot_args: Any) -> None:
        """Hand over the job: write_plot(log, path, **plot_args), path written atomically."""
        if self._jobs is None:
            try:
                _draw(log, str(path), plot_args)
            except Exception as exc:  # noqa: BLE001 - reported by wait(), as the worker's
                self._failed = exc
            return
        try:
            pickle.dump((log, str(path), plot_args), self._jobs)
            self._jobs.close()
        except BrokenPipeError:
            pass  # the worker has ended: wait() reports why

    def wait(self) -> None:
        """Until the worker has ended; RuntimeError with its error output if it failed."""
        if self._failed is not None:
            raise RuntimeError(f"the plot failed: {self._failed!r}") from self._failed
        if self._pid is None:
            return
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        with os.fdopen(self._errors, "rb") as errors:
            err = errors.read()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise RuntimeError(
                f"the plot worker failed (exit {code}): " + err.decode(errors="replace").strip()
            )

    def close(self) -> None:
        """End the worker if it still runs (the run failed before its outputs)."""
        if self._jobs is not None and not self._jobs.closed:
            self._jobs.close()  # no job: the worker ends without drawing
        if self._pid is not None:
            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = None
            os.close(self._errors)

    def __enter__(self) -> PlotWorker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _draw(log: Any, path: str, plot_args: dict[str, Any], canvas: Any = None) -> None:
    from host.report.plot import write_plot

    with atomic_path(path) as tmp:
        write_plot(log, tmp, canvas=canvas, **plot_args)


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


def _serve(jobs_fd: int, errors_fd: int) -> None:
    """The forked worker: import, warm up, draw the one job; exit without the parent's
    atexit handlers or buffered output (os._exit)."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's
        from host.report.plot import new_canvas  # the import to overlap

        _warm_up()
        canvas = new_canvas()
        with os.fdopen(jobs_fd, "rb") as jobs:
            try:
                log, path, plot_args = pickle.load(jobs)
            except EOFError:
                code = 0  # the run ended without outputs
            else:
                _draw(log, path, plot_args, canvas)
                code = 0
    except BaseException as exc:  # noqa: BLE001 - reported to the run, which raises it
        os.write(errors_fd, repr(exc).encode(errors="replace"))
    finally:
        os._exit(code)

"""Runs on this machine: K at a time, each in a worker process of its own.

concurrent.futures' ThreadPoolExecutor keeps K runs going; each run executes
`execute_run` in a fresh process started by multiprocessing's fork server, which
has imported the emulator once (a run starts in milliseconds, not after a second of
imports). With no more workers than cores, each run (its worker and the board it
starts) keeps to a core of its own. A process per run makes every failure that run's
own: a worker that crashes or is killed is seen by its exit code, the run it was
running is tried again (ATTEMPTS in all) and then recorded failed with the reason, and
no other run is touched; a worker still running past the run's timeout (plus a grace for the run
to stop itself) is killed with its process group.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from host.campaign.execute import ERROR, TIMEOUT, execute_run

ATTEMPTS = 2
GRACE_S = 30.0  # after its timeout a run cancels itself; this long later its process is killed
_PRELOAD = ["host.campaign.execute", "host.emulator", "host.scenarios"]

OnResult = Callable[[dict[str, Any]], None]


def _context() -> Any:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def _noop() -> None:
    pass


def warm_up() -> None:
    """Start the fork server now (it imports the emulator once, about a second)."""
    ctx = _context()
    proc = ctx.Process(target=_noop)
    proc.start()
    proc.join()


def _worker_main(payload: dict[str, Any], conn: Connection, cpu: int | None = None) -> None:
    # Its own process group: the parent can kill the worker with whatever it started,
    # and a Ctrl-C in the terminal reaches the campaign, which stops the workers itself.
    os.setsid()
    if cpu is not None:
        # The run's host and firmware take turns (no pipelining in a campaign): on one
        # core of their own each hand-over is a switch on that core, not a wake-up of
        # another, and two runs never contend for a core (issue 13: 2 workers vs 1).
        os.sched_setaffinity(0, {cpu})  # the board's interpreter, a child, inherits it
    result = execute_run(payload)
    conn.send(result)
    conn.close()


class LocalExecutor:
    """`run(payloads, on_result)` on `workers` local worker processes."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self._ctx = _context()
        self._lock = threading.Lock()
        self._live: set[BaseProcess] = set()
        self._stopping = False
        self._free_cpus = _cpus_for(workers)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop_all()

    def run(self, payloads: Sequence[dict[str, Any]], on_result: OnResult) -> None:
        """Call on_result(result) in this thread as each run ends, in the order they end."""
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="sisnbms-campaign")
        try:
            futures: list[Future[dict[str, Any]]] = [
                pool.submit(self._with_retries, p) for p in payloads
            ]
            for future in as_completed(futures):
                on_result(future.result())
        finally:
            self._stop_all()
            pool.shutdown(wait=True, cancel_futures=True)

    def _with_retries(self, payload: dict[str, Any]) -> dict[str, Any]:
        reasons: list[str] = []
        result: dict[str, Any] = {}
        for attempt in range(1, ATTEMPTS + 1):
            result, died = self._once(payload)
            result["attempts"] = attempt
            if not died:
                if reasons:
                    result["retried_after"] = "; ".join(reasons)
                return result
            reasons.append(result["error"])
            if self._stopping:
                break
        result["error"] = f"{result['error']} on each of {len(reasons)} attempt(s)"
        return result

    def _once(self, payload: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """(result, whether the worker died without one)."""
        recv, send = self._ctx.Pipe(duplex=False)
        with self._lock:
            cpu = self._free_cpus.pop() if self._free_cpus else None
        try:
            return self._on_cpu(payload, recv, send, cpu)
        finally:
            if cpu is not None:
                with self._lock:
                    self._free_cpus.append(cpu)

    def _on_cpu(
        self, payload: dict[str, Any], recv: Connection, send: Connection, cpu: int | None
    ) -> tuple[dict[str, Any], bool]:
        proc = self._ctx.Process(
            target=_worker_main,
            args=(payload, send, cpu),
            name=f"sisnbms-run-{payload['run_id']}",
            daemon=True,
        )
        with self._lock:
            if self._stopping:
                return _lost(payload, "campaign stopped before the run started"), True
            proc.start()
            self._live.add(proc)
        send.close()
        try:
            if recv.poll(payload["timeout_s"] + GRACE_S):
                with contextlib.suppress(EOFError):
                    result = recv.recv()
                    proc.join(5.0)  # it exits once the result is sent
                    return result, False
                proc.join(5.0)
                return _lost(payload, f"worker process died ({_exit_text(proc)})"), True
            result = _lost(payload, f"worker killed: no result {GRACE_S:g} s past the timeout")
            result["status"] = TIMEOUT
            return result, False
        finally:
            _kill_group(proc)
            proc.join()
            with self._lock:
                self._live.discard(proc)
            recv.close()

    def _stop_all(self) -> None:
        with self._lock:
            self._stopping = True
            live = list(self._live)
        for proc in live:
            _kill_group(proc)


def _cpus_for(workers: int) -> list[int]:
    """A core of its own for each of `workers` runs, when there are as many."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []
    return cpus[:workers] if workers <= len(cpus) else []


def _lost(payload: dict[str, Any], error: str) -> dict[str, Any]:
    return {
        "run_id": payload["run_id"],
        "status": ERROR,
        "error": error,
        "run_wall_s": None,
        "summary": None,
    }


def _exit_text(proc: BaseProcess) -> str:
    code = proc.exitcode
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _kill_group(proc: BaseProcess) -> None:
    """SIGKILL the worker's process group (it leads one: _worker_main calls setsid)."""
    pid = proc.pid
    if pid is None or proc.exitcode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()

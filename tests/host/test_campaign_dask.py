"""`sisnbms campaign --scheduler` on a real local Dask cluster: a scheduler and two workers
started here as subprocesses (the `dask` command line) on 127.0.0.1.

The same campaign gives the same per-run results as on local worker processes, and a
worker killed mid-campaign loses no run: Dask gives its run to the other worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from host.campaign import run_campaign
from host.campaign.results import is_volatile, read_table

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "examples" / "campaign-smoke.toml"
SMOKE_SCENARIO = REPO / "examples" / "campaign-smoke" / "cycle.toml"
DASK = Path(sys.executable).parent / "dask"
START_TIMEOUT_S = 90.0


class Cluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                [str(DASK), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                start_new_session=True,  # its own process group: stopped (or killed) whole
            )
        self.procs.append(proc)
        return proc

    def start(self, n_workers: int) -> None:
        scheduler_file = self.folder / "scheduler.json"
        self._start(
            "scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0",
            "--no-dashboard", "--scheduler-file", str(scheduler_file),
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.address = json.loads(scheduler_file.read_text())["address"]
        for i in range(n_workers):
            self.workers.append(
                self._start(
                    f"worker{i}",
                    "worker",
                    self.address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-dashboard",
                    "--local-directory",
                    str(self.folder / f"w{i}"),
                )  # fmt: skip
            )
        from dask.distributed import Client

        with Client(self.address, timeout=START_TIMEOUT_S) as client:
            client.wait_for_workers(n_workers, timeout=START_TIMEOUT_S)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill(proc)


@contextmanager
def dask_cluster(folder: Path, n_workers: int = 2) -> Iterator[Cluster]:
    cluster = Cluster(folder)
    try:
        cluster.start(n_workers)
        yield cluster
    finally:
        cluster.stop()


def deterministic(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        r["run_id"]: {k: v for k, v in r.items() if not is_volatile(k) and k != "reproduce"}
        for r in rows
    }


@pytest.mark.slow
def test_dask_cluster_gives_the_local_results(
    tmp_path: Path, smoke_local: tuple[Path, dict[str, Any]]
) -> None:
    _, local = smoke_local
    with dask_cluster(tmp_path / "cluster") as cluster:
        outcome = run_campaign(SMOKE, out=tmp_path / "out", scheduler=cluster.address)
    assert outcome.aggregate["executor"] == f"Dask scheduler {cluster.address}"
    assert outcome.aggregate["executed"] == 12
    on_dask = deterministic(outcome.rows)
    on_local = deterministic(read_table(Path(local["table"])))
    assert sorted(on_dask) == sorted(on_local)
    for run_id, row in on_local.items():
        assert on_dask[run_id] == row, run_id
    assert outcome.exit_code == local["exit_code"]


def _running_a_board(worker: subprocess.Popen[bytes]) -> bool:
    """Whether this `dask worker` (nanny, worker process) is running a virtual board now."""
    try:
        for proc in psutil.Process(worker.pid).children(recursive=True):
            if any("vboard_rom" in part for part in proc.cmdline()):
                return True
    except psutil.Error:
        return False
    return False


@pytest.mark.slow
def test_a_killed_dask_worker_loses_no_results(tmp_path: Path) -> None:
    spec = tmp_path / "kill.toml"
    spec.write_text(f'scenarios = ["{SMOKE_SCENARIO}"]\n[axes]\nseed = [1, 2, 3, 4]\n')
    outcome: dict[str, Any] = {}
    with dask_cluster(tmp_path / "cluster") as cluster:

        def campaign() -> None:
            outcome["result"] = run_campaign(spec, out=tmp_path / "out", scheduler=cluster.address)

        thread = threading.Thread(target=campaign)
        thread.start()
        victim = cluster.workers[1]
        deadline = time.monotonic() + 120
        while thread.is_alive() and time.monotonic() < deadline:
            if _running_a_board(victim):
                cluster.kill(victim)
                break
            time.sleep(0.05)
        thread.join(timeout=300)
    assert victim.poll() is not None, "the worker was never seen running a board"
    rows = outcome["result"].rows
    assert len(rows) == 4
    assert {r["status"] for r in rows} == {"passed"}, [r["error"] for r in rows]
    assert outcome["result"].exit_code == 0

"""Runs on a Dask distributed cluster (the optional extra `sisnbms[cluster]`).

The campaign submits `execute_run` with each run's payload through
dask.distributed.Client: the workers need sisnbms installed and nothing else (the
function is imported by name, the payload is plain data with the scenario's files
in it). Dask does the scheduling: a worker that dies has its runs given to another
(up to the scheduler's `distributed.scheduler.allowed-failures`), after which the
run is a failed row with Dask's error. Start workers with one thread each
(`dask worker tcp://HOST:PORT --nthreads 1`): a run is one process's work.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from cellmodel.errors import InputError
from host.campaign.execute import ERROR, describe_error, execute_run
from host.campaign.local import OnResult

CONNECT_TIMEOUT_S = 20.0


class DaskExecutor:
    """`run(payloads, on_result)` on the Dask cluster whose scheduler is at `address`."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._client: Any = None

    def __enter__(self) -> DaskExecutor:
        try:
            from dask.distributed import Client
        except ImportError:
            raise InputError(
                "--scheduler",
                self.address,
                "needs Dask distributed: pip install 'sisnbms[cluster]'",
            ) from None
        try:
            self._client = Client(self.address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(
                "--scheduler", self.address, f"cannot connect: {describe_error(exc)}"
            ) from None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def run(self, payloads: Sequence[dict[str, Any]], on_result: OnResult) -> None:
        """Call on_result(result) in this thread as each run ends, in the order they end."""
        from dask.distributed import as_completed

        client = self._client
        assert client is not None, "use the executor in a with block"
        # A fresh key per submission: a cluster may still hold an earlier campaign's
        # result under the run's id.
        token = uuid.uuid4().hex[:8]
        futures = [
            client.submit(execute_run, p, key=f"sisnbms-{p['run_id']}-{token}", pure=False)
            for p in payloads
        ]
        by_key = {f.key: p for f, p in zip(futures, payloads, strict=True)}
        try:
            for future in as_completed(futures):
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: a failed row
                    result = {
                        "run_id": by_key[future.key]["run_id"],
                        "status": ERROR,
                        "error": f"Dask: {describe_error(exc)}",
                        "run_wall_s": None,
                        "summary": None,
                    }
                future.release()
                on_result(result)
        finally:
            client.cancel(futures)

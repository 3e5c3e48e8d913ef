"""One campaign run, wherever it executes: `execute_run(payload) -> result`.

This is the function the workers call (a local worker process, a Dask worker): it
takes plain data (RunPlan.payload) and returns plain data, imports nothing beyond
sisnbms, and never raises for what a run does: a crash is a result with status
"error" and its message, a run past its timeout one with status "timeout".

The run executes in a temporary folder holding the bundle (scenario.toml and
files/), exactly as `sisnbms emulate --scenario out/runs/<id>/scenario.toml` would
run it; its log and plot are not kept (the reproduce command writes them). Paths
in the returned summary are relative to the bundle's folder.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from host.campaign.expand import SCENARIO_FILE

# Statuses of a result; "passed" and "failed" come from the run's own verdict.
PASSED, FAILED, ERROR, TIMEOUT = "passed", "failed", "error", "timeout"
_CANCEL_RETRY_S = 0.2


def execute_run(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one campaign run (see RunPlan.payload) and return its result dict."""
    start = time.perf_counter()
    summary: dict[str, Any] | None = None
    error: str | None = None
    with tempfile.TemporaryDirectory(prefix="sisnbms-run-") as tmp:
        root = Path(tmp)
        try:
            scenario_path = _write_bundle(root, payload)
            summary = asyncio.run(_run(scenario_path, root / "out", payload))
            if summary is None:
                status = TIMEOUT
                error = f"no result within the run's timeout of {payload['timeout_s']:g} s"
            else:
                status = PASSED if summary["passed"] else FAILED
        except Exception as exc:  # noqa: BLE001 - any crash is this run's result, not ours
            status, error = ERROR, describe_error(exc)
        if summary is not None:
            summary = _relative(summary, root)
    return {
        "run_id": payload["run_id"],
        "status": status,
        "error": error,
        "run_wall_s": round(time.perf_counter() - start, 3),
        "summary": summary,
    }


def _write_bundle(root: Path, payload: dict[str, Any]) -> Path:
    for name, text in payload["files"].items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    scenario_path = root / SCENARIO_FILE
    scenario_path.write_text(payload["scenario_toml"], encoding="utf-8")
    return scenario_path


async def _run(scenario_path: Path, out: Path, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The run's summary, or None when it did not finish within its timeout."""
    # Imported here: a Dask client pickles execute_run by reference, and importing this
    # module there need not load the emulator.
    from host.emulator import run_scenario
    from host.scenarios import load_scenario

    scenario = load_scenario(scenario_path)
    # The log and plot are not kept (the reproduce command writes them): not written at all.
    task = asyncio.ensure_future(
        # One run per core: a run's host and firmware take turns on one (no pipelining).
        run_scenario(scenario, out_dir=out, write_files=False, pipeline=False, **payload["options"])
    )
    done, _ = await asyncio.wait({task}, timeout=payload["timeout_s"])
    if not done:
        # Cancelling unwinds the board session: the interpreter is killed, the pty closed.
        # Cancel until it takes: up to Python 3.11, asyncio.wait_for (the serial link's
        # read) swallows a cancellation that arrives when its read has already completed,
        # which in lockstep is most of the time, and the loop would run on.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=_CANCEL_RETRY_S)
        if task.cancelled():
            return None
    return task.result().summary


def describe_error(exc: BaseException) -> str:
    """The exception's type and message, and where it was raised (file:line)."""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {Path(last.filename).name}:{last.lineno} in {last.name})"
    return text


def _relative(summary: dict[str, Any], root: Path) -> dict[str, Any]:
    """The summary with paths inside the run's folder made relative to it; the log and plot
    were in that temporary folder, so they are dropped."""
    prefix = str(root) + "/"
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if key == "outputs":
            continue
        if isinstance(value, str) and value.startswith(prefix):
            value = value[len(prefix) :]
        out[key] = value
    return out

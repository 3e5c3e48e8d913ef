"""A campaign's files: each run's folder and result, and the table of one row per run.

    OUT/runs/<id>/scenario.toml   the expanded scenario (`sisnbms emulate --scenario` runs it)
    OUT/runs/<id>/files/          the files it reads (cell files, profiles)
    OUT/runs/<id>/result.json     status, error, wall time and the run's summary
    OUT/runs.parquet              one row per run (runs.csv when pyarrow is not installed)
    OUT/campaign.json             the aggregate (host.campaign.aggregate)

Every file is written whole or not at all (a temporary file renamed over it), so an
interrupted campaign leaves only complete results, which `--resume` keeps.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cellmodel.errors import InputError
from cellmodel.files import file_kind, write_text_atomic
from host.campaign.execute import PASSED
from host.campaign.expand import SCENARIO_FILE, RunPlan

RUNS_DIR = "runs"
RESULT_FILE = "result.json"
AGGREGATE_FILE = "campaign.json"
TABLE_FILES = ("runs.parquet", "runs.csv")
# Row columns that differ between two executions of the same run: wall-clock figures, the
# pty's name, retries, and the link's counts (a reply late under load is a timeout and a
# retry), the firmware's own among them: a virtual board kept off its core for more than
# codec.STALL_MS (100 ms) between two reads of one frame drops it as stalled and counts a
# bad frame (seen once in a Dask run beside a campaign on both cores). Every other column
# is a function of the run's inputs.
VOLATILE_COLUMNS = (
    "run_wall_s",
    "wall_s",
    "steps_per_s",
    "port",
    "attempts",
    "retried_after",
    "firmware.final_state.bad_frames",
)
VOLATILE_PREFIXES = ("link.", "board.")  # board.port, its flash folder: per run


def is_volatile(column: str) -> bool:
    return column in VOLATILE_COLUMNS or column.startswith(VOLATILE_PREFIXES)


def run_dir(out: Path, run_id: str) -> Path:
    return out / RUNS_DIR / run_id


def write_atomic(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def check_output_slots(out: Path, plans: Iterable[RunPlan], source: str, field: str) -> None:
    """InputError(source, field, why) before any run starts if something else stands where
    the campaign writes (a folder made where a result belongs, a file where a run's folder
    does): the run would fail only once it had ended, its result lost."""
    slots: list[tuple[Path, str, Callable[[Path], bool]]] = [
        (out / RUNS_DIR, "the folder of runs", Path.is_dir),
        *((out / name, name, Path.is_file) for name in (AGGREGATE_FILE, *TABLE_FILES)),
    ]
    for plan in plans:
        folder = run_dir(out, plan.run_id)
        slots.append((folder, f"run {plan.run_id}'s folder", Path.is_dir))
        for name in (*plan.files, SCENARIO_FILE, RESULT_FILE):
            slots.append((folder / name, f"run {plan.run_id}'s {name}", Path.is_file))
    for path, what, fits in slots:
        if os.path.lexists(path) and not fits(path):
            raise InputError(source, field, f"{path} is {_kind(path)} where {what} belongs")


def _kind(path: Path) -> str:
    if not path.exists():
        return "a link to nothing"
    return file_kind(path.stat().st_mode)


def write_run_files(out: Path, plan: RunPlan) -> None:
    """The run's folder: its scenario and the files it reads, before it runs."""
    folder = run_dir(out, plan.run_id)
    for name, text in plan.files.items():
        write_atomic(folder / name, text)
    write_atomic(folder / SCENARIO_FILE, plan.scenario_toml)


def save_result(out: Path, result: dict[str, Any]) -> None:
    write_atomic(run_dir(out, result["run_id"]) / RESULT_FILE, json.dumps(result, indent=1))


def load_result(out: Path, run_id: str) -> dict[str, Any] | None:
    """A run's saved result; None when there is none (or it is unreadable: run it again)."""
    path = run_dir(out, run_id) / RESULT_FILE
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or result.get("run_id") != run_id or "status" not in result:
        return None
    return result


def reasons(result: dict[str, Any]) -> list[str]:
    """Why a run did not pass: safety, expectation, incomplete, error, timeout."""
    summary = result.get("summary")
    if summary is None:
        return [result["status"]]
    out = []
    if summary.get("violations"):
        out.append("safety")
    if any(not e.get("passed", True) for e in summary.get("expectations", [])):
        out.append("expectation")
    if not summary.get("completed", True):
        out.append("incomplete")
    if result["status"] != PASSED and not out:
        out.append(result["status"])
    return out


def until_not_reached(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's steps whose `until` their time limit or duration cut short (the summary's
    `until_not_reached`: step, text, until, ended, t_s); none for a run with no summary."""
    return list((result.get("summary") or {}).get("until_not_reached") or [])


def make_row(plan: RunPlan, result: dict[str, Any], out: Path) -> dict[str, Any]:
    """One table row: the combination, the outcome and every scalar of the summary."""
    summary = result.get("summary") or {}
    failed = [e["text"] for e in summary.get("expectations", []) if not e.get("passed", True)]
    unmet = until_not_reached(result)
    row: dict[str, Any] = {
        "run_id": plan.run_id,
        "group": plan.group,
        "axis.scenario": plan.scenario,
        **{f"axis.{name}": label for name, label in plan.axes.items()},
        "status": result["status"],
        "reasons": ",".join(reasons(result)),
        "error": result.get("error"),
        "attempts": result.get("attempts"),
        "retried_after": result.get("retried_after"),
        "run_wall_s": result.get("run_wall_s"),
        "scenario": plan.name,
        "seed": plan.seed,
        "violations_count": len(summary.get("violations", [])),
        "violations_text": "; ".join(summary.get("violations", [])) or None,
        "expectations_failed": len(failed),
        "expectations_failed_text": "; ".join(failed) or None,
        # reported, not failed (the run's summary lists them; aggregate counts them)
        "until_not_reached_count": len(unmet),
        "until_not_reached_text": "; ".join(
            f"step {u['step']} ({u['text']}) at t={u['t_s']:.0f} s: {u['ended']}" for u in unmet
        )
        or None,
        "reproduce": plan.reproduce(run_dir(out, plan.run_id)),
    }
    for key, value in _scalars(summary, ""):
        row.setdefault(key, value)
    return row


def _scalars(data: dict[str, Any], prefix: str) -> Iterable[tuple[str, Any]]:
    """Every number, text, flag and null of a nested summary, under dotted names."""
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _scalars(value, f"{prefix}{key}.")
        elif value is None or isinstance(value, (bool, int, float, str)):
            yield f"{prefix}{key}", value


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """The union of the rows' keys, in first-seen order."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def write_table(rows: list[dict[str, Any]], out: Path, fmt: str | None = None) -> Path:
    """runs.parquet (fmt "parquet"; the default when pyarrow imports) or runs.csv."""
    if fmt is None:
        try:
            import pyarrow  # noqa: F401  # pyright: ignore[reportMissingImports]

            fmt = "parquet"
        except ImportError:
            fmt = "csv"
    names = columns(rows)
    if fmt == "parquet":
        return _write_parquet(rows, names, out / TABLE_FILES[0])
    path = out / TABLE_FILES[1]
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        staged = Path(tmp) / path.name
        with staged.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=names, restval="")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(staged, path)
    return path


def _write_parquet(rows: list[dict[str, Any]], names: list[str], path: Path) -> Path:
    import pyarrow as pa  # pyright: ignore[reportMissingImports]
    import pyarrow.parquet as pq  # pyright: ignore[reportMissingImports]

    arrays = []
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Mixed kinds in one column (a number in one run, text in another): as text.
            arrays.append(pa.array([None if v is None else str(v) for v in values]))
    table = pa.table(arrays, names=names)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        staged = Path(tmp) / path.name
        pq.write_table(table, staged)
        os.replace(staged, path)
    return path


def read_table(path: Path) -> list[dict[str, Any]]:
    """The rows of a table written by write_table (CSV cells come back as text)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # pyright: ignore[reportMissingImports]

        return pq.read_table(path).to_pylist()
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))

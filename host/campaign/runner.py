"""A whole campaign: read and expand the file, run what is not done, write the results.

Order matters for what a failure leaves behind: the file is read, every run's
scenario checked and the executor connected before anything is written (a bad
campaign file or scheduler address writes nothing); each run's folder is written
before it runs and its result as soon as it ends, so an interrupted campaign loses
only the runs in flight, and `resume=True` runs only those without a result.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellmodel.errors import InputError
from cellmodel.files import check_output_dir
from host.campaign.aggregate import aggregate
from host.campaign.baseline import compare, load_baseline
from host.campaign.cluster import DaskExecutor
from host.campaign.execute import PASSED
from host.campaign.expand import RunPlan, expand
from host.campaign.local import LocalExecutor
from host.campaign.progress import CampaignProgress
from host.campaign.results import (
    AGGREGATE_FILE,
    check_output_slots,
    load_result,
    make_row,
    save_result,
    until_not_reached,
    write_atomic,
    write_run_files,
    write_table,
)
from host.campaign.spec import CampaignSpec, load_spec, on_target
from host.micropython.resolve import target_binary

log = logging.getLogger(__name__)


@dataclass
class CampaignOutcome:
    aggregate: dict[str, Any]
    rows: list[dict[str, Any]]
    table: Path
    aggregate_path: Path

    @property
    def exit_code(self) -> int:
        """0 when every run passed, 1 when any did not (the aggregate says which and why)."""
        return int(self.aggregate["exit_code"])


def default_out(spec: CampaignSpec) -> Path:
    return Path("sisnbms-out") / f"campaign-{spec.name}"


def run_campaign(
    spec_path: str | Path,
    *,
    out: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    progress: bool = False,
    target: str | None = None,
    baseline: str | Path | None = None,
) -> CampaignOutcome:
    """Run the campaign file `spec_path` (every run on the virtual board `target` if given:
    spec.on_target) and compare each run with its result in the folder `baseline` if given
    (host.campaign.baseline); InputError (before anything is written) when the file, a
    combination or the options are bad."""
    if workers is not None and workers < 1:
        raise InputError("--workers", str(workers), "must be 1 or more")
    if workers is not None and scheduler:
        raise InputError(
            "--workers", str(workers), "the cluster's workers run a --scheduler's runs"
        )
    spec = load_spec(spec_path)
    if target is not None:
        spec = on_target(spec, target)
        if not scheduler:
            # a target not built yet is bad input now, not a campaign of failed runs (a
            # cluster's workers have their own builds)
            target_binary(target)
    plans = expand(spec)
    out_dir = check_output_dir(
        out if out is not None else default_out(spec), "command line", "--out"
    )
    # read before any run: a bad baseline is bad input, and a baseline that is --out itself
    # is compared as it was before this campaign wrote over it
    before = load_baseline(baseline, plans) if baseline is not None else None
    results = _resumed(out_dir, plans) if resume else {}
    todo = [p for p in plans if p.run_id not in results]
    check_output_slots(out_dir, todo, "command line", "--out")
    if scheduler:
        executor: LocalExecutor | DaskExecutor = DaskExecutor(scheduler)
        where = f"Dask scheduler {scheduler}"
    else:
        k = workers or os.cpu_count() or 1
        executor = LocalExecutor(k)
        where = f"{k} local worker(s)"
    start = time.perf_counter()
    with executor:
        for plan in todo:
            write_run_files(out_dir, plan)
        log.info("campaign %s: %d runs, %d to run on %s, results in %s", spec.name, len(plans),
                 len(todo), where, out_dir)  # fmt: skip
        with CampaignProgress(spec.name, len(plans), done=len(results), enabled=progress) as bar:

            def on_result(result: dict[str, Any]) -> None:
                save_result(out_dir, result)
                log.info("run %s: %s", result["run_id"], result["status"])
                results[result["run_id"]] = result
                bar.advance(result["status"] == PASSED)

            executor.run([p.payload(spec.timeout_s) for p in todo], on_result)
    info = {
        "campaign": spec.name,
        "description": spec.description,
        "spec": spec.source,
        "out": str(out_dir),
        "executor": where,
        "wall_s": round(time.perf_counter() - start, 3),
        "executed": len(todo),
        "resumed": len(plans) - len(todo),
    }
    against = None
    if before is not None:
        base_dir, base_results = before
        rows = {p.run_id: make_row(p, base_results[p.run_id], base_dir) for p in plans
                if p.run_id in base_results}  # fmt: skip
        against = (str(baseline), rows)
    return _write_results(spec, plans, results, out_dir, info, against)


def _resumed(out: Path, plans: list[RunPlan]) -> dict[str, dict[str, Any]]:
    found = {p.run_id: load_result(out, p.run_id) for p in plans}
    return {run_id: r for run_id, r in found.items() if r is not None}


def _write_results(
    spec: CampaignSpec,
    plans: list[RunPlan],
    results: dict[str, dict[str, Any]],
    out: Path,
    info: dict[str, Any],
    against: tuple[str, dict[str, dict[str, Any]]] | None,
) -> CampaignOutcome:
    rows = [make_row(p, results[p.run_id], out) for p in plans]
    table = write_table(rows, out)
    info["table"] = str(table)
    unmet = {run_id: until_not_reached(result) for run_id, result in results.items()}
    comparison = None if against is None else compare(rows, against[1], against[0])
    agg = aggregate(
        rows,
        campaign=info,
        axis_names=spec.axis_names,
        until_not_reached=unmet,
        against_baseline=comparison,
    )
    path = out / AGGREGATE_FILE
    write_atomic(path, json.dumps(agg, indent=2) + "\n")
    return CampaignOutcome(agg, rows, table, path)

"""`sisnbms campaign`: many closed-loop runs, the combinations of a campaign file's axes.

    sisnbms campaign SPEC.toml [--workers K] [--scheduler tcp://HOST:PORT] [--out DIR]
                     [--target T] [--json] [--resume] [--report FILE.md]

Each run is an independent `sisnbms emulate` on its own virtual board, in K local
worker processes or on a Dask cluster. Writes OUT/runs/<id>/ per run (the expanded
scenario and its result), OUT/runs.parquet (or runs.csv) and OUT/campaign.json.
Exit code 0 when every run passed, 1 when any violated safety, failed an
expectation, crashed or timed out (campaign.json says which), 2 on bad input.
"""

from __future__ import annotations

import argparse
from typing import Any

from host.cli.options import CLI, WORKERS
from host.cli.output import emit_json
from host.cli.paths import check_output_file

SHOWN_WORST = 5


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "campaign",
        help="run a campaign: scenarios crossed with seeds, mismatch, sensor errors, ...",
        description=(
            "Run every combination of a campaign file's scenarios and axes, each a closed-loop "
            "run on its own virtual board, on local worker processes or a Dask cluster; write "
            "one row per run and an aggregate, worst runs first."
        ),
    )
    p.add_argument("spec", metavar="SPEC.toml", help="the campaign file")
    p.add_argument(
        "--workers",
        type=int,
        metavar="K",
        help=f"local worker processes, {WORKERS.describe()} (default: the number of cores)",
    )
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run on this Dask cluster instead (needs the extra sisnbms[cluster])",
    )
    p.add_argument("--out", help="output folder (default: sisnbms-out/campaign-NAME)")
    p.add_argument(
        "--target",
        metavar="T",
        help="run every run's firmware on this virtual board: unix-64, unix-32 or "
        "qemu-cortex-m0 (the chip targets from `sisnbms micropython build`; default: each "
        "run's own, unix-64 unless the file says)",
    )
    p.add_argument(
        "--resume", action="store_true", help="keep the runs that already have a result in --out"
    )
    p.add_argument(
        "--report",
        metavar="FILE.md",
        help="also write the runs as a page (Markdown) titled by the campaign: issue 9's "
        "requirements over every run, diagnostics, the steps whose `until` was not reached, "
        "then one table per scenario",
    )
    p.add_argument("--json", action="store_true", help="print the aggregate as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from host.campaign import run_campaign

    if args.workers is not None:
        WORKERS.check(args.workers, CLI, "--workers")
    if args.report is not None:  # before any run: a report that cannot be written is bad input
        check_output_file(args.report, "--report", (".md",), parent_must_exist=True)
    outcome = run_campaign(
        args.spec,
        out=args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        resume=args.resume,
        progress=not args.json,
        target=args.target,
    )
    if args.report:
        write_report(args, outcome)
    if args.json:
        emit_json(outcome.aggregate)
    else:
        print_report(outcome.aggregate)
    return outcome.exit_code


def write_report(args: argparse.Namespace, outcome: Any) -> None:
    """The campaign's page: its runs against issue 9's requirements, with the command that
    regenerates it."""
    from pathlib import Path

    from host.campaign.matrix import render
    from host.campaign.results import write_atomic

    target = f" --target {args.target}" if args.target else ""
    command = (
        f"sisnbms campaign {args.spec}{target} --out {args.out or '...'} --report {args.report}"
    )
    write_atomic(Path(args.report), render(outcome.rows, outcome.aggregate, command))


def print_report(agg: dict[str, Any]) -> None:
    print(
        f"campaign {agg['campaign']}: {agg['runs']} runs ({agg['executed']} run now, "
        f"{agg['resumed']} kept) on {agg['executor']} in {agg['wall_s']:.1f} s"
    )
    print(
        f"  passed {agg['passed']}, failed {agg['failed']}, errors {agg['errors']}, "
        f"timeouts {agg['timeouts']}"
    )
    for reason, ids in agg["not_passed"].items():
        if ids:
            print(f"  {reason}: {len(ids)} run(s)")
    unmet = agg["until_not_reached"]
    if unmet["runs"]:
        print(f"  until not reached (reported, not failed): {unmet['runs']} run(s)")
        for step in unmet["steps"]:
            print(f"    {step['scenario']} step {step['step']} ({step['text']}): "
                  f"{step['runs']} run(s)")  # fmt: skip
    print("  worst runs:")
    for entry in agg["worst"][:SHOWN_WORST]:
        axes = " ".join(f"{k}={v}" for k, v in entry["axes"].items())
        soc = entry.get("soc_max_error_pct")
        figure = f", SOC max error {soc:.2f} %" if isinstance(soc, (int, float)) else ""
        why = ",".join(entry["reasons"]) or "passed"
        print(f"    [{why}] {entry['run_id']} {entry['scenario']} {axes}{figure}")
        details = (entry["violations"], entry["failed_expectations"], entry["error"])
        for detail in (*details, entry["until_not_reached"]):
            if detail:
                print(f"      {detail}")
        print(f"      {entry['reproduce']}")
    print(f"  table: {agg['table']}")
    print(f"  aggregate: {agg['out']}/campaign.json")
    print("PASS" if agg["exit_code"] == 0 else "FAIL")

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
SHOWN_REGRESSIONS = 10


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
    p.add_argument(
        "--baseline",
        metavar="DIR",
        help="compare every run with its result in DIR, an earlier --out of the same "
        "campaign (e.g. before a firmware change; with --resume nothing runs again): exit 1 "
        "only when a run got worse than there",
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
        baseline=args.baseline,
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
    baseline = f" --baseline {args.baseline}" if args.baseline else ""
    command = (
        f"sisnbms campaign {args.spec}{target} --out {args.out or '...'}{baseline} "
        f"--report {args.report}"
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
    if "against_baseline" in agg:
        print_comparison(agg["against_baseline"])
    print(f"  table: {agg['table']}")
    print(f"  aggregate: {agg['out']}/campaign.json")
    print("PASS" if agg["exit_code"] == 0 else "FAIL")


def print_comparison(against: dict[str, Any]) -> None:
    """The runs against the baseline (host.campaign.baseline): regressions first, then each
    figure that moved."""
    from host.campaign.matrix import with_unit

    print(
        f"  against the baseline {against['baseline']}: {against['runs_in_both']} run(s) in "
        f"both, {against['unchanged']} unchanged, {len(against['not_in_baseline'])} not in it"
    )
    regressions = against["regressions"]
    print(f"    worse than the baseline: {len(regressions)} run(s)")
    for entry in regressions[:SHOWN_REGRESSIONS]:
        axes = " ".join(f"{k}={v}" for k, v in entry["axes"].items())
        print(f"      {entry['run_id']} {axes}")
        for what in entry["what"]:
            print(f"        {what}")
        print(f"        {entry['reproduce']}")
    if len(regressions) > SHOWN_REGRESSIONS:
        print(f"      ... {len(regressions) - SHOWN_REGRESSIONS} more in campaign.json")
    print(f"    better and no worse: {len(against['improved'])} run(s)")
    for fig in against["figures"]:
        if not fig["moved"] and fig["failing_now"] == fig["failing_baseline"]:
            continue
        line = (
            f"    {fig['figure']}: failing {fig['failing_baseline']} -> {fig['failing_now']}, "
            f"moved in {fig['moved']} run(s) ({fig['worse']} worse, {fig['better']} better)"
        )
        largest = fig["largest_worse"]
        if largest:
            was, now = (with_unit(largest[k], fig["unit"]) for k in ("baseline", "now"))
            line += f", the most worse {was} -> {now} ({largest['run_id']})"
        print(line)

"""`sisnbms emulate`: run a scenario in closed loop against the real firmware on a virtual board.

    sisnbms emulate [--cell X] [--bms-cell X] [--scenario NAME_OR_FILE] [--out DIR] [--realtime]
                    [--target unix-64|unix-32|qemu-cortex-m0] [--json]
                    [--micropython PATH] [--list]

Writes <out>/<scenario>.bdf.csv (true and firmware values side by side; a Battery
Data Format file, so its current is positive on charge), <scenario>.summary.json and
<scenario>.png, and leaves the virtual board's flash in <out>/flash/ (the firmware, its
configuration and the state it persisted). Everything is checked before anything is
created, and each file is written whole. Exit code 0 when every expectation and safety
check passed, 1 when one failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
from typing import Any

from cellmodel.errors import InputError
from host.cli.options import CLI
from host.cli.output import emit_json
from host.micropython.resolve import RUN_TARGETS, UNIX64_TARGET
from host.scenarios import DEFAULT_SCENARIO, library_names, load_scenario

DEFAULT_OUT = "sisnbms-out"
# The options of a run: a listing (--list) runs nothing, so it refuses them
RUN_OPTIONS = ("--cell", "--bms-cell", "--scenario", "--out", "--realtime", "--target",
               "--micropython")  # fmt: skip


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "emulate",
        help="run a scenario against the firmware on a virtual board",
        description=(
            "Run a scenario in closed loop: the real MicroPython firmware on a virtual board "
            "against the cell model, scored; writes a log, a summary and a plot."
        ),
    )
    p.add_argument(
        "--cell",
        help="the simulated cell: preset name or TOML file (default: the scenario's cell)",
    )
    p.add_argument(
        "--bms-cell",
        metavar="NAME_OR_FILE",
        help="the design the BMS is configured for (default: the scenario's bms_cell, else the "
        "simulated cell's nominal design: its file without [aging])",
    )
    p.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        help=f"built-in scenario name or TOML file (default: {DEFAULT_SCENARIO}; see --list)",
    )
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    p.add_argument(
        "--realtime", action="store_true", help="pace samples to the wall clock (default lockstep)"
    )
    p.add_argument(
        "--target",
        default=UNIX64_TARGET,
        choices=RUN_TARGETS,
        help="the virtual board's MicroPython: unix-64 (default, the PyPI interpreter), "
        "unix-32 (32-bit, single-precision: the chips' object model) or qemu-cortex-m0 "
        "(bare metal on an emulated Cortex-M0); the chip targets need `sisnbms micropython "
        "build` first",
    )
    p.add_argument("--micropython", help="MicroPython unix-port binary for the virtual board")
    p.add_argument("--list", action="store_true", help="list the built-in scenarios and exit")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    # the run's options and their defaults as the parser has them: --list refuses the others
    run_defaults = {option: p.get_default(_dest(option)) for option in RUN_OPTIONS}
    p.set_defaults(func=run, run_defaults=run_defaults)


def print_summary(summary: dict[str, Any]) -> None:
    print(
        f"scenario {summary['scenario']} on {summary['cell']} ({summary['n_cells']} cell(s)), "
        f"BMS configured for {summary['bms_cell']}"
    )
    print(
        f"  {summary['steps']} steps, {summary['sim_time_s'] / 3600:.2f} h simulated in "
        f"{summary['wall_s']:.1f} s ({summary['steps_per_s']} steps/s, {summary['mode']})"
    )
    print(
        f"  SOC error: RMS {summary['soc_rmse_pct']:.2f} %, "
        f"max {summary['soc_max_error_pct']:.2f} %"
        + (
            f", near empty RMS {summary['soc_near_empty_rmse_pct']:.2f} %"
            if summary.get("soc_near_empty_rmse_pct") is not None
            else ""
        )
    )
    if summary.get("capacity_error_pct") is not None:
        print(
            f"  capacity: BMS {summary['capacity_est_Ah']} Ah vs true "
            f"{summary['capacity_true_Ah']} Ah ({summary['capacity_error_pct']:+.2f} %)"
        )
    if summary.get("protection_latency_s"):
        lat = ", ".join(f"{k} {v:g} s" for k, v in summary["protection_latency_s"].items())
        print(f"  protection latency: {lat}")
    link = summary["link"]
    print(
        f"  link: {link['frames_sent']} frames sent, {link['crc_rejects']} CRC rejects, "
        f"{link['timeouts']} timeouts, {link['retries']} retries, {link['lost_samples']} lost"
    )
    print(f"  safety violations: {len(summary['violations'])}")
    if summary.get("anode_potential_lowest_V") is not None:
        lim = summary["limits"]
        print(
            f"  anode margin: utilization at most {summary['anode_util_max_mAh_g']:.0f} of "
            f"{lim['window_top_mAh_g']:.0f} mAh/g, potential at least "
            f"{summary['anode_potential_lowest_V'] * 1000:.1f} mV "
            f"(limit {lim['anode_potential_min_V'] * 1000:.0f} mV)"
        )
    for v in summary["violations"]:
        print(f"    {v}")
    for e in summary["expectations"]:
        mark = "pass" if e["passed"] else "FAIL"
        print(f"  [{mark}] {e['text']} ({e['detail']})")
    for u in summary.get("until_not_reached", []):
        print(
            f"  step {u['step']} ({u['text']}) ended at t={u['t_s']:.0f} s on time, not on "
            f"its condition: {u['ended']}"
        )
    if summary.get("board_stopped"):
        print(f"  board stopped answering: {summary['board_stopped']}")
    elif not summary["completed"]:
        print("  scenario stopped at max_duration_s before its last step")
    for name, path in summary["outputs"].items():
        print(f"  {name}: {path}")
    board = summary.get("board") or {}
    if board.get("flash_dir") or board.get("board_dir"):
        # The virtual board's flash as the run left it: firmware, configuration, saved state.
        print(f"  board flash: {board.get('flash_dir') or board.get('board_dir')}")
    print("PASS" if summary["passed"] else "FAIL")


def _run_options_given(args: argparse.Namespace) -> list[str]:
    """The options of a run given besides --list (those left at their defaults are not)."""
    return [
        option
        for option, default in args.run_defaults.items()
        if getattr(args, _dest(option)) != default
    ]


def _dest(option: str) -> str:
    return option[2:].replace("-", "_")


def run(args: argparse.Namespace) -> int:
    if args.list:
        given = _run_options_given(args)
        if given:  # a listing runs nothing: an option of a run with it is a mistake
            why = f"lists the built-in scenarios and runs none: not with {', '.join(given)}"
            raise InputError(CLI, "--list", why)
        scenarios = [
            {"name": name, "description": load_scenario(name).description}
            for name in library_names()
        ]
        if args.json:
            emit_json({"scenarios": scenarios})
        else:
            for entry in scenarios:
                print(f"{entry['name']:24s} {entry['description']}")
        return 0
    return run_and_report(args, micropython=args.micropython, target=args.target)


def run_and_report(args: argparse.Namespace, **where: Any) -> int:
    """Run args.scenario (on a fresh virtual board, or `port=` in `where`), print, exit code.

    Shared by `emulate` and `hil`: same scoring, outputs and exit codes.
    """
    from host.emulator import run_scenario

    scenario = load_scenario(args.scenario)
    # What is loaded by now (numpy, the emulator) lives until the process ends:
    # no collection need walk it again, nor the interpreter's exit (0.1 s of a 2 s run).
    gc.freeze()
    result = asyncio.run(
        run_scenario(
            scenario,
            out_dir=args.out,
            realtime=args.realtime,
            cell=args.cell,
            bms_cell=args.bms_cell,
            progress=not args.json,
            **where,
        )
    )
    if args.json:
        emit_json(result.summary)
    else:
        print_summary(result.summary)
    return result.exit_code

"""`sisnbms simulate`: run the cell model alone on an experiment or a current profile.

Output files are Battery-Data-Format-style CSV (current positive on
discharge, stated in the column name): one file for a single cell; for a pack
the --out file holds the pack and NAME.cellK.bdf.csv each cell.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cellmodel import DEFAULT_CELL, PackModel, load_cell
from cellmodel.errors import InputError
from cellmodel.experiment import parse_experiment
from cellmodel.profile import load_profile
from cellmodel.simulation import run_experiment, simulate_profile


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="run the cell model alone on experiment steps or a current profile",
        description=(
            "Simulate a cell or pack. Steps use PyBaMM's syntax, e.g. "
            "'Discharge at 1C until 2.75 V', 'Charge at 0.5C until 4.2 V', "
            "'Hold at 4.2 V until C/20', 'Rest for 30 minutes', "
            "'Discharge at 2 A for 10 minutes or until 3.0 V (1 second period)', "
            "'Run PROFILE.csv'. A profile CSV has columns time_s,current_A "
            "(positive on discharge)."
        ),
    )
    p.add_argument(
        "--cell",
        default=DEFAULT_CELL,
        metavar="NAME_OR_FILE",
        help=f"preset name or cell TOML file (default {DEFAULT_CELL})",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--experiment", nargs="+", metavar="STEP", help="one or more step texts")
    src.add_argument("--profile", metavar="FILE.csv", help="current profile time_s,current_A")
    p.add_argument("--out", metavar="FILE.bdf.csv", help="write the results here")
    p.add_argument("--isothermal", action="store_true", help="hold the cells at ambient")
    p.add_argument("--no-hysteresis", action="store_true", help="single-valued OCV (branch mean)")
    p.add_argument(
        "--ambient",
        type=float,
        default=25.0,
        metavar="DEGC",
        help="ambient temperature (default 25)",
    )
    p.add_argument(
        "--initial-soc",
        type=float,
        default=None,
        metavar="SOC",
        help="starting SOC 0..1 (default 1.0, packs spread around it)",
    )
    p.add_argument(
        "--period",
        type=float,
        default=1.0,
        metavar="S",
        help="default step period in seconds (default 1)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.initial_soc is not None and not 0.0 <= args.initial_soc <= 1.0:
        raise InputError("command line", "--initial-soc", f"{args.initial_soc} is not in 0..1")
    if not args.period > 0:
        raise InputError("command line", "--period", "must be positive")
    design = load_cell(args.cell)
    model = PackModel(
        design,
        isothermal=args.isothermal,
        hysteresis=not args.no_hysteresis,
        ambient_degC=args.ambient,
        initial_soc=args.initial_soc,
    )
    if args.profile:
        result = simulate_profile(model, load_profile(args.profile))
    else:
        steps = parse_experiment(args.experiment, source="--experiment")
        result = run_experiment(model, steps, period_s=args.period, base_dir=Path.cwd())
    outputs = [str(p) for p in result.write(args.out)] if args.out else []
    summary = result.summary()
    summary["outputs"] = outputs
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"cell {summary['cell']} x{summary['n_cells']}: {summary['rows']} rows over "
        f"{summary['duration_s']:g} s"
    )
    print(f"  discharged {summary['discharged_Ah']:.4f} Ah, charged {summary['charged_Ah']:.4f} Ah")
    print(
        f"  cell voltage {summary['min_cell_voltage_V']:.4f} .. "
        f"{summary['max_cell_voltage_V']:.4f} V, max temperature "
        f"{summary['max_temp_degC']:.2f} degC"
    )
    print("  final SOC " + ", ".join(f"{s:.4f}" for s in summary["final_soc"]))
    for line in summary["steps"]:
        print(f"  {line}")
    for path in outputs:
        print(f"  wrote {path}")
    return 0

"""`sisnbms simulate`: run the cell model alone on an experiment or a current profile.

Output files follow the Battery Data Format (`.bdf.csv`, or `.bdf.parquet` with
pyarrow): one file for a single cell; for a pack the --out file holds the pack
and NAME.cellK.bdf.csv each cell. BDF's current is positive on charge, the
opposite of sisnbms's: the files carry BDF's sign (cellmodel.bdf).

Exit codes: 0 the run completed (or its experiment termination ended it); 1 a
guard rail of the model stopped it (SOC out of range, abuse voltage, thermal
abuse, current beyond the sanity bound: the message says which); 2 bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from cellmodel import DEFAULT_CELL, PackModel, load_cell
from cellmodel.bdf import PARQUET_SUFFIX, SUFFIX, cell_path, check_output_path, is_parquet
from cellmodel.design import CellDesign
from cellmodel.errors import InputError
from cellmodel.experiment import parse_experiment, parse_termination
from cellmodel.profile import load_profile
from cellmodel.quantities import AMBIENT_DEGC, PERIOD_S, SOC
from cellmodel.simulation import SimulationResult, run_experiment, simulate_profile
from host.cli.output import emit, emit_json
from host.cli.paths import check_output_file

MAX_CYCLES = 100_000

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="run the cell model alone on experiment steps or a current profile",
        description=(
            "Simulate a cell or pack. Steps use PyBaMM's syntax, e.g. "
            "'Discharge at 1C until 2.75 V', 'Charge at 0.5C until 4.2 V', "
            "'Hold at 4.2 V until C/20', 'Rest for 30 minutes', "
            "'Discharge at 2 A for 10 minutes or until 3.0 V (1 second period)', "
            "'Discharge at 1 Ohm until 3 V', 'Discharge at 1C for 1 hour at 25oC', "
            "'Run PROFILE.csv', 'Run US06 (A)' (US06.csv in the working folder). "
            "A profile CSV has the columns time_s,current_A (positive on discharge), "
            "PyBaMM's Time [s],Current [A] or BDF's Test Time / s,Current / A "
            "(positive on charge). Exit 1 when the model's guard rails stop the run."
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
    src.add_argument("--profile", metavar="FILE.csv", help="current profile (see above)")
    p.add_argument(
        "--cycles",
        type=int,
        default=None,
        metavar="N",
        help="run the --experiment steps as one cycle, N times (PyBaMM's [(...)] * N)",
    )
    p.add_argument(
        "--termination",
        nargs="+",
        metavar="COND",
        help="end the experiment after a cycle: '80%% capacity', '2.0 Ah capacity', "
        "'2.5 V', '2 days'",
    )
    p.add_argument(
        "--out", metavar="FILE.bdf.csv", help="write the results here (.bdf.parquet: Parquet)"
    )
    p.add_argument("--isothermal", action="store_true", help="hold the cells at ambient")
    p.add_argument("--no-hysteresis", action="store_true", help="single-valued OCV (branch mean)")
    p.add_argument(
        "--ambient",
        type=float,
        default=25.0,
        metavar="DEGC",
        help=f"ambient temperature, {AMBIENT_DEGC.describe()} (default 25)",
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
        help=f"sample period, {PERIOD_S.describe()} (default 1); profiles are sampled at "
        "their rows and at this period within them",
    )
    p.add_argument(
        "--compare-pybamm",
        action="store_true",
        help="also run PyBaMM's Thevenin model (isothermal, hysteresis off) on the steps and "
        "report the voltage difference (needs sisnbms[pybamm])",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)


def _checked(args: argparse.Namespace) -> Path | None:
    """Validate every option before anything runs or is written; the output path."""
    cli = "command line"
    if args.initial_soc is not None:
        SOC.check(args.initial_soc, cli, "--initial-soc")
    PERIOD_S.check(args.period, cli, "--period")
    AMBIENT_DEGC.check(args.ambient, cli, "--ambient")
    if args.cycles is not None:
        if args.profile:
            raise InputError(cli, "--cycles", "applies to --experiment steps only")
        if not 1 <= args.cycles <= MAX_CYCLES:
            raise InputError(cli, "--cycles", f"{args.cycles} is not in 1..{MAX_CYCLES:,}")
    if args.termination and args.profile:
        raise InputError(cli, "--termination", "applies to --experiment steps only")
    if args.termination:
        parse_termination(args.termination, source=cli, field="--termination")
    if args.compare_pybamm and args.profile:
        raise InputError(cli, "--compare-pybamm", "applies to --experiment steps only")
    if args.out is None:
        return None
    out = check_output_file(args.out, "--out", (SUFFIX, PARQUET_SUFFIX))
    return check_output_path(out, cli, "--out")  # Parquet: pyarrow installed


def _output_paths(out: Path, n_cells: int) -> list[Path]:
    """The files a run writes: out, and for a pack NAME.cellK.bdf.csv per cell."""
    return [out, *(cell_path(out, i) for i in range(n_cells if n_cells > 1 else 0))]


def _check_cell_outputs(out: Path, n_cells: int) -> None:
    """A pack's per-cell files, checked like --out before the run."""
    for path in _output_paths(out, n_cells)[1:]:
        check_output_file(path, "--out", (SUFFIX, PARQUET_SUFFIX))


def _write(result: SimulationResult, out: Path, start_unix_s: float) -> list[Path]:
    """Write every output file, or none: the run's files are written under hidden names
    beside --out and renamed only once all are whole."""
    suffix = PARQUET_SUFFIX if is_parquet(out) else SUFFIX
    stem = out.name[: -len(suffix)]
    staged_out = out.with_name(f".{stem}.{secrets.token_hex(4)}.tmp{suffix}")
    staged = _output_paths(staged_out, result.n_cells)
    finals = _output_paths(out, result.n_cells)
    try:
        result.write(staged_out, start_unix_s=start_unix_s)
        for src, dst in zip(staged, finals, strict=True):
            os.replace(src, dst)
    except BaseException as exc:
        for path in staged:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if isinstance(exc, OSError):
            raise InputError(
                "command line", "--out", f"cannot write {out}: {exc.strerror or exc}"
            ) from None
        raise
    return finals


def _simulate(args: argparse.Namespace, design: CellDesign) -> SimulationResult:
    model = PackModel(
        design,
        isothermal=args.isothermal,
        hysteresis=not args.no_hysteresis,
        ambient_degC=args.ambient,
        initial_soc=args.initial_soc,
    )
    if args.profile:
        return simulate_profile(model, load_profile(args.profile), period_s=args.period)
    entries: Any = args.experiment
    if args.cycles is not None:
        entries = [tuple(args.experiment)] * args.cycles
    exp = parse_experiment(entries, termination=args.termination, source="--experiment")
    return run_experiment(model, exp, period_s=args.period, base_dir=Path.cwd())


def _compare(args: argparse.Namespace) -> dict[str, Any]:
    from cellmodel.pybamm_compare import compare_with_pybamm

    exp = parse_experiment(args.experiment, source="--experiment")
    comparison = compare_with_pybamm(
        load_cell(args.cell, "--cell", args.cell),
        exp,
        initial_soc=1.0 if args.initial_soc is None else args.initial_soc,
        ambient_degC=args.ambient,
        period_s=args.period,
    )
    return comparison.as_dict()


def run(args: argparse.Namespace) -> int:
    out = _checked(args)
    t0 = time.monotonic()
    start_unix_s = time.time()
    design = load_cell(args.cell, "--cell", args.cell)
    log.info("cell %s (%s), %d in series", design.name, design.source, design.n_series)
    if out is not None:
        _check_cell_outputs(out, design.n_series)
    result = _simulate(args, design)
    outputs = [str(p) for p in _write(result, out, start_unix_s)] if out else []
    log.info("%d rows simulated; wrote %s", len(result.t_s), outputs or "nothing")
    summary = result.summary()
    summary["cell_source"] = design.source  # the cell file used (path), beside its name
    summary["outputs"] = outputs
    if args.compare_pybamm:
        summary["pybamm"] = _compare(args)
    summary["wall_s"] = round(time.monotonic() - t0, 3)
    if result.event is not None:
        print(f"sisnbms simulate: stopped: {result.event.message}", file=sys.stderr)
    if args.json:
        emit_json(summary)
    else:
        emit(_text(summary))
    return 1 if result.event is not None else 0


def _text(summary: dict[str, Any]) -> str:
    lines = [
        f"cell {summary['cell']} x{summary['n_cells']}: {summary['rows']} rows over "
        f"{summary['duration_s']:g} s",
        f"  discharged {summary['discharged_Ah']:.4f} Ah, charged {summary['charged_Ah']:.4f} Ah",
        f"  cell voltage {summary['min_cell_voltage_V']:.4f} .. "
        f"{summary['max_cell_voltage_V']:.4f} V, max temperature "
        f"{summary['max_temp_degC']:.2f} degC",
        "  final SOC " + ", ".join(f"{s:.4f}" for s in summary["final_soc"]),
    ]
    lines += [f"  {line}" for line in summary["steps"]]
    if summary["event"] is not None:
        lines.append(f"  STOPPED by the model's guard rails: {summary['event']['message']}")
    lines += [f"  wrote {path}" for path in summary["outputs"]]
    if "pybamm" in summary:
        pb = summary["pybamm"]
        lines.append(f"  {pb['model']} (PyBaMM {pb['pybamm_version']}): terminal voltage vs ours")
        lines += [
            f"    {s['text']}: max |dV| {s['max_dv_mV']:.3f} mV, RMS {s['rms_dv_mV']:.3f} mV, "
            f"{s['end_s']:g} s here, {s['pybamm_end_s']:.6g} s in PyBaMM"
            for s in pb["steps"]
        ]
    return "\n".join(lines)

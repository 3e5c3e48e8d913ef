"""`sisnbms hil`: the emulator loop against a flashed board at a serial port.

    sisnbms hil --port PORT [--scenario NAME_OR_FILE] [--cell X] [--out DIR] [--realtime] [--json]

The board (a real Pico or ESP32 flashed with `sisnbms flash`, or a virtual
board from `sisnbms board --virtual`) must run the firmware in link mode: it
takes its sensor readings from the host's sample frames and drives its real
switch pins. Same scoring, outputs and exit codes as `sisnbms emulate`
(0 pass, 1 expectation or safety check failed, 2 bad input). Steps that need
power control ("Cut board power") are rejected for a port.

Outputs go to --out, by default sisnbms-out/hil/ under the working folder: the same
output root as `emulate` (sisnbms-out/) and `campaign` (sisnbms-out/campaign-NAME/).
The summary lists every file written. A board left at its REPL (or running code typed
there) is brought back to the firmware first.
"""

from __future__ import annotations

import argparse
from typing import Any

from host.cli.emulate import DEFAULT_OUT as OUT_ROOT
from host.cli.emulate import run_and_report
from host.scenarios import DEFAULT_SCENARIO

DEFAULT_OUT = f"{OUT_ROOT}/hil"


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "hil",
        help="run a scenario against a flashed board at a serial port",
        description=(
            "Run a scenario against a flashed board at a serial port (real or virtual), with the "
            "same scoring, outputs and exit codes as emulate."
        ),
    )
    p.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyACM0")
    p.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        help=f"built-in scenario name or TOML file (default: {DEFAULT_SCENARIO})",
    )
    p.add_argument(
        "--cell",
        help="the simulated cell: preset name or TOML file (default: the scenario's cell)",
    )
    p.add_argument(
        "--bms-cell",
        metavar="NAME_OR_FILE",
        help="the design the board was flashed for (default: the scenario's bms_cell, else the "
        "simulated cell's nominal design)",
    )
    p.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help=f"output folder (default: {DEFAULT_OUT}, under the output root emulate and "
        "campaign use)",
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        help="pace samples to the wall clock (default lockstep: as fast as the board answers)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_and_report(args, port=args.port)

"""The bad-input table (issue 10, items 10-12): every command, every input kind, every way a
file, option or port can be wrong, through the real CLI entry point.

Each case must end with exit 2, one message on stderr naming the file or option (and the
field) and the reason, no traceback, and under --json one JSON object on stdout with the
same error; and nothing may have been created: no output folder, no provisioned flash.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cellmodel.files import PROFILE_CAP, TOML_CAP
from host.cli.main import main

BAD_UTF8 = b'name = "caf\xe9"\n'  # Latin-1, not UTF-8
OK_SCENARIO = 'steps = ["Rest for 10 seconds"]\n'


@dataclass(frozen=True)
class Case:
    argv: Callable[[Path], list[str]]
    names: tuple[str, ...]  # what the message must name (file, option, field, reason)
    json: dict[str, str] | None = None  # keys the --json error must have with these values
    absent: tuple[str, ...] = ()  # what the message must not say


def cli(option: str, reason: str | None = None) -> dict[str, str]:
    """The JSON error of an option's value: source "command line", field the option."""
    return {"source": "command line", "field": option, **({"reason": reason} if reason else {})}


def _files(root: Path) -> None:
    """The inputs the cases refer to, each kind broken in each way."""
    for stem in ("cell", "scenario", "campaign", "board"):
        (root / f"{stem}-utf8.toml").write_bytes(BAD_UTF8)
        (root / f"{stem}-syntax.toml").write_text("steps = [\n")
        (root / f"{stem}-empty.toml").write_bytes(b"")
        (root / f"{stem}-dir.toml").mkdir()
    (root / "profile-utf8.csv").write_bytes(b"time_s,current_A\n0,1\n10,\xff\n")
    (root / "profile-empty.csv").write_bytes(b"")
    (root / "profile-2-currents.csv").write_text("time_s,current_A,Current [A]\n0,1,5\n9,1,5\n")
    (root / "profile-dir.csv").mkdir()
    (root / "extends-utf8.toml").write_text('extends = "cell-utf8.toml"\n')
    (root / "run-utf8.toml").write_text('steps = ["Run profile-utf8.csv"]\n')
    (root / "run-dir.toml").write_text('steps = ["Run profile-dir.csv"]\n')
    (root / "cell-in-scenario.toml").write_text(f'cell = "cell-utf8.toml"\n{OK_SCENARIO}')
    (root / "campaign-scenario-utf8.toml").write_text('scenarios = ["scenario-utf8.toml"]\n')
    (root / "campaign-scenario-syntax.toml").write_text('scenarios = ["scenario-syntax.toml"]\n')
    (root / "offset.toml").write_text(
        'steps = ["Rest for 1 minute", "Inject current offset 3000000000 mA"]\n'
    )
    (root / "ok.toml").write_text(OK_SCENARIO)
    (root / "seed-2-64.toml").write_text(f"seed = {2**64}\n{OK_SCENARIO}")
    (root / "campaign-seed.toml").write_text(
        f'scenarios = ["ok.toml"]\n[axes]\nseed = [1, {2**64}]\n'
    )
    # Designs the firmware refuses, steps the virtual board cannot take, absurd cell values.
    (root / "n17.toml").write_text('extends = "sisn-lco-2ah"\n[cell]\nn_series = 17\n')
    (root / "run-n17.toml").write_text(f'cell = "n17.toml"\n{OK_SCENARIO}')
    # A misspelt key in each kind of file: refused with the key it is nearest to.
    (root / "typo-cell.toml").write_text('extends = "sisn-lco-2ah"\n[circut]\nr0_ohm = 0.02\n')
    (root / "typo-scenario.toml").write_text(f"sead = 3\n{OK_SCENARIO}")
    (root / "typo-campaign.toml").write_text('scenarios = ["ok.toml"]\ntimout_s = 60\n')
    pico = (Path(__file__).parents[2] / "boards" / "pico.toml").read_text()
    (root / "typo.toml").write_text(
        pico.replace('name = "pico"', 'name = "typo"').replace("vref_mV =", "vref_mv =")
    )
    # A table the cell model takes and the firmware does not (at most 32 points).
    soc = ", ".join(f"{i / 39:.6f}" for i in range(40))
    volts = ", ".join(f"{3.0 + i * 0.03:.2f}" for i in range(40))
    (root / "ocv-40.toml").write_text(
        f'extends = "sisn-lco-2ah"\n[ocv]\nsoc = [{soc}]\ncharge_V = [{volts}]\n'
        f"discharge_V = [{volts}]\n"
    )
    (root / "run-ocv-40.toml").write_text(f'cell = "ocv-40.toml"\n{OK_SCENARIO}')
    (root / "thermistor-2.toml").write_text(
        'steps = ["Rest for 2 seconds", "Open thermistor 2", "Rest for 2 seconds"]\n'
    )
    for field in ("circuit]\ntau1_s", "cell]\nfacing_area_cm2", "limits]\nmax_charge_C"):
        stem = field.split("\n")[1]
        (root / f"tiny-{stem}.toml").write_text(f'extends = "sisn-lco-2ah"\n[{field} = 1e-300\n')
        (root / f"r-{stem}.toml").write_text(f'cell = "tiny-{stem}.toml"\n{OK_SCENARIO}')
    (root / "campaign-ok.toml").write_text('scenarios = ["ok.toml"]\n')
    # Campaigns whose runs fail only as runs: each must be refused before any starts.
    campaigns = {
        "cell-file": '[axes]\ncell = ["sisn-lco-2ah", "tiny-tau1_s.toml"]\n',
        "bms-cell": '[variants.bms]\nsame = {}\nfour = { bms_cell = "sisn-lco-2ah-4s" }\n',
        "mismatch": "[axes]\nmismatch.capacity_factor = [0.9, 5.0]\n",
        "typo": "[variants.start]\nexact = {}\ntypo = { initial = { firmware_sco = 0.9 } }\n",
        # The second variants table's field, and a clash between an axis and a variant.
        "second-variants": "[variants.a]\nx = {}\n[variants.b]\ny = { seed = [5] }\n",
        "axis-and-variant": "[axes]\nseed = [1, 2]\n[variants.a]\nx = { seed = 3 }\n",
    }
    # Cell names that are neither a preset nor a file next to the file that wrote them.
    campaigns["cell-name"] = '[axes]\ncell = ["sisn-lco-2ah", "nosuch"]\n'
    campaigns["cell-home"] = '[axes]\ncell = ["~nosuchuser/x.toml"]\n'
    (root / "cell-nosuch.toml").write_text(f'cell = "nosuch"\n{OK_SCENARIO}')
    (root / "campaign-scenario-cell.toml").write_text('scenarios = ["cell-nosuch.toml"]\n')
    (root / "extends-nosuch.toml").write_text('extends = "nosuch"\n')
    (root / "scenario-extends-nosuch.toml").write_text(
        f'cell = "extends-nosuch.toml"\n{OK_SCENARIO}'
    )
    for stem, axes in campaigns.items():
        (root / f"campaign-{stem}.toml").write_text(f'scenarios = ["ok.toml"]\n{axes}')
    (root / "pack-4s.toml").write_text(
        'cell = "sisn-lco-2ah-4s"\n'
        'steps = ["Rest for 2 seconds", "Freeze cell 3 voltage", "Rest for 2 seconds"]\n'
    )
    (root / "campaign-pack.toml").write_text(
        'scenarios = ["pack-4s.toml"]\n[axes]\ncell = ["sisn-lco-2ah-4s", "sisn-lco-2ah"]\n'
    )
    (root / "campaign-thermistor.toml").write_text(
        'scenarios = ["ok.toml", "thermistor-2.toml"]\n[axes]\nseed = [1, 2]\n'
    )
    # Step texts and cycle tables read as something else, or not at all.
    scenarios = {
        "stick-amps": '["Rest for 2 seconds", "Stick current sensor at 5 A"]',
        "stik": '["Rest for 2 seconds", "Stik current sensor"]',
        "cycle-key": '[{ steps = ["Rest for 2 seconds"], repeat = 2, repaet = 3 }]',
        "cycle-empty": "[{ steps = [], repeat = 2 }]",
        "cycle-once": '[{ steps = ["Rest for 2 seconds"] }]',
    }
    for stem, steps in scenarios.items():
        (root / f"{stem}.toml").write_text(f"steps = {steps}\n")
    (root / "steps-in-initial.toml").write_text(f"[initial]\nsoc = 0.5\n{OK_SCENARIO}")
    (root / "extends-empty.toml").write_text('extends = ""\n[cell]\nname = "x"\n')
    (root / "a-file").write_text("not a folder\n")
    (root / "dangling").symlink_to(root / "nowhere" / "out")  # a link to nothing
    # Inputs that are not regular files, outputs that cannot be replaced.
    (root / "run-dev.toml").write_text('steps = ["Run /dev/null"]\n')
    (root / "campaign-scenario-dev.toml").write_text('scenarios = ["/dev/null"]\n')
    (root / "campaign-scenario-dir.toml").write_text('scenarios = ["scenario-dir.toml"]\n')
    os.mkfifo(root / "out-fifo.bdf.csv")
    os.mkfifo(root / "report-fifo.md")
    (root / "report-dir.md").mkdir()
    (root / "pack.cell2.bdf.csv").mkdir()  # a pack's per-cell output is a folder
    (root / "not-executable").write_text("#!/bin/sh\n")
    # A FIFO where a cell, board or scenario file belongs; references to one.
    for stem in ("cell", "scenario", "board"):
        os.mkfifo(root / f"{stem}-fifo.toml")
    (root / "extends-fifo.toml").write_text('extends = "cell-fifo.toml"\n')
    (root / "scenario-cell-fifo.toml").write_text(f'cell = "cell-fifo.toml"\n{OK_SCENARIO}')
    (root / "run-missing.toml").write_text('steps = ["Rest for 1 s", "Run no-such.csv"]\n')
    (root / "run-long.toml").write_text('steps = ["Rest for 30 days"]\n')
    # One byte over the size cap of their kind (sparse: nothing is written to disk).
    for name, cap in (
        ("cell-big.toml", TOML_CAP),
        ("scenario-big.toml", TOML_CAP),
        ("campaign-big.toml", TOML_CAP),
        ("board-big.toml", TOML_CAP),
        ("profile-big.csv", PROFILE_CAP),
    ):
        with (root / name).open("wb") as f:
            f.truncate(cap.max_bytes + 1)
    (root / "run-big.toml").write_text('steps = ["Run profile-big.csv"]\n')


def out(root: Path) -> str:
    return str(root / "out")


def _report(path: str, reason: str) -> Case:
    """campaign --report at `path` (under the cases' folder), refused for `reason`."""
    argv = ["campaign", "campaign-ok.toml", "--out", "out", "--report", path]
    return Case(
        lambda r: [str(r / a) if a in (argv[1], "out", path) else a for a in argv],
        ("--report", path.split("/")[0], reason),
        cli("--report"),
    )


TABLE: dict[str, Case] = {
    # -- invalid UTF-8 in every kind of input file ---------------------------------------
    "cell TOML not UTF-8": Case(
        lambda r: ["design", "--cell", str(r / "cell-utf8.toml")],
        ("cell-utf8.toml", "file", "not UTF-8", "0xe9"),
    ),
    "extended cell TOML not UTF-8": Case(
        lambda r: [
            "simulate",
            "--cell",
            str(r / "extends-utf8.toml"),
            "--experiment",
            "Rest for 1 minute",
        ],
        ("cell-utf8.toml", "not UTF-8"),
    ),  # fmt: skip
    "scenario TOML not UTF-8": Case(
        lambda r: ["emulate", "--scenario", str(r / "scenario-utf8.toml"), "--out", out(r)],
        ("scenario-utf8.toml", "not UTF-8"),
    ),
    "scenario's cell not UTF-8": Case(
        lambda r: ["emulate", "--scenario", str(r / "cell-in-scenario.toml"), "--out", out(r)],
        ("cell-utf8.toml", "not UTF-8"),
    ),
    "scenario's profile not UTF-8": Case(
        lambda r: ["emulate", "--scenario", str(r / "run-utf8.toml"), "--out", out(r)],
        ("run-utf8.toml", "steps[0]", "profile-utf8.csv", "not UTF-8", "0xff"),
    ),
    "campaign TOML not UTF-8": Case(
        lambda r: ["campaign", str(r / "campaign-utf8.toml"), "--out", out(r)],
        ("campaign-utf8.toml", "not UTF-8"),
    ),
    "campaign's scenario not UTF-8": Case(
        lambda r: ["campaign", str(r / "campaign-scenario-utf8.toml"), "--out", out(r)],
        ("campaign-scenario-utf8.toml", "scenario-utf8.toml", "not UTF-8"),
    ),
    "profile CSV not UTF-8": Case(
        lambda r: ["simulate", "--profile", str(r / "profile-utf8.csv")],
        ("profile-utf8.csv", "file", "not UTF-8", "0xff"),
    ),
    "board TOML not UTF-8 (flash)": Case(
        lambda r: ["flash", "--board", str(r / "board-utf8.toml"), "--port", "/dev/null"],
        ("board-utf8.toml", "not UTF-8"),
    ),
    "board TOML not UTF-8 (board)": Case(
        lambda r: ["board", "--virtual", "--board", str(r / "board-utf8.toml"), "--fs", out(r)],
        ("board-utf8.toml", "not UTF-8"),
    ),
    # -- not TOML: the same words for every kind ------------------------------------------
    **{
        f"{stem} not TOML": Case(
            lambda r, argv=argv: [a.replace("{r}", str(r)) for a in argv],
            (f"{stem}-syntax.toml", "toml", "not valid TOML", "at end of document"),
            {"field": "toml"},
        )
        for stem, argv in (
            ("cell", ["design", "--cell", "{r}/cell-syntax.toml"]),
            ("scenario", ["emulate", "--scenario", "{r}/scenario-syntax.toml", "--out", "{r}/out"]),
            ("campaign", ["campaign", "{r}/campaign-syntax.toml", "--out", "{r}/out"]),
            ("board", ["flash", "--board", "{r}/board-syntax.toml", "--port", "/dev/null"]),
        )
    },
    "campaign's scenario not TOML": Case(
        lambda r: ["campaign", str(r / "campaign-scenario-syntax.toml"), "--out", out(r)],
        ("campaign-scenario-syntax.toml", "scenario scenario-syntax.toml", "not valid TOML"),
        {"field": "scenario scenario-syntax.toml"},
    ),
    # -- empty files ---------------------------------------------------------------------
    "empty cell TOML": Case(
        lambda r: ["design", "--cell", str(r / "cell-empty.toml")], ("cell-empty.toml", "cell")
    ),
    "empty scenario TOML": Case(
        lambda r: ["emulate", "--scenario", str(r / "scenario-empty.toml"), "--out", out(r)],
        ("scenario-empty.toml", "steps"),
    ),
    "empty campaign TOML": Case(
        lambda r: ["campaign", str(r / "campaign-empty.toml"), "--out", out(r)],
        ("campaign-empty.toml", "scenarios"),
    ),
    "profile CSV naming the current twice": Case(
        lambda r: ["simulate", "--profile", str(r / "profile-2-currents.csv")],
        ("profile-2-currents.csv", "line 1", "current column 2 times"),
        {"field": "line 1"},
    ),
    "empty profile CSV": Case(
        lambda r: ["simulate", "--profile", str(r / "profile-empty.csv")],
        ("profile-empty.csv", "empty profile"),
    ),
    # -- a misspelt key: the nearest known one, in every kind of file ----------------------
    "cell TOML: a misspelt section": Case(
        lambda r: ["design", "--cell", str(r / "typo-cell.toml")],
        ("typo-cell.toml", "circut", "unknown section or key", "did you mean 'circuit'?"),
        {"field": "circut"},
    ),
    "scenario TOML: a misspelt key": Case(
        lambda r: ["emulate", "--scenario", str(r / "typo-scenario.toml"), "--out", out(r)],
        ("typo-scenario.toml", "sead", "unknown key", "did you mean 'seed'?"),
        {"field": "sead"},
    ),
    "campaign TOML: a misspelt key": Case(
        lambda r: ["campaign", str(r / "typo-campaign.toml"), "--out", out(r)],
        ("typo-campaign.toml", "timout_s", "unknown key", "did you mean 'timeout_s'?"),
        {"field": "timout_s"},
    ),
    "board TOML: a misspelt key": Case(
        lambda r: ["flash", "--board", str(r / "typo.toml"), "--port", "/dev/null"],
        ("typo.toml", "adc.vref_mv", "unknown key", "did you mean 'vref_mV'?"),
        {"field": "adc.vref_mv"},
    ),
    "empty board TOML": Case(
        lambda r: ["flash", "--board", str(r / "board-empty.toml"), "--port", "/dev/null"],
        ("board-empty.toml", "name"),
    ),
    # -- a folder where a file belongs -----------------------------------------------------
    "cell is a folder": Case(
        lambda r: ["design", "--cell", str(r / "cell-dir.toml")],
        ("--cell", "cell-dir.toml", "not a regular file (a directory)"),
        absent=("no such file",),
    ),
    "scenario is a folder": Case(
        lambda r: ["emulate", "--scenario", str(r / "scenario-dir.toml"), "--out", out(r)],
        ("--scenario", "scenario-dir.toml", "not a regular file (a directory)"),
    ),
    "campaign is a folder": Case(
        lambda r: ["campaign", str(r / "campaign-dir.toml"), "--out", out(r)],
        ("campaign-dir.toml", "not a regular file (a directory)"),
    ),
    "profile is a folder": Case(
        lambda r: ["simulate", "--profile", str(r / "profile-dir.csv")],
        ("profile-dir.csv", "not a regular file (a directory)"),
    ),
    "scenario's profile is a folder": Case(
        lambda r: ["emulate", "--scenario", str(r / "run-dir.toml"), "--out", out(r)],
        ("run-dir.toml", "steps[0]", "profile-dir.csv", "not a regular file (a directory)"),
    ),
    "experiment's profile is a folder": Case(
        lambda r: ["simulate", "--experiment", f"Run {r / 'profile-dir.csv'}"],
        ("--experiment", "step 1", "profile-dir.csv", "not a regular file (a directory)"),
        {"source": "--experiment", "field": "step 1"},
    ),
    "--bms-cell is a folder": Case(
        lambda r: ["board", "--virtual", "--bms-cell", str(r / "cell-dir.toml"), "--fs", out(r)],
        ("--bms-cell", "cell-dir.toml", "not a regular file (a directory)"),
    ),
    "campaign's scenario is a folder": Case(
        lambda r: ["campaign", str(r / "campaign-scenario-dir.toml"), "--out", out(r)],
        ("campaign-scenario-dir.toml", "scenarios[0]", "not a regular file (a directory)"),
    ),
    "board is a folder (board)": Case(
        lambda r: ["board", "--virtual", "--board", str(r / "board-dir.toml"), "--fs", out(r)],
        ("--board", "board-dir.toml", "not a regular file (a directory)"),
    ),
    "board is a folder": Case(
        lambda r: ["flash", "--board", str(r / "board-dir.toml"), "--port", "/dev/null"],
        ("--board", "board-dir.toml", "not a regular file (a directory)"),
    ),
    # -- a cell option that names nothing: the option, the value given, the reason -----------
    **{
        f"{argv[0]} {argv[-1]} names nothing": Case(
            lambda r, argv=argv: [
                *argv,
                "no-such",
                *({"emulate": ["--out", out(r)], "board": ["--fs", out(r)]}.get(argv[0], [])),
            ],
            (f"sisnbms {argv[0]}: error: {argv[-1]}: no-such: no such preset or cell file",),
            {"source": argv[-1], "field": "no-such"},
        )
        for argv in (
            ["design", "--cell"],
            ["simulate", "--experiment", "Rest for 1 s", "--cell"],
            ["emulate", "--cell"],
            ["emulate", "--bms-cell"],
            ["board", "--virtual", "--bms-cell"],
            ["flash", "--board", "virtual", "--port", "/dev/null", "--bms-cell"],
        )
    },
    "--bms-cell of another pack": Case(
        lambda r: ["emulate", "--bms-cell", "sisn-lco-2ah-4s", "--out", out(r)],
        ("--bms-cell: sisn-lco-2ah-4s: has 4 cell(s) in series, the simulated pack 1",),
        {"source": "--bms-cell", "field": "sisn-lco-2ah-4s"},
    ),
    # -- a device or FIFO where a file belongs (reading /dev/zero never ends) ---------------
    "profile is a device": Case(
        lambda r: ["simulate", "--profile", "/dev/null"], ("/dev/null", "not a regular file")
    ),
    "experiment's profile is a device": Case(
        lambda r: ["simulate", "--experiment", "Run /dev/null"],
        ("--experiment", "step 1", "/dev/null", "not a regular file"),
        {"source": "--experiment", "field": "step 1"},
    ),
    "scenario's profile is a device": Case(
        lambda r: ["emulate", "--scenario", str(r / "run-dev.toml"), "--out", out(r)],
        ("run-dev.toml", "steps[0]", "/dev/null", "not a regular file"),
        {"field": "steps[0]"},
        absent=("experiment: step",),
    ),
    "cell is a FIFO": Case(
        lambda r: ["design", "--cell", str(r / "cell-fifo.toml")],
        ("--cell", "cell-fifo.toml", "not a regular file (a FIFO)"),
        absent=("no such file",),
    ),
    "cell is a device": Case(
        lambda r: ["design", "--cell", "/dev/null"],
        ("--cell", "/dev/null", "not a regular file (a character device)"),
    ),
    "--bms-cell is a FIFO (emulate)": Case(
        lambda r: [
            "emulate",
            "--scenario",
            str(r / "ok.toml"),
            "--bms-cell",
            str(r / "cell-fifo.toml"),
            "--out",
            out(r),
        ],
        ("--bms-cell", "cell-fifo.toml", "not a regular file (a FIFO)"),
    ),  # fmt: skip
    "--bms-cell is a FIFO (board)": Case(
        lambda r: ["board", "--virtual", "--bms-cell", str(r / "cell-fifo.toml"), "--fs", out(r)],
        ("--bms-cell", "cell-fifo.toml", "not a regular file (a FIFO)"),
    ),
    "extended cell is a FIFO": Case(
        lambda r: ["design", "--cell", str(r / "extends-fifo.toml")],
        ("extends-fifo.toml", "extends", "cell-fifo.toml", "not a regular file (a FIFO)"),
    ),
    "scenario's cell is a FIFO": Case(
        lambda r: ["emulate", "--scenario", str(r / "scenario-cell-fifo.toml"), "--out", out(r)],
        ("scenario-cell-fifo.toml", "cell", "not a regular file (a FIFO)"),
    ),
    "scenario is a FIFO": Case(
        lambda r: ["emulate", "--scenario", str(r / "scenario-fifo.toml"), "--out", out(r)],
        ("--scenario", "scenario-fifo.toml", "not a regular file (a FIFO)"),
    ),
    "board is a FIFO": Case(
        lambda r: ["flash", "--board", str(r / "board-fifo.toml"), "--port", "/dev/null"],
        ("--board", "board-fifo.toml", "not a regular file (a FIFO)"),
    ),
    # -- errors in --experiment text name --experiment, those in a scenario its file --------
    "experiment's profile missing": Case(
        lambda r: ["simulate", "--experiment", "Rest for 1 s", "Run no-such.csv"],
        ("--experiment", "step 2", "no profile file", "no-such.csv"),
        {"source": "--experiment", "field": "step 2"},
    ),
    "experiment's step over the period limit": Case(
        lambda r: ["simulate", "--experiment", "Rest for 30 days"],
        ("--experiment", "step 1", "2,000,000 periods"),
        {"source": "--experiment", "field": "step 1"},
    ),
    "experiment's steps over the row limit": Case(
        lambda r: ["simulate", "--period", "2", "--experiment", *["Rest for 40 days"] * 3],
        ("--experiment", "steps", "4,000,000"),
        {"source": "--experiment", "field": "steps"},
    ),
    "scenario's profile missing": Case(
        lambda r: ["emulate", "--scenario", str(r / "run-missing.toml"), "--out", out(r)],
        ("run-missing.toml", "steps[1]", "no profile file", "no-such.csv"),
        {"field": "steps[1]"},
        absent=("experiment: step",),
    ),
    "scenario's step over the period limit": Case(
        lambda r: ["emulate", "--scenario", str(r / "run-long.toml"), "--out", out(r)],
        ("run-long.toml", "steps[0]", "'Rest for 30 days'", "2,000,000 periods"),
        {"field": "steps[0]"},
        absent=("experiment: step",),
    ),
    # -- files over the size cap of their kind: refused from their size, unread -------------
    "cell TOML over its size cap": Case(
        lambda r: ["design", "--cell", str(r / "cell-big.toml")],
        ("cell-big.toml", "4 MiB (4,194,305 bytes)", "over the 4 MiB limit", "TOML file"),
    ),
    "scenario over its size cap": Case(
        lambda r: ["emulate", "--scenario", str(r / "scenario-big.toml"), "--out", out(r)],
        ("scenario-big.toml", "over the 4 MiB limit"),
    ),
    "campaign over its size cap": Case(
        lambda r: ["campaign", str(r / "campaign-big.toml"), "--out", out(r)],
        ("campaign-big.toml", "over the 4 MiB limit"),
    ),
    "board over its size cap": Case(
        lambda r: ["flash", "--board", str(r / "board-big.toml"), "--port", "/dev/null"],
        ("board-big.toml", "over the 4 MiB limit"),
    ),
    "profile over its size cap": Case(
        lambda r: ["simulate", "--profile", str(r / "profile-big.csv")],
        ("profile-big.csv", "over the 256 MiB limit", "profile"),
    ),
    "scenario's profile over its size cap": Case(
        lambda r: ["emulate", "--scenario", str(r / "run-big.toml"), "--out", out(r)],
        ("run-big.toml", "steps[0]", "profile-big.csv", "over the 256 MiB limit"),
    ),
    "campaign is a device": Case(
        lambda r: ["campaign", "/dev/null", "--out", out(r)], ("/dev/null", "not a regular file")
    ),
    "campaign's scenario is a device": Case(
        lambda r: ["campaign", str(r / "campaign-scenario-dev.toml"), "--out", out(r)],
        ("campaign-scenario-dev.toml", "/dev/null", "not a regular file"),
    ),
    # -- a file the system refuses to read (EIO: works as root too) -------------------------
    "cell unreadable": Case(
        lambda r: ["design", "--cell", "/proc/self/mem"], ("/proc/self/mem", "cannot read")
    ),
    "scenario unreadable": Case(
        lambda r: ["emulate", "--scenario", "/proc/self/mem", "--out", out(r)],
        ("/proc/self/mem", "cannot read"),
    ),
    "profile unreadable": Case(
        lambda r: ["simulate", "--profile", "/proc/self/mem"], ("/proc/self/mem", "cannot read")
    ),
    "campaign unreadable": Case(
        lambda r: ["campaign", "/proc/self/mem", "--out", out(r)],
        ("/proc/self/mem", "cannot read"),
    ),
    # -- values outside their plausible range ---------------------------------------------
    "current offset 3e9 mA": Case(
        lambda r: ["emulate", "--scenario", str(r / "offset.toml"), "--out", out(r)],
        ("offset.toml", "steps[1]", "3e+09 mA", "outside"),
    ),
    "cell 17 in series (emulate)": Case(
        lambda r: ["emulate", "--scenario", str(r / "run-n17.toml"), "--out", out(r)],
        ("n17.toml", "n_series", "n_cells=17", "1..16"),
    ),
    "cell OCV table longer than the firmware's": Case(
        lambda r: ["emulate", "--scenario", str(r / "run-ocv-40.toml"), "--out", out(r)],
        ("ocv-40.toml", "ocv.soc", "the firmware's configuration", "2..32"),
        {"field": "ocv.soc"},
    ),
    "cell 17 in series (board)": Case(
        lambda r: ["board", "--virtual", "--bms-cell", str(r / "n17.toml"), "--fs", out(r)],
        ("n17.toml", "n_series", "1..16"),
    ),
    "thermistor 2 of a 1-cell board": Case(
        lambda r: ["emulate", "--scenario", str(r / "thermistor-2.toml"), "--out", out(r)],
        ("thermistor-2.toml", "steps[1]", "Open thermistor 2", "1..1"),
    ),
    "cell tau1_s 1e-300": Case(
        lambda r: ["design", "--cell", str(r / "tiny-tau1_s.toml")],
        ("tiny-tau1_s.toml", "circuit.tau1_s", "1e-300", "out of range"),
    ),
    "cell facing_area_cm2 1e-300 (emulate)": Case(
        lambda r: ["emulate", "--scenario", str(r / "r-facing_area_cm2.toml"), "--out", out(r)],
        ("tiny-facing_area_cm2.toml", "cell.facing_area_cm2", "out of range"),
    ),
    "cell max_charge_C 1e-300 (emulate)": Case(
        lambda r: ["emulate", "--scenario", str(r / "r-max_charge_C.toml"), "--out", out(r)],
        ("tiny-max_charge_C.toml", "limits.max_charge_C", "out of range"),
    ),
    "a scenario's seed beyond 32 bits": Case(
        lambda r: ["emulate", "--scenario", str(r / "seed-2-64.toml"), "--out", out(r)],
        ("seed-2-64.toml", "seed", "must be an integer 0..4,294,967,295", str(2**64)),
        {"field": "seed"},
    ),
    # -- a campaign's runs: each checked as `emulate` checks one, before any starts --------
    "campaign axis: a seed beyond 32 bits": Case(
        lambda r: ["campaign", str(r / "campaign-seed.toml"), "--workers", "1", "--out", out(r)],
        ("campaign-seed.toml", "axes.seed[1]", "0..4,294,967,295"),
        {"field": "axes.seed[1]"},
    ),
    "campaign axis: a cell file the runs refuse": Case(
        lambda r: ["campaign", str(r / "campaign-cell-file.toml"), "--out", out(r)],
        ("campaign-cell-file.toml", "axes.cell[1]", "tiny-tau1_s.toml", "circuit.tau1_s"),
        {"field": "axes.cell[1]"},
    ),
    "campaign variant: the BMS's design of another pack": Case(
        lambda r: ["campaign", str(r / "campaign-bms-cell.toml"), "--out", out(r)],
        ("campaign-bms-cell.toml", "variants.bms.four", "4 cell(s) in series"),
        {"field": "variants.bms.four"},
    ),
    "campaign axis: a mismatch out of range": Case(
        lambda r: ["campaign", str(r / "campaign-mismatch.toml"), "--out", out(r)],
        ("campaign-mismatch.toml", "axes.mismatch.capacity_factor[1]", "outside the plausible"),
        {"field": "axes.mismatch.capacity_factor[1]"},
    ),
    "campaign variant: an unknown key": Case(
        lambda r: ["campaign", str(r / "campaign-typo.toml"), "--out", out(r)],
        ("campaign-typo.toml", "variants.start.typo", "initial.firmware_sco", "unknown key"),
        {"field": "variants.start.typo"},
    ),
    "campaign: a value in a second variants table": Case(
        lambda r: ["campaign", str(r / "campaign-second-variants.toml"), "--out", out(r)],
        ("campaign-second-variants.toml", "variants.b.y", "seed", "must be an integer"),
        {"field": "variants.b.y"},
    ),
    "campaign: an axis and a variant setting the same key": Case(
        lambda r: ["campaign", str(r / "campaign-axis-and-variant.toml"), "--out", out(r)],
        ("campaign-axis-and-variant.toml", "axes 'seed' and 'a' both set 'seed'"),
        {"field": "axes"},
    ),
    "campaign axis: a cell the scenario's steps do not fit": Case(
        lambda r: ["campaign", str(r / "campaign-pack.toml"), "--out", out(r)],
        ("campaign-pack.toml", "axes.cell[1]", "steps[1]", "the pack has 1 cell(s)"),
        {"field": "axes.cell[1]"},
    ),
    # A name that is no preset and no file, reported as written and where it was looked for
    # (not as the absolute path the file's folder made of it).
    "campaign axis: a cell name that is no preset and no file": Case(
        lambda r: ["campaign", str(r / "campaign-cell-name.toml"), "--out", out(r)],
        (
            "campaign-cell-name.toml",
            "axes.cell[1]",
            "no preset named 'nosuch' and no such file next to campaign-cell-name.toml",
            "presets: sisn-lco-2ah",
        ),
        {"field": "axes.cell[1]"},
        absent=("named '/",),
    ),
    "campaign axis: a cell in the home of no user": Case(
        lambda r: ["campaign", str(r / "campaign-cell-home.toml"), "--out", out(r)],
        ("campaign-cell-home.toml", "axes.cell[0]", "'~nosuchuser/x.toml'", "no such file"),
        {"field": "axes.cell[0]"},
    ),
    "campaign scenario: its cell names no preset and no file": Case(
        lambda r: ["campaign", str(r / "campaign-scenario-cell.toml"), "--out", out(r)],
        (
            "campaign-scenario-cell.toml",
            "scenarios[0]",
            "cell-nosuch.toml",
            "no preset named 'nosuch' and no such file next to cell-nosuch.toml",
        ),
        {"field": "scenarios[0]"},
        absent=("named '/",),
    ),
    "scenario's cell names no preset and no file": Case(
        lambda r: ["emulate", "--scenario", str(r / "cell-nosuch.toml"), "--out", out(r)],
        ("cell-nosuch.toml", "cell", "no preset named 'nosuch' and no such file next to"),
        {"field": "cell"},
    ),
    "a cell file extends no preset and no file": Case(
        lambda r: [
            "emulate",
            "--scenario",
            str(r / "scenario-extends-nosuch.toml"),
            "--out",
            out(r),
        ],  # fmt: skip
        (
            "extends-nosuch.toml",
            "extends",
            "no preset named 'nosuch' and no such file next to extends-nosuch.toml",
        ),
        {"field": "extends"},
        absent=("file /",),
    ),
    "campaign scenario refused on its own in a run": Case(
        lambda r: ["campaign", str(r / "campaign-thermistor.toml"), "--out", out(r)],
        ("campaign-thermistor.toml", "scenarios[1]", "thermistor-2.toml", "Open thermistor 2"),
        {"field": "scenarios[1]"},
    ),
    # -- step texts and cycle tables: the reason is the text's own ---------------------------
    "a fault step with a value it does not take": Case(
        lambda r: ["emulate", "--scenario", str(r / "stick-amps.toml"), "--out", out(r)],
        ("stick-amps.toml", "steps[1]", "'Stick current sensor at 5 A'", "at N mA'"),
    ),
    "a step of no kind": Case(
        lambda r: ["emulate", "--scenario", str(r / "stik.toml"), "--out", out(r)],
        ("stik.toml", "steps[1]", "unknown step", "a fault step", "Stick"),
    ),
    "a cycle table's unknown key": Case(
        lambda r: ["emulate", "--scenario", str(r / "cycle-key.toml"), "--out", out(r)],
        ("cycle-key.toml", "steps[0].repaet", "unknown key"),
    ),
    "a cycle table without steps": Case(
        lambda r: ["emulate", "--scenario", str(r / "cycle-empty.toml"), "--out", out(r)],
        ("cycle-empty.toml", "steps[0].steps", "non-empty"),
    ),
    "a cycle table without repeat": Case(
        lambda r: ["emulate", "--scenario", str(r / "cycle-once.toml"), "--out", out(r)],
        ("cycle-once.toml", "steps[0].repeat", "missing"),
    ),
    "steps written after [initial]": Case(
        lambda r: ["emulate", "--scenario", str(r / "steps-in-initial.toml"), "--out", out(r)],
        ("steps-in-initial.toml", "initial.steps", "not a key of [initial]", "before [initial]"),
    ),
    "a cell file that extends nothing": Case(
        lambda r: ["design", "--cell", str(r / "extends-empty.toml")],
        ("extends-empty.toml", "extends", "must name a preset or a cell file"),
    ),
    "simulate --ambient nan": Case(
        lambda r: ["simulate", "--experiment", "Rest for 1 minute", "--ambient", "nan"],
        ("--ambient", "nan is not a number (wanted [-40, 80] degC)"),
    ),
    "emulate --list with a run's option": Case(
        lambda r: ["emulate", "--list", "--cell", "nosuch", "--out", out(r)],
        ("--list", "lists the built-in scenarios and runs none: not with --cell, --out"),
        json=cli("--list"),
        absent=("nosuch",),
    ),
    "simulate --period inf": Case(
        lambda r: ["simulate", "--experiment", "Rest for 1 minute", "--period", "inf"],
        ("--period", "outside"),
    ),
    "flash --boot-timeout nan": Case(
        lambda r: ["flash", "--board", "virtual", "--port", "/dev/null", "--boot-timeout", "nan"],
        ("--boot-timeout", "nan is not a number (wanted ["),
    ),
    "flash --boot-timeout -1": Case(
        lambda r: ["flash", "--board", "virtual", "--port", "/dev/null", "--boot-timeout", "-1"],
        ("--boot-timeout", "-1 s", "outside"),
    ),
    "campaign --workers 0": Case(
        lambda r: ["campaign", str(r / "campaign-ok.toml"), "--workers", "0", "--out", out(r)],
        ("--workers", "outside"),
    ),
    "campaign --workers 100000": Case(
        lambda r: ["campaign", str(r / "campaign-ok.toml"), "--workers", "100000", "--out", out(r)],
        ("--workers", "outside"),
    ),  # fmt: skip
    "bench --only with an empty name": Case(
        lambda r: ["bench", "--only", "cell_steps,,profile_1h"],
        ("--only: cell_steps,,profile_1h: an empty name in the list",),
        {"source": "--only", "field": "cell_steps,,profile_1h"},
    ),
    "micropython build --jobs 0": Case(
        lambda r: [
            "micropython",
            "build",
            "--target",
            "unix-32",
            "--source",
            str(r),
            "--jobs",
            "0",
        ],
        ("--jobs", "outside"),
    ),  # fmt: skip
    "micropython build --source a device": Case(
        lambda r: ["micropython", "build", "--target", "unix-32", "--source", "/dev/null"],
        ("sisnbms micropython build: error: --source: /dev/null", "(a character device)"),
        {"source": "--source", "field": "/dev/null"},
        absent=("no such file",),
    ),
    "micropython build --source a FIFO": Case(
        lambda r: [
            "micropython",
            "build",
            "--target",
            "unix-32",
            "--source",
            str(r / "scenario-fifo.toml"),
        ],
        ("--source", "scenario-fifo.toml", "not a regular file (a FIFO)"),
        absent=("no such file",),
    ),  # fmt: skip
    "micropython build --out a file": Case(
        lambda r: [
            "micropython",
            "build",
            "--target",
            "unix-32",
            "--source",
            str(r),
            "--out",
            str(r / "a-file"),
        ],
        ("--out", "a-file", "exists and is not a folder"),
        {"source": "--out"},
    ),  # fmt: skip
    "--micropython a folder": Case(
        lambda r: [
            "emulate",
            "--scenario",
            str(r / "ok.toml"),
            "--micropython",
            str(r),
            "--out",
            out(r),
        ],
        ("--micropython", "not a regular file (a directory)"),
        {"source": "--micropython"},
    ),  # fmt: skip
    # -- outputs that cannot be what they must be -----------------------------------------
    "simulate --out a folder": Case(
        lambda r: ["simulate", "--experiment", "Rest for 1 minute", "--out", str(r)],
        ("--out", "is a folder"),
    ),
    "emulate --out a file": Case(
        lambda r: ["emulate", "--scenario", str(r / "ok.toml"), "--out", str(r / "a-file")],
        ("--out", "a-file", "not a folder"),
    ),
    "emulate --out under a file": Case(
        lambda r: ["emulate", "--scenario", str(r / "ok.toml"), "--out", str(r / "a-file/x")],
        ("--out", "a-file", "not a folder"),
    ),
    "hil --out a file": Case(
        lambda r: [
            "hil",
            "--port",
            "/dev/null",
            "--scenario",
            str(r / "ok.toml"),
            "--out",
            str(r / "a-file"),
        ],
        ("--out", "a-file", "not a folder"),
    ),  # fmt: skip
    "campaign --out a file": Case(
        lambda r: ["campaign", str(r / "campaign-ok.toml"), "--out", str(r / "a-file")],
        ("--out", "a-file", "not a folder"),
    ),
    "emulate --out a link to nothing": Case(
        lambda r: ["emulate", "--scenario", str(r / "ok.toml"), "--out", str(r / "dangling")],
        ("--out", "dangling is a link to", "which does not exist"),
        cli("--out"),
    ),
    "board --fs a link to nothing": Case(
        lambda r: ["board", "--virtual", "--fs", str(r / "dangling")],
        ("--fs", "dangling is a link to", "which does not exist"),
        cli("--fs"),
    ),
    "simulate --out under a link to nothing": Case(
        lambda r: [
            "simulate",
            "--experiment",
            "Rest for 1 s",
            "--out",
            str(r / "dangling" / "x.bdf.csv"),
        ],
        ("--out", "dangling is a link to", "which does not exist"),
        cli("--out"),
    ),  # fmt: skip
    "board --fs a file": Case(
        lambda r: ["board", "--virtual", "--fs", str(r / "a-file")],
        ("--fs", "a-file", "not a folder"),
    ),
    "simulate --out not NAME.bdf.csv (an existing file)": Case(
        lambda r: ["simulate", "--experiment", "Rest for 1 minute", "--out", str(r / "a-file")],
        ("--out", "a-file", "NAME.bdf.csv"),
        cli("--out"),
    ),
    "simulate --out not NAME.bdf.csv (a new file)": Case(
        lambda r: ["simulate", "--experiment", "Rest for 1 minute", "--out", str(r / "x.txt")],
        ("--out", "x.txt", "NAME.bdf.csv"),
        cli("--out"),
    ),
    "simulate --out a FIFO": Case(
        lambda r: [
            "simulate",
            "--experiment",
            "Rest for 1 minute",
            "--out",
            str(r / "out-fifo.bdf.csv"),
        ],
        ("--out", "out-fifo.bdf.csv", "not a regular file"),
        cli("--out"),
    ),  # fmt: skip
    "simulate --out: a pack's cell file is a folder": Case(
        lambda r: [
            "simulate",
            "--cell",
            "sisn-lco-2ah-4s",
            "--experiment",
            "Rest for 10 seconds",
            "--out",
            str(r / "pack.bdf.csv"),
        ],
        ("--out", "pack.cell2.bdf.csv", "is a folder"),
        cli("--out"),
    ),  # fmt: skip
    "simulate --out where nothing can be written": Case(
        lambda r: ["simulate", "--experiment", "Rest for 1 minute", "--out", "/proc/x.bdf.csv"],
        ("--out", "/proc", "cannot write"),
        cli("--out"),
    ),
    # /proc: os.access says writable to root, yet nothing can be created there
    "emulate --out where nothing can be written": Case(
        lambda r: ["emulate", "--scenario", str(r / "ok.toml"), "--out", "/proc/x"],
        ("--out", "cannot write in /proc"),
        cli("--out"),
    ),
    "campaign --out where nothing can be written": Case(
        lambda r: ["campaign", str(r / "campaign-ok.toml"), "--out", "/proc/x"],
        ("--out", "cannot write in /proc"),
        cli("--out"),
    ),
    "board --fs where nothing can be written": Case(
        lambda r: ["board", "--virtual", "--fs", "/proc/x"],
        ("--fs", "cannot write in /proc"),
        cli("--fs"),
    ),
    "campaign --report not FILE.md": _report("a-file", "NAME.md"),
    "campaign --report in a missing folder": _report("no-such-folder/r.md", "does not exist"),
    "campaign --report a folder": _report("report-dir.md", "is a folder"),
    "campaign --report a FIFO": _report("report-fifo.md", "not a regular file"),
    "simulate --termination unreadable": Case(
        lambda r: ["simulate", "--experiment", "Rest for 1 minute", "--termination", "banana"],
        ("--termination", "cannot read 'banana'"),
        cli("--termination"),
    ),
    "empty --out": Case(
        lambda r: ["emulate", "--scenario", str(r / "ok.toml"), "--out", ""],
        ("--out", "empty"),
        cli("--out", "empty value"),
    ),
    "empty --cell": Case(
        lambda r: ["emulate", "--cell", " ", "--out", out(r)],
        ("--cell", "empty"),
        cli("--cell", "empty value"),
    ),
    "empty --termination": Case(
        lambda r: ["simulate", "--experiment", "Rest for 1 minute", "--termination", ""],
        ("--termination", "empty value"),
        cli("--termination", "empty value"),
    ),
    "empty --bms-cell": Case(
        lambda r: ["emulate", "--bms-cell", "", "--out", out(r)],
        ("--bms-cell", "empty value"),
        cli("--bms-cell", "empty value"),
    ),
    "empty --fs": Case(
        lambda r: ["board", "--virtual", "--fs", ""],
        ("--fs", "empty value"),
        cli("--fs", "empty value"),
    ),
    "empty --port": Case(
        lambda r: ["hil", "--port", "", "--scenario", str(r / "ok.toml"), "--out", out(r)],
        ("--port", "empty value"),
        cli("--port", "empty value"),
    ),
    # -- an interpreter that is not MicroPython --------------------------------------------
    "--micropython /bin/false": Case(
        lambda r: [
            "emulate",
            "--scenario",
            str(r / "ok.toml"),
            "--micropython",
            "/bin/false",
            "--out",
            out(r),
        ],
        ("--micropython", "/bin/false", "not a MicroPython unix port", "status 1"),
    ),  # fmt: skip
    "--micropython CPython": Case(
        lambda r: [
            "emulate",
            "--scenario",
            str(r / "ok.toml"),
            "--micropython",
            sys.executable,
            "--out",
            out(r),
        ],
        ("--micropython", "not a MicroPython unix port", "cpython"),
    ),  # fmt: skip
    "--micropython missing": Case(
        lambda r: [
            "emulate",
            "--scenario",
            str(r / "ok.toml"),
            "--micropython",
            str(r / "no-such-binary"),
            "--out",
            out(r),
        ],
        ("--micropython", "no-such-binary", "not an executable file"),
    ),  # fmt: skip
    "--micropython not executable": Case(
        lambda r: [
            "emulate",
            "--scenario",
            str(r / "ok.toml"),
            "--micropython",
            str(r / "not-executable"),
            "--out",
            out(r),
        ],
        ("--micropython", "not an executable file"),
    ),  # fmt: skip
    "board --micropython /bin/false": Case(
        lambda r: ["board", "--virtual", "--micropython", "/bin/false", "--fs", out(r)],
        ("--micropython", "/bin/false", "not a MicroPython unix port"),
    ),
    # -- ports -----------------------------------------------------------------------------
    "hil --port missing": Case(
        lambda r: [
            "hil",
            "--port",
            str(r / "no-such-port"),
            "--scenario",
            str(r / "ok.toml"),
            "--out",
            out(r),
        ],
        ("--port", "no-such-port", "cannot open serial port"),
    ),  # fmt: skip
    "hil --port not a tty": Case(
        lambda r: ["hil", "--port", "/dev/null", "--scenario", str(r / "ok.toml"), "--out", out(r)],
        ("--port", "/dev/null", "cannot open serial port"),
    ),  # fmt: skip
    "flash --port missing": Case(
        lambda r: ["flash", "--board", "virtual", "--port", str(r / "no-such-port")],
        ("--port", "no-such-port", "cannot open serial port"),
    ),
    # -- the command line itself -----------------------------------------------------------
    "a number that is not one": Case(
        lambda r: ["simulate", "--experiment", "Rest for 1 minute", "--period", "abc"],
        ("--period", "invalid float value"),
    ),
    "an unknown option": Case(
        lambda r: ["emulate", "--bogus"],
        ("sisnbms emulate: error: unrecognized arguments: --bogus",),
    ),
    "an unknown option of a nested command": Case(
        lambda r: ["micropython", "build", "--target", "unix-32", "--source", str(r), "--bogus"],
        ("sisnbms micropython build: error: unrecognized arguments: --bogus",),
    ),
    "a stray argument": Case(
        lambda r: ["boards", "extra"], ("sisnbms boards: error: unrecognized arguments: extra",)
    ),
}


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", list(TABLE))
def test_bad_input_exits_2_naming_what_and_why(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _files(tmp_path)
    case = TABLE[name]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, stderr = run_cli(capsys, [*case.argv(tmp_path), "--json"])
    assert code == 2, (stdout, stderr)
    assert "Traceback" not in stderr
    message = stderr.strip().splitlines()[-1]
    assert ": error: " in message, stderr
    for name_part in case.names:
        assert name_part in message, f"{name_part!r} not in {message!r}"
    for name_part in case.absent:
        assert name_part not in message, f"{name_part!r} in {message!r}"
    error = json.loads(stdout)  # one JSON object, the same error
    assert isinstance(error, dict) and error["exit_code"] == 2
    assert error["error"] in message and {"source", "field", "reason"} <= set(error)
    if case.json is not None:
        assert {k: error[k] for k in case.json} == case.json, error
    # Validated before anything was created: no output folder, no provisioned flash.
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path / "out").exists()


# Each command with the arguments it requires, so that parsing gets as far as --bogus.
COMMAND_LINES = {
    "design": [],
    "simulate": ["--experiment", "Rest for 1 s"],
    "emulate": [],
    "board": ["--virtual"],
    "boards": [],
    "flash": ["--board", "virtual", "--port", "/dev/null"],
    "hil": ["--port", "/dev/null"],
    "campaign": ["c.toml"],
    "bench": [],
    "micropython build": ["--target", "unix-32", "--source", "."],
}


@pytest.mark.parametrize("command", list(COMMAND_LINES))
def test_an_unknown_option_is_the_commands_usage_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused under the command's name and usage, not `sisnbms`'s."""
    code, _, stderr = run_cli(capsys, [*command.split(), *COMMAND_LINES[command], "--bogus"])
    assert code == 2 and "Traceback" not in stderr
    assert stderr.startswith(f"usage: sisnbms {command} "), stderr
    assert f"sisnbms {command}: error: unrecognized arguments: --bogus" in stderr


def test_an_unknown_option_before_the_command_is_the_top_parsers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, stderr = run_cli(capsys, ["--bogus", "boards"])
    assert code == 2 and stderr.startswith("usage: sisnbms [-h]")
    assert "sisnbms: error: unrecognized arguments: --bogus" in stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_unreadable_file_without_permission(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cell = tmp_path / "locked.toml"
    cell.write_text("[cell]\n")
    cell.chmod(0)
    code, _, stderr = run_cli(capsys, ["design", "--cell", str(cell)])
    assert code == 2 and "locked.toml" in stderr and "Permission denied" in stderr


def test_the_table_covers_every_command_that_reads_input() -> None:
    """Every command that takes a file, a port or a number is in the table."""
    commands = {TABLE[name].argv(Path("/x"))[0] for name in TABLE}
    assert commands >= {"design", "simulate", "emulate", "board", "flash", "hil", "campaign",
                        "micropython"}  # fmt: skip


def test_a_port_where_nothing_answers_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A terminal with no board behind it (neither frames nor a REPL answer): exit 2 naming
    the port, once the recovery's probes have had their time; nothing written."""
    master, slave = os.openpty()
    try:
        _files(tmp_path)
        port = os.ttyname(slave)
        code, _, stderr = run_cli(
            capsys, ["hil", "--port", port, "--scenario", str(tmp_path / "ok.toml"), "--out",
                     out(tmp_path)],
        )  # fmt: skip
    finally:
        os.close(master)
        os.close(slave)
    assert code == 2 and "Traceback" not in stderr
    assert f"--port: {port}: no firmware answered" in stderr
    assert not (tmp_path / "out").exists()


async def test_an_interpreter_that_ends_before_boot_is_reported_at_once(tmp_path: Path) -> None:
    """The class of `--micropython /bin/false` that passes the interpreter check: a real
    MicroPython that cannot run the firmware (here: a heap too small for it) ends before the
    firmware's BOOT. The session says so at its first exit, not after BOOT_TIMEOUT_S."""
    from cellmodel import load_cell
    from cellmodel.errors import InputError
    from host.board_session import BOOT_TIMEOUT_S, BoardSetup, VirtualBoardSession

    session = VirtualBoardSession(tmp_path / "flash", heap="8K")
    t0 = time.monotonic()
    with pytest.raises(InputError) as info:
        async with session:
            await session.start(BoardSetup(load_cell()))
    assert time.monotonic() - t0 < BOOT_TIMEOUT_S / 2
    assert "ended before the firmware booted" in str(info.value)
    assert "exit status" in info.value.reason


def test_an_oversized_input_is_refused_from_its_size_unopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 2 GiB 'cell file' is not read into memory to be refused: its size decides."""
    big = tmp_path / "huge.toml"
    with big.open("wb") as f:
        f.truncate(2 * 1024**3)  # sparse

    def no_open(*args: object, **kwargs: object) -> int:
        raise AssertionError(f"opened {args[0]}")

    monkeypatch.setattr("cellmodel.files.os.open", no_open)
    code, _, stderr = run_cli(capsys, ["design", "--cell", str(big)])
    assert code == 2 and "Traceback" not in stderr
    assert "huge.toml is 2 GiB (2,147,483,648 bytes), over the 4 MiB limit" in stderr

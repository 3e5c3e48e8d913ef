"""Run a scenario end to end: check it, start a board session, run the loop, write the outputs.

`run_scenario(scenario, ...)` is the entry point of `sisnbms emulate` and `sisnbms hil`
(and of the pytest plugin and campaigns). It never asks which kind of board it has:
host.board_session chooses once (`open_board`) and everything after talks to the
BoardSession interface.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cellmodel import load_cell
from cellmodel.design import CellDesign, nominal
from cellmodel.errors import InputError
from cellmodel.files import check_output_dir, write_text_atomic
from host.board_session import BoardSession, BoardSetup, board_kind, open_board
from host.board_session.qemu import QEMU_BOARD
from host.boards import load_board
from host.emulator.loop import ClosedLoop, LoopOutcome, RunInterrupted, check_scenario
from host.emulator.plant import start_cell_soc
from host.firmware_config import build_config
from host.micropython.resolve import UNIX64_TARGET, is_qemu
from host.progress import Progress
from host.protocol.faults import FAULT_BITS
from host.report import json_out
from host.report.bdf_log import SIGN_NOTE, write_bdf_log
from host.report.plot_worker import PlotWorker
from host.scenarios import Scenario

log = logging.getLogger(__name__)

# A pipelined lockstep run polls for each reply this long before it sleeps: a reply from a
# board on this machine takes 0.1-0.5 ms (a QEMU board longer: it then sleeps as before).
BUSY_WAIT_S = 0.001
# The board definition a virtual board is provisioned as (host.board_session.open_board).
VIRTUAL_BOARD = "virtual"


@dataclass
class RunResult:
    summary: dict[str, Any]
    outputs: dict[str, str]
    passed: bool
    outcome: LoopOutcome | None = field(default=None, repr=False)

    @property
    def exit_code(self) -> int:
        """0 when every expectation and safety check passed, else 1."""
        return 0 if self.passed else 1


@dataclass(frozen=True)
class Designs:
    """The simulated cell (truth) and the design the BMS is configured for (belief)."""

    truth: CellDesign
    belief: CellDesign


def resolve_design(scenario: Scenario, cell: str | None = None) -> CellDesign:
    """The cell named on the command line, else the scenario's, else the default cell. A
    relative file path in the scenario is read from the scenario file's folder."""
    if cell:
        return load_cell(cell, "--cell", cell)
    return _scenario_cell(scenario, scenario.cell, "cell")


def _scenario_cell(scenario: Scenario, name: str | None, key: str) -> CellDesign:
    if not name:
        return load_cell()
    # Every relative path from the scenario's folder, with or without `.toml` (a campaign
    # reads them so too: host.campaign.bundle), never from wherever sisnbms was started.
    return load_cell(name, scenario.source, key, beside=scenario.file)


def resolve_designs(
    scenario: Scenario, cell: str | None = None, bms_cell: str | None = None
) -> Designs:
    """Truth: the cell (`--cell`, the scenario's, the default) perturbed by [mismatch].
    Belief: `--bms-cell`, else the scenario's bms_cell, else the cell's nominal design (its
    file without [aging]): an aged or perturbed cell is never handed to the firmware."""
    base = resolve_design(scenario, cell)
    if bms_cell:
        belief = load_cell(bms_cell, "--bms-cell", bms_cell)
    elif scenario.bms_cell:
        belief = _scenario_cell(scenario, scenario.bms_cell, "bms_cell")
    else:
        belief = nominal(base)
    if belief.n_series != base.n_series:
        source, field = ("--bms-cell", bms_cell) if bms_cell else (scenario.source, "bms_cell")
        raise InputError(
            source,
            field,
            f"{'' if bms_cell else belief.name + ' '}has {belief.n_series} cell(s) in series, "
            f"the simulated pack {base.n_series}",
        )
    return Designs(scenario.mismatch.apply(base), belief)


def build_summary(
    scenario: Scenario,
    designs: Designs,
    outcome: LoopOutcome,
    board: BoardSession,
    *,
    realtime: bool,
) -> dict[str, Any]:
    """The run's summary JSON: the score, the expectations, the link and the firmware's view."""
    cap_est = outcome.final_state.get("capacity_mAh")
    score = outcome.scorer.summary(
        capacity_est_Ah=(cap_est / 1000.0) if cap_est else None,
        capacity_true_Ah=outcome.capacity_true_Ah,
    )
    passed = outcome.completed and outcome.scorer.safe and outcome.checker.all_passed
    link = board.client.stats.as_dict()
    link["lost_samples"] = outcome.lost_samples
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "scenario_source": scenario.source,
        "cell": designs.truth.name,
        "cell_source": designs.truth.source,
        "bms_cell": designs.belief.name,
        "bms_cell_source": designs.belief.source,
        "mismatch": scenario.mismatch.as_dict(),
        "n_cells": designs.truth.n_series,
        "seed": scenario.seed,
        "sample_period_s": scenario.sample_period_s,
        "mode": "realtime" if realtime else "lockstep",
        "port": board.port,
        "board": board.describe(),
        "passed": passed,
        "completed": outcome.completed,
        "guard_event": outcome.guard_event,
        "board_stopped": outcome.board_stopped,
        **score,
        **outcome.beliefs,
        "capacity_learned_count": outcome.final_state.get("cap_learn_count"),
        "expectations": [r.as_dict() for r in outcome.checker.results],
        "steps": outcome.steps,
        "sim_time_s": round(outcome.t_end_s, 3),
        "wall_s": round(outcome.wall_s, 3),
        "steps_per_s": round(outcome.steps / outcome.wall_s, 1) if outcome.wall_s > 0 else None,
        "link": link,
        "pipeline": outcome.pipeline,
        "firmware": {"hello": outcome.hello, "final_state": outcome.final_state},
        "sensors": scenario.sensors.as_dict(),
        "events": outcome.events,
        "until_not_reached": outcome.until_not_reached,
        "sign_convention": SIGN_NOTE,
    }


def write_outputs(
    summary: dict[str, Any],
    outcome: LoopOutcome,
    design: CellDesign,
    out: Path,
    plotter: PlotWorker,
) -> dict[str, str]:
    """<name>.bdf.csv, <name>.png (drawn by `plotter` meanwhile) and <name>.summary.json in
    `out`; their paths."""
    stem = summary["scenario"]
    outputs = {
        "log": str(out / f"{stem}.bdf.csv"),
        "summary": str(out / f"{stem}.summary.json"),
        "plot": str(out / f"{stem}.png"),
    }
    summary["outputs"] = outputs
    subtitle = (
        f"{design.name}, {design.n_series}S, period {summary['sample_period_s']} s | SOC RMS "
        f"{summary['soc_rmse_pct']:.2f} %, max {summary['soc_max_error_pct']:.2f} % | "
        f"violations {len(summary['violations'])} | "
        f"expectations {sum(e['passed'] for e in summary['expectations'])}/"
        f"{len(summary['expectations'])} | {'PASS' if summary['passed'] else 'FAIL'}"
    )
    plotter.draw(
        outcome.log,
        Path(outputs["plot"]),
        title=f"sisnbms emulate: {stem}",
        subtitle=subtitle,
        limits=design.limits,
        fault_names={bit: name for name, bit in FAULT_BITS.items()},
    )
    write_bdf_log(outcome.log, Path(outputs["log"]))  # while the worker draws
    plotter.wait()
    write_text_atomic(outputs["summary"], json_out.dumps(summary) + "\n")
    return outputs


def provisioned_n_temps(scenario: Scenario, belief: CellDesign, target: str) -> int:
    """The temperature sensors a board the run provisions (virtual, QEMU) will report, from
    the firmware configuration for the BMS's design on it, built now, before anything is
    created: a design the firmware refuses (17 cells in series) raises InputError naming
    the cell file's field."""
    board = load_board(QEMU_BOARD if is_qemu(target) else VIRTUAL_BOARD)
    period_ms = round(scenario.sample_period_s * 1000)
    return int(build_config(belief, replace(board, sample_period_ms=period_ms))["n_temps"])


def check_run(
    scenario: Scenario,
    *,
    cell: str | None = None,
    bms_cell: str | None = None,
    target: str = UNIX64_TARGET,
    port: str | None = None,
) -> Designs:
    """Everything a run can be refused for before anything is created, and its designs: its
    cells (resolve_designs), the firmware's configuration for the BMS's design on a board
    the run provisions (provisioned_n_temps; a board at `port` has its own), and every step
    against them (check_scenario, with the power cuts the board's kind allows: board_kind).
    run_scenario calls it first; a campaign calls it for every run before it starts any
    (host.campaign.expand). InputError names the file."""
    designs = resolve_designs(scenario, cell, bms_cell)
    kind = board_kind(port=port, target=target)
    n_temps = provisioned_n_temps(scenario, designs.belief, target) if port is None else None
    check_scenario(scenario, designs.truth, can_cut_power=kind.can_cut_power, n_temps=n_temps)
    return designs


async def run_scenario(
    scenario: Scenario,
    *,
    port: str | None = None,
    out_dir: str | Path,
    realtime: bool = False,
    micropython: str | None = None,
    cell: str | None = None,
    bms_cell: str | None = None,
    target: str = UNIX64_TARGET,
    progress: bool = False,
    write_files: bool = True,
    pipeline: bool = True,
) -> RunResult:
    """Run `scenario` in closed loop and write <name>.bdf.csv, <name>.summary.json, <name>.png.

    port=None: a fresh virtual board of `target` (unix-64, unix-32, qemu-cortex-m0) whose
    flash folder is out_dir/flash, provisioned for the BMS's design, with the scenario's
    initial state file. port: a flashed board in link mode. write_files=False keeps the
    log, plot and summary in the result only (a campaign keeps its own table). pipeline:
    in lockstep, step the cells while the firmware works and poll for its replies without
    sleeping (same results; uses two cores, so a campaign running a run per core turns it
    off).
    """
    out = check_output_dir(out_dir, "command line", "--out")  # before anything is created
    designs = check_run(scenario, cell=cell, bms_cell=bms_cell, target=target, port=port)
    log.info(
        "scenario %s (%s): cell %s (%s), BMS configured for %s (%s)", scenario.name,
        scenario.source, designs.truth.name, designs.truth.source, designs.belief.name,
        designs.belief.source,
    )  # fmt: skip
    board = open_board(
        port=port,
        flash_dir=out / "flash",
        micropython=micropython,
        target=target,
        lockstep=not realtime,
    )
    # Forked before the board: it imports matplotlib on the core start-up leaves idle.
    plotter = PlotWorker() if write_files else None
    try:
        if pipeline and board.lockstep:
            board.busy_wait_s = BUSY_WAIT_S  # the host's core is the run's: no sleep per reply
        outcome, summary, interrupted = await _run_on_board(
            scenario, designs, board, realtime=realtime, pipeline=pipeline, progress=progress
        )
        outputs = write_outputs(summary, outcome, designs.truth, out, plotter) if plotter else {}
    finally:
        if plotter is not None:
            plotter.close()
    if interrupted is not None:
        # The partial log and summary are written (marked incomplete); the interrupt goes on.
        if outputs:
            log.warning(
                "interrupted at t=%.0f s: the partial log and summary are in %s",
                outcome.t_end_s,
                out,
            )
        raise interrupted.cause
    log.info("run ended: %s; outputs %s", "passed" if summary["passed"] else "failed", outputs)
    return RunResult(summary, outputs, bool(summary["passed"]), outcome)


async def _run_on_board(
    scenario: Scenario,
    designs: Designs,
    board: BoardSession,
    *,
    realtime: bool,
    pipeline: bool,
    progress: bool,
) -> tuple[LoopOutcome, dict[str, Any], RunInterrupted | None]:
    """Start the board, run the loop; the outcome, the summary and the interrupt if any."""
    async with board:
        # a true start holds each cell's own SOC (resolve_designs made the counts equal)
        cell_soc = start_cell_soc(scenario, designs.truth)
        period_ms = round(scenario.sample_period_s * 1000)
        await board.start(BoardSetup(designs.belief, scenario.initial, cell_soc, period_ms))
        log.info("board started: %s", board.describe())
        with Progress(
            len(scenario.steps), label=scenario.name, enabled=None if progress else False
        ) as bar:
            loop = ClosedLoop(
                scenario,
                designs.truth,
                board,
                nameplate_Ah=designs.belief.capacity_Ah,
                realtime=realtime,
                pipelined=pipeline and board.lockstep,
                progress=bar,
            )
            interrupted: RunInterrupted | None = None
            try:
                outcome = await loop.run()
            except RunInterrupted as exc:
                outcome, interrupted = exc.outcome, exc
        summary = build_summary(scenario, designs, outcome, board, realtime=realtime)
        summary["interrupted"] = interrupted is not None
    return outcome, summary, interrupted

"""Run a scenario end to end: set up the board and link, run the loop, score, write the outputs.

`run_scenario(scenario, port=None, ...)` starts a fresh virtual board (the real
MicroPython firmware on a pty) when no port is given; with a port it drives a
real board running the firmware in link mode (`sisnbms hil`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellmodel import load_cell
from cellmodel.design import CellDesign
from host.emulator.board_state import prepare_board_state
from host.emulator.loop import BOOT_TIMEOUT_S, ClosedLoop, LoopOutcome, check_scenario
from host.emulator.state_file import write_initial_state
from host.link.serial_link import SerialLink
from host.progress import Progress
from host.protocol.client import BmsClient, BmsError
from host.protocol.faults import FAULT_BITS
from host.report.bdf_log import SIGN_NOTE, write_bdf_log
from host.report.plot import write_plot
from host.scenarios import Scenario
from host.vboard import VirtualBoard

# A reply slower than this (after the client's retries) counts the sample as lost.
REPLY_TIMEOUT_S = 1.0


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


def resolve_design(scenario: Scenario, cell: str | None = None) -> CellDesign:
    """The cell named on the command line, else the scenario's, else the default cell."""
    name = cell or scenario.cell
    return load_cell(name) if name else load_cell()


def _summary(
    scenario: Scenario,
    design: CellDesign,
    outcome: LoopOutcome,
    client: BmsClient,
    *,
    port: str,
    realtime: bool,
) -> dict[str, Any]:
    cap_est = outcome.final_state.get("capacity_mAh")
    score = outcome.scorer.summary(
        capacity_est_Ah=(cap_est / 1000.0) if cap_est else None,
        capacity_true_Ah=outcome.capacity_true_Ah,
    )
    expectations = [r.as_dict() for r in outcome.checker.results]
    passed = outcome.completed and outcome.scorer.safe and outcome.checker.all_passed
    link = client.stats.as_dict()
    link["lost_samples"] = outcome.lost_samples
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "scenario_source": scenario.source,
        "cell": design.name,
        "n_cells": design.n_series,
        "seed": scenario.seed,
        "sample_period_s": scenario.sample_period_s,
        "mode": "realtime" if realtime else "lockstep",
        "port": port,
        "passed": passed,
        "completed": outcome.completed,
        **score,
        "capacity_learned_count": outcome.final_state.get("cap_learn_count"),
        "expectations": expectations,
        "steps": outcome.steps,
        "sim_time_s": round(outcome.t_end_s, 3),
        "wall_s": round(outcome.wall_s, 3),
        "steps_per_s": round(outcome.steps / outcome.wall_s, 1) if outcome.wall_s > 0 else None,
        "link": link,
        "firmware": {"hello": outcome.hello, "final_state": outcome.final_state},
        "sensors": scenario.sensors.as_dict(),
        "events": outcome.events,
        "sign_convention": SIGN_NOTE,
    }


async def _await_firmware(client: BmsClient) -> None:
    """A board just rebooted into its firmware: wait until it answers HELLO."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOOT_TIMEOUT_S
    while True:
        try:
            await client.hello()
            return
        except BmsError:
            if loop.time() > deadline:
                raise


async def run_scenario(
    scenario: Scenario,
    *,
    port: str | None = None,
    board: VirtualBoard | None = None,
    out_dir: str | Path,
    realtime: bool = False,
    micropython: str | None = None,
    cell: str | None = None,
    progress: bool = False,
) -> RunResult:
    """Run `scenario` in closed loop and write <name>.bdf.csv, <name>.summary.json, <name>.png.

    port=None and board=None: start a fresh virtual board (flash folder out_dir/flash,
    provisioned for the cell, with the scenario's initial state file). board: use this
    already started virtual board as is. port: a real board in link mode (no power cuts).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    design = resolve_design(scenario, cell)
    check_scenario(scenario, design, can_cut_power=port is None)
    own_board: VirtualBoard | None = None
    if port is None and board is None:
        from host.vboard.provision import provision_flash

        flash = out / "flash"
        if flash.exists():
            shutil.rmtree(flash)
        provision_flash(flash, design, board="virtual")
        write_initial_state(flash, scenario, design)
        own_board = VirtualBoard(flash, micropython)
        board = own_board
    link: SerialLink | None = None
    try:
        if own_board is not None:
            # Open the port before power-up: pyserial empties the input buffer on open,
            # which would otherwise race with (and may swallow) the BOOT frame.
            await own_board.start(powered=False)
        elif port is not None:
            await prepare_board_state(port, scenario, design)
        the_port = port if port is not None else board.port  # type: ignore[union-attr]
        link = await SerialLink.open(the_port)
        if own_board is not None:
            await own_board.power_on()
        client = BmsClient(link, timeout_s=REPLY_TIMEOUT_S)
        if own_board is not None:
            await client.wait_boot(BOOT_TIMEOUT_S)
        elif port is not None:
            await _await_firmware(client)
        bar = Progress(
            len(scenario.steps), label=scenario.name, enabled=None if progress else False
        )
        loop = ClosedLoop(scenario, design, client, power=board, realtime=realtime, progress=bar)
        outcome = await loop.run()
    finally:
        if link is not None:
            await link.close()
        if own_board is not None:
            await own_board.stop()

    summary = _summary(scenario, design, outcome, client, port=the_port, realtime=realtime)
    stem = scenario.name
    outputs = {
        "log": str(out / f"{stem}.bdf.csv"),
        "summary": str(out / f"{stem}.summary.json"),
        "plot": str(out / f"{stem}.png"),
    }
    summary["outputs"] = outputs
    write_bdf_log(outcome.log, Path(outputs["log"]))
    subtitle = (
        f"{design.name}, {design.n_series}S, period {scenario.sample_period_s} s | SOC RMS "
        f"{summary['soc_rmse_pct']:.2f} %, max {summary['soc_max_error_pct']:.2f} % | "
        f"violations {len(summary['violations'])} | "
        f"expectations {sum(e['passed'] for e in summary['expectations'])}/"
        f"{len(summary['expectations'])} | {'PASS' if summary['passed'] else 'FAIL'}"
    )
    write_plot(
        outcome.log,
        Path(outputs["plot"]),
        title=f"sisnbms emulate: {scenario.name}",
        subtitle=subtitle,
        limits=design.limits,
        fault_names={bit: name for name, bit in FAULT_BITS.items()},
    )
    Path(outputs["summary"]).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return RunResult(summary, outputs, bool(summary["passed"]), outcome)

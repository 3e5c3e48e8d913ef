"""The pipelined lockstep loop (the host steps the cells while the firmware works on the
previous sample) gives exactly the results of the plain loop: the same log to the last bit
and the same summary, through switch changes, lost and retried frames, a dropped link, a
reset and a power cut (issue 13: "bit-for-bit those of today's loop for the same seed")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from host.emulator import run_scenario
from host.report.log import CELLS, COLUMNS
from host.scenarios import load_scenario

# What depends on the wall clock or the machine, not on the run.
NOT_RESULTS = {"wall_s", "steps_per_s", "outputs", "port", "pipeline", "interrupted"}

SCENARIO = """
name = "pipeline-{name}"
cell = "{cell}"
seed = 5
sample_period_s = 2.0
steps = [
    "Discharge at 0.5C for 4 minutes",
    "Corrupt 5% of frames",
    "Charge at 1C until 4.2 V",
    "Hold at 4.2 V until C/20",
    "Corrupt 0% of frames",
    "Set ambient 50 degC",
    "Charge at 0.5C for 10 minutes",
    "Expect CHG off within 5 minutes",
    "Set ambient 25 degC",
    "Drop link for 5 s",
    "Discharge at 1C for 5 minutes",
    "Reset board",
    "Discharge at 2C for 3 minutes",
    "Cut board power",
    "Rest for 5 minutes",
    "Expect SOC error below 5% throughout",
]
[initial]
soc = 0.8
branch = "charge"
"""


async def run(tmp_path: Path, name: str, cell: str, pipeline: bool) -> dict:
    path = tmp_path / f"{name}.toml"
    path.write_text(SCENARIO.format(name=name, cell=cell))
    out = tmp_path / ("piped" if pipeline else "plain")
    result = await run_scenario(load_scenario(path), out_dir=out, pipeline=pipeline)
    assert result.outcome is not None
    return {"summary": result.summary, "log": result.outcome.log}


@pytest.mark.parametrize("cell", ["sisn-lco-2ah", "sisn-lco-2ah-4s"])
async def test_pipelined_and_plain_loops_give_the_same_results(tmp_path: Path, cell: str) -> None:
    piped = await run(tmp_path, "a", cell, pipeline=True)
    plain = await run(tmp_path, "a", cell, pipeline=False)
    assert piped["summary"]["pipeline"]["overlapped_steps"] > 100  # it did overlap
    assert plain["summary"]["pipeline"]["overlapped_steps"] == 0
    # The scenario moves the switches (the hot charge), loses and retries frames.
    assert piped["summary"]["pipeline"]["restepped"] >= 1
    assert piped["summary"]["link"]["retries"] > 0 and piped["summary"]["link"]["boots"] >= 2
    a, b = piped["log"], plain["log"]
    assert len(a) == len(b)
    for name in COLUMNS:
        np.testing.assert_array_equal(a.column(name), b.column(name), err_msg=name)
    for name in CELLS:
        np.testing.assert_array_equal(a.cells(name), b.cells(name), err_msg=name)
    sa = {k: v for k, v in piped["summary"].items() if k not in NOT_RESULTS}
    sb = {k: v for k, v in plain["summary"].items() if k not in NOT_RESULTS}
    assert sa == sb

"""No cross-talk (issue 10): boards and emulations running side by side on one machine each
keep to their own port, flash and state.

Four emulations in one event loop give, figure for figure, what each gives alone (a
lockstep run is deterministic), and four virtual boards started apart, each for a
different pack, each answer with their own configuration and count only their own
samples.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cellmodel import load_cell
from host.board_session import BoardSetup, VirtualBoardSession
from host.campaign.results import is_volatile
from host.emulator import run_scenario
from host.scenarios import parse_scenario

CELLS_1S = [3700]


def _scenario(seed: int) -> Any:
    steps = ["Rest for 10 seconds", "Discharge at 1C for 2 minutes", "Rest for 30 seconds"]
    data = {"name": f"par{seed}", "seed": seed, "sample_period_s": 1.0, "steps": steps}
    return parse_scenario({**data, "initial": {"soc": 0.5 + 0.1 * seed}}, f"par{seed}.toml")


def _figures(summary: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the other runs: everything but wall time, port and paths."""
    skip = {"outputs", "port", "board", "link", "wall_s", "steps_per_s"}
    return {k: v for k, v in summary.items() if k not in skip and not is_volatile(k)}


async def test_four_emulations_side_by_side_match_each_alone(tmp_path: Path) -> None:
    async def run(seed: int, where: str) -> dict[str, Any]:
        out = tmp_path / where / str(seed)
        result = await run_scenario(_scenario(seed), out_dir=out, write_files=False)
        return _figures(result.summary)

    alone = [await run(seed, "alone") for seed in range(4)]
    together = await asyncio.gather(*(run(seed, "together") for seed in range(4)))
    for a, b in zip(alone, together, strict=True):
        assert {k for k in a if a[k] != b.get(k)} == set()
    assert list(together) == alone
    assert len({s["soc_rmse_pct"] for s in alone}) > 1  # four different runs, not one


async def test_four_boards_side_by_side_keep_their_own_state(tmp_path: Path) -> None:
    designs = [load_cell("sisn-lco-2ah"), load_cell("sisn-lco-2ah-4s")] * 2
    sessions = [VirtualBoardSession(tmp_path / f"flash{i}") for i in range(4)]
    try:
        await asyncio.gather(
            *(s.start(BoardSetup(d)) for s, d in zip(sessions, designs, strict=True))
        )
        assert len({s.port for s in sessions}) == 4
        for k, (session, design) in enumerate(zip(sessions, designs, strict=True)):
            hello = await session.client.hello()
            assert hello.n_cells == design.n_series
            for t in range(k + 1):  # board k gets k + 1 samples
                await session.client.sample(1000 * (t + 1), [3700] * design.n_series, 0, [250])
        states = await asyncio.gather(*(s.client.get_state() for s in sessions))
        assert [st.samples for st in states] == [1, 2, 3, 4]
    finally:
        await asyncio.gather(*(s.teardown() for s in sessions))

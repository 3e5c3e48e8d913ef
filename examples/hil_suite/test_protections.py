"""Protections of the BMS firmware, driven sample by sample over the serial protocol.

Runs against a fresh virtual board per test, or a real board with --bms-port.
Current is positive on discharge. Sample times are simulated: the firmware
debounces on them, so these tests take milliseconds, not the delays they test.
"""

from __future__ import annotations

import pytest

from host.protocol import ClearReason

REST_MV = 3700  # a mid-SOC cell voltage


class Feed:
    """Send samples with a steadily advancing simulated clock."""

    def __init__(self, bms, n_cells: int, period_ms: int = 500) -> None:
        self.bms = bms
        self.n_cells = n_cells
        self.period_ms = period_ms
        self.t_ms = 0

    async def send(self, cell_mV: int | list[int], current_mA: int, temp_ddegC: int = 250):
        cells = cell_mV if isinstance(cell_mV, list) else [cell_mV] * self.n_cells
        self.t_ms += self.period_ms
        return await self.bms.sample(self.t_ms, cells, current_mA, [temp_ddegC])

    async def hold(self, seconds: float, *args, **kwargs):
        state = None
        for _ in range(max(1, int(seconds * 1000 / self.period_ms))):
            state = await self.send(*args, **kwargs)
        return state


@pytest.mark.asyncio
async def test_firmware_answers_and_reports_its_configuration(bms, bms_cell):
    hello = await bms.hello()
    config = await bms.config_read()
    assert hello.n_cells == bms_cell.n_series == config["n_cells"]
    # The anode window top never exceeds what the claims allow.
    assert config["window_top_dmAhg"] <= 22000


@pytest.mark.asyncio
async def test_over_voltage_opens_chg_after_its_delay_and_releases(bms, bms_cell):
    config = await bms.config_read()
    feed = Feed(bms, bms_cell.n_series)
    state = await feed.hold(2, REST_MV, 0)
    assert state.chg_on and state.dsg_on
    over = config["ov_mV"] + 20
    state = await feed.send(over, -500)
    assert state.chg_on, "OV must be debounced, not trip on one sample"
    state = await feed.hold(config["ov_delay_ms"] / 1000 + 1, over, -500)
    assert "OV" in state.faults and not state.chg_on
    assert state.dsg_on, "an over-voltage must still allow discharge"
    state = await feed.hold(config["release_delay_ms"] / 1000 + 2, config["ov_release_mV"] - 50, 0)
    assert "OV" not in state.faults and state.chg_on


@pytest.mark.asyncio
async def test_short_circuit_opens_both_at_once_and_latches(bms, bms_cell):
    config = await bms.config_read()
    feed = Feed(bms, bms_cell.n_series)
    await feed.hold(2, REST_MV, 0)
    state = await feed.send(REST_MV - 300, config["sc_mA"] + 1000)
    assert "SC" in state.latched and not state.dsg_on and not state.chg_on
    state = await feed.hold(5, REST_MV, 0)
    assert "SC" in state.faults, "a short circuit stays latched until cleared"
    cleared = await bms.clear_latched(ClearReason.INSPECTED)
    assert cleared
    state = await feed.hold(config["release_delay_ms"] / 1000 + 2, REST_MV, 0)
    assert "SC" not in state.faults and state.dsg_on


@pytest.mark.asyncio
async def test_cold_blocks_charge_but_not_discharge(bms, bms_cell):
    config = await bms.config_read()
    feed = Feed(bms, bms_cell.n_series)
    cold = config["t_chg_min_ddegC"] - 50
    state = await feed.hold(config["t_delay_ms"] / 1000 + 1, REST_MV, 0, temp_ddegC=cold)
    assert "UT_CHG" in state.faults and not state.chg_on and state.dsg_on


def test_cold_charge_scenario_passes(run_bms_scenario):
    result = run_bms_scenario("cold-charge")
    assert result.passed, result.summary["expectations"]
    assert result.summary["violations"] == []


@pytest.mark.hardware
@pytest.mark.asyncio
async def test_link_watchdog_opens_switches_on_the_boards_own_clock(bms, bms_cell):
    """Needs a real board: the watchdog runs on its own clock, so this takes real seconds."""
    import asyncio

    config = await bms.config_read()
    feed = Feed(bms, bms_cell.n_series)
    await feed.hold(2, REST_MV, 0)
    await asyncio.sleep(config["link_timeout_ms"] / 1000 + 1)
    state = await bms.get_state()
    assert "LINK_LOST" in state.faults and not state.chg_on and not state.dsg_on

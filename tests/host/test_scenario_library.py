"""Every built-in scenario passes its own expectations and safety checks against the firmware.

The library is what users run first (`sisnbms emulate --scenario NAME`); each
scenario states its expectations (e.g. cold-charge expects UT_CHG and CHG off,
wrong-initial-soc expects the estimate corrected), so a pass here is a
behaviour check of the firmware, not only a smoke test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from host.emulator import run_scenario
from host.scenarios import library_names, load_scenario


@pytest.mark.slow
@pytest.mark.parametrize("name", library_names())
async def test_library_scenario_passes(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(name)
    result = await run_scenario(scenario, out_dir=tmp_path)
    s = result.summary
    assert s["violations"] == [], s["violations"]
    assert s["completed"], s["events"]
    assert s["expectations"], "a library scenario states what it expects"
    failed = [e for e in s["expectations"] if not e["passed"]]
    assert not failed, failed
    assert result.exit_code == 0

"""`sisnbms bench --quick` runs and reports its keys (numbers are not asserted)."""

from __future__ import annotations

import json

import pytest

from host import bench
from host.cli.main import main


def test_bench_quick_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= set(bench.BENCHMARKS)
    steps = data["cell_steps"]
    for key in ("cells_1", "cells_100", "cells_10000"):
        assert steps[key]["cell_steps_per_s"] > 0
    assert "meets_target" in steps
    assert data["profile_1h"]["steps"] == 3600
    assert data["profile_1h"]["best_s"] > 0
    assert data["firmware_step"]["steps"] == 5000 and data["firmware_step"]["us_per_step"] > 0
    assert data["emulation"]["steps"] == 1200  # 20 minutes at 1 s in closed loop


def test_bench_quick_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "cell-steps/s" in out and "1-hour single-cell profile" in out
    assert "firmware Bms.step" in out and "emulation (bench-quick)" in out

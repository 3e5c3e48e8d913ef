"""`sisnbms emulate` end to end: --json summary, outputs, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host.cli.main import main


def test_emulate_json_summary_and_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["emulate", "--scenario", "link-loss", "--out", str(tmp_path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out["expectations"]
    for key in (
        "soc_rmse_pct",
        "soc_max_error_pct",
        "violations",
        "expectations",
        "steps",
        "steps_per_s",
        "outputs",
        "link",
        "tolerances",
    ):
        assert key in out
    assert all(e["passed"] for e in out["expectations"])
    for path in out["outputs"].values():
        assert Path(path).is_file()
    assert json.loads(Path(out["outputs"]["summary"]).read_text())["steps"] == out["steps"]


def test_bad_scenario_file_exits_2_naming_file_and_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('steps = ["Rest for 1 minute", "Expect warp drive"]\n')
    code = main(["emulate", "--scenario", str(bad), "--out", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert str(bad) in captured.err and "steps[1]" in captured.err
    assert "Expect warp drive" in json.loads(captured.out)["error"]


def test_unknown_scenario_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", "--scenario", "nope", "--out", str(tmp_path)]) == 2
    assert "full-cycle" in capsys.readouterr().err


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", "--list", "--json"]) == 0
    assert "hysteresis-trap" in json.loads(capsys.readouterr().out)["scenarios"]

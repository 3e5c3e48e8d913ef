"""Every command's --json follows one convention (README, "Machine-readable output").

- one JSON object at the top level (an error too: {"error", "source", "field", "reason",
  "exit_code"}), and nothing else on stdout;
- wall time as `wall_s` (or `<what>_wall_s`), never `seconds`, `elapsed` or `time_s`;
- a listing (`emulate --list`, `boards`) as a list of objects with `name` and `description`;
- numbers without binary-float noise: no float needs more than 12 significant digits
  (2000.4, not 2000.3999999999999), and no NaN or Infinity (not JSON).
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from host.cli.main import SUBCOMMANDS, main

SHORT = 'name = "short"\nsample_period_s = 1.0\nsteps = ["Discharge at 1C for 20 seconds"]\n'


def _floats(value: Any, where: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(value, float):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _floats(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _floats(v, f"{where}[{i}]")


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from _keys(v)


def check(stdout: str, *, wall: bool = True) -> dict[str, Any]:
    """The convention, on one command's stdout; returns the object."""
    obj = json.loads(stdout)  # exactly one JSON document: nothing else was printed
    assert isinstance(obj, dict), f"top level is {type(obj).__name__}"
    for where, x in _floats(obj):
        assert math.isfinite(x) and float(f"{x:.12g}") == x, f"{where} = {x!r}"
    for key in _keys(obj):
        assert not key.endswith("seconds") and key not in ("elapsed", "elapsed_s"), key
        assert "wall" not in key or key.endswith("wall_s"), key
    if wall:
        assert isinstance(obj["wall_s"], (int, float)) and obj["wall_s"] >= 0
    return obj


def _named_list(items: list[dict[str, Any]]) -> None:
    assert items and all(isinstance(i, dict) for i in items)
    assert all(isinstance(i["name"], str) and isinstance(i["description"], str) for i in items)


def cli(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> str:
    assert main([*argv, "--json"]) == code
    return capsys.readouterr().out


@pytest.fixture
def board_port(tmp_path: Path) -> Iterator[str]:
    """`sisnbms board --virtual --blank --json`, as a user starts it; its port. Its own --json
    line follows the convention too (one line, so a program can readline() it)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "host.cli.main", "board", "--virtual", "--blank", "--json",
         "--fs", str(tmp_path / "vflash")],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        info = check(proc.stdout.readline(), wall=False)
        assert Path(info["fs"]).is_dir() and info["port"].startswith("/dev/")
        yield info["port"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_design_simulate_boards(capsys: pytest.CaptureFixture[str]) -> None:
    design = check(cli(capsys, "design"), wall=False)
    assert design["cell"] == "sisn-lco-2ah" and design["source"].endswith("sisn-lco-2ah.toml")
    sim = check(cli(capsys, "simulate", "--experiment", "Discharge at 1C for 17.3 minutes",
                    "--period", "0.1"))  # fmt: skip
    assert sim["duration_s"] == 1038.0  # 10,380 steps of 0.1 s: no 1037.9999999999
    assert sim["cell_source"].endswith("sisn-lco-2ah.toml")
    boards = check(cli(capsys, "boards"), wall=False)
    _named_list(boards["boards"])


def test_emulate_and_its_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listed = check(cli(capsys, "emulate", "--list"), wall=False)
    _named_list(listed["scenarios"])
    scenario = tmp_path / "short.toml"
    scenario.write_text(SHORT)
    out = cli(capsys, "emulate", "--scenario", str(scenario), "--out", str(tmp_path / "o"))
    summary = check(out)
    assert summary["cell"] == "sisn-lco-2ah" and summary["cell_source"].endswith(".toml")
    # The summary file is written the same way.
    saved = check((tmp_path / "o" / "short.summary.json").read_text())
    assert saved["steps"] == summary["steps"]


def test_campaign_and_bench(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "short.toml").write_text(SHORT)
    spec = tmp_path / "c.toml"
    spec.write_text('scenarios = ["short.toml"]\n[axes]\nseed = [1, 2]\n')
    agg = check(cli(capsys, "campaign", str(spec), "--workers", "1", "--out", str(tmp_path / "c")))
    assert agg["runs"] == 2
    bench = check(cli(capsys, "bench", "--quick"))
    assert bench["quick"] is True


@pytest.mark.slow
def test_flash_and_hil(board_port: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flashed = check(cli(capsys, "flash", "--board", "virtual", "--port", board_port))
    assert flashed["ok"] and flashed["cell"] == "sisn-lco-2ah"
    scenario = tmp_path / "short.toml"
    scenario.write_text(SHORT)
    summary = check(cli(capsys, "hil", "--port", board_port, "--scenario", str(scenario),
                        "--out", str(tmp_path / "h")))  # fmt: skip
    assert summary["port"] == board_port


def test_errors_are_one_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every command's bad input: one error object (tests/host/test_bad_input.py has the
    whole table); usage errors included."""
    bad = {
        "design": ["--cell", str(tmp_path / "none.toml")],
        "simulate": ["--experiment", "Rest for -1 minute"],
        "emulate": ["--scenario", str(tmp_path / "none.toml")],
        "board": ["--virtual", "--board", "nope", "--fs", str(tmp_path / "f")],
        "boards": ["--bogus"],
        "flash": ["--board", "nope", "--port", "/dev/null"],
        "hil": ["--port", "/dev/null", "--scenario", "nope"],
        "campaign": [str(tmp_path / "none.toml")],
        "bench": ["--quick", "extra"],
        "micropython": ["build", "--target", "unix-32", "--source", str(tmp_path)],
    }
    assert set(bad) == set(SUBCOMMANDS)
    for command, args in bad.items():
        error = check(cli(capsys, command, *args, code=2), wall=False)
        assert error["exit_code"] == 2 and error["error"] and "reason" in error, command
        assert set(error) == {"error", "source", "field", "reason", "exit_code"}, command

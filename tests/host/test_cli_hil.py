"""The README's hardware-in-the-loop path, end to end on a virtual board.

`sisnbms board --virtual --blank` (a board with MicroPython and no firmware),
`sisnbms flash` (mpy-cross + real mpremote over the pty), `sisnbms hil`
(the emulator loop against the port) — each as the user runs it.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from host.cli.main import main

SCENARIO = """
name = "hil-short"
description = "A short mixed run for the HIL path"
seed = 3
sample_period_s = 2.0
steps = [
    "Rest for 1 minute",
    "Discharge at 1C for 6 minutes",
    "Charge at 0.5C for 6 minutes",
    "Expect no faults",
    "Expect SOC error below 2%",
]
[initial]
soc = 0.6
branch = "discharge"
state_file = true
"""


@contextlib.contextmanager
def board_process(*args: str) -> Iterator[dict[str, str]]:
    """`sisnbms board --virtual --json ARGS` as a user starts it: its JSON line while it
    runs, stopped with SIGTERM afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "host.cli.main", "board", "--virtual", "--json", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture
def virtual_board_port(tmp_path: Path) -> Iterator[str]:
    with board_process("--blank", "--fs", str(tmp_path / "flash")) as info:
        yield info["port"]


@pytest.mark.slow
def test_flash_then_hil_passes(
    virtual_board_port: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["flash", "--board", "virtual", "--port", virtual_board_port, "--json"]) == 0
    flashed = json.loads(capsys.readouterr().out)
    assert "main.py" in flashed["written"]

    scenario = tmp_path / "hil-short.toml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "out"
    code = main(
        ["hil", "--port", virtual_board_port, "--scenario", str(scenario), "--out", str(out),
         "--json"]
    )  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert summary["port"] == virtual_board_port
    assert summary["violations"] == []
    assert all(e["passed"] for e in summary["expectations"])
    # The board started from the scenario's persisted state, as in `emulate`.
    assert summary["firmware"]["hello"]["boot_flag_bits"] & 1  # bit0: state restored
    for path in summary["outputs"].values():
        assert Path(path).is_file()

    # The board was flashed for a sample a second (boards/virtual.toml): it counts at most
    # 5 s per sample, so a scenario sampling every 8 s is bad input, named before it runs.
    slow = tmp_path / "slow.toml"
    slow.write_text(SCENARIO.replace("sample_period_s = 2.0", "sample_period_s = 8.0"))
    slow_out = tmp_path / "slow-out"
    code = main(
        ["hil", "--port", virtual_board_port, "--scenario", str(slow), "--out", str(slow_out)]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{slow}: sample_period_s: 8 s" in err and "max_dt_ms" in err, err
    assert "Traceback" not in err
    assert not list(slow_out.glob("*.bdf.csv"))


def test_hil_rejects_power_cut_on_a_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "cut.toml"
    scenario.write_text(SCENARIO.replace('"Rest for 1 minute",', '"Cut board power",'))
    code = main(["hil", "--port", "/dev/null-no-such-port", "--scenario", str(scenario)])
    assert code == 2
    assert "Cut board power" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--bms-cell", "--cell"])
def test_a_virtual_board_is_configured_for_the_bms_cell(tmp_path: Path, option: str) -> None:
    """`board --bms-cell X` (as `flash` spells it; `--cell` too) installs a configuration made
    from X's design: the 4-series preset gives a 4-cell bms_config.json."""
    fs = tmp_path / "flash"
    with board_process(option, "sisn-lco-2ah-4s", "--fs", str(fs)) as info:
        assert Path(info["fs"]) == fs
    config = json.loads((fs / "bms_config.json").read_text())
    assert config["n_cells"] == 4, config["n_cells"]

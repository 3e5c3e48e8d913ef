"""The closed loop on the chip-faithful targets (issue 11): the firmware on the 32-bit
interpreter and on bare-metal MicroPython under QEMU passes what it passes on unix-64.

The subset CI runs on the QEMU board: the default scenario, power loss, link loss, and
`flash` + `hil` against the board's UART, as a user would drive a real Pico.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from host.cli.main import main
from host.micropython import BuildResult
from host.micropython.build import CACHE_ENV
from host.scenarios import load_scenario

pytestmark = pytest.mark.slow


@pytest.fixture
def built(
    monkeypatch: pytest.MonkeyPatch, mp_cache: Path, unix32: BuildResult, qemu_firmware: BuildResult
) -> None:
    """Both targets in the cache `--target` looks in."""
    monkeypatch.setenv(CACHE_ENV, str(mp_cache))


def emulate(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code = main(["emulate", "--out", str(tmp_path / "out"), "--json", *args])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    return summary


def assert_passed(summary: dict) -> None:
    assert summary["violations"] == [], summary["violations"]
    assert summary["completed"], summary["events"]
    failed = [e for e in summary["expectations"] if not e["passed"]]
    assert not failed, failed


@pytest.mark.parametrize("target", ["unix-32", "qemu-cortex-m0"])
def test_default_scenario_passes_on_the_chip_targets(
    built: None, target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same scenario, same expectation bounds as on unix-64 (the full-cycle file's)."""
    s = emulate(tmp_path, capsys, "--target", target)
    assert_passed(s)
    assert s["steps"] > 8000  # the whole cycle ran: a charge, a drive cycle, a discharge
    assert s["link"]["lost_samples"] == 0


@pytest.mark.parametrize("name", ["power-loss", "link-loss"])
def test_power_loss_and_link_loss_on_the_qemu_board(
    built: None, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = emulate(tmp_path, capsys, "--target", "qemu-cortex-m0", "--scenario", name)
    assert_passed(s)
    if name == "power-loss":
        assert s["link"]["boots"] >= 1  # it booted again from its flash image


@pytest.fixture
def qemu_port(qemu_firmware: BuildResult, tmp_path: Path) -> Iterator[str]:
    """A blank QEMU board (empty flash) in its own process, as a board on a desk: the test
    talks to it only through its port, like `sisnbms flash` and `hil` do."""
    folder, firmware = str(tmp_path / "board"), str(qemu_firmware.path)
    script = (
        "import asyncio, sys\n"
        "from host.vboard.qemu_board import QemuBoard\n"
        "async def main():\n"
        f"    async with QemuBoard({folder!r}, {firmware!r}) as b:\n"
        "        print(b.port, flush=True)\n"
        "        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdin is not None
    port = proc.stdout.readline().strip()
    try:
        assert port.startswith("/dev/"), port
        yield port
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_flash_and_hil_against_the_qemu_board(
    qemu_port: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["flash", "--board", "qemu_cortex_m0", "--port", qemu_port, "--json"]) == 0
    flashed = json.loads(capsys.readouterr().out)
    assert flashed["ok"] and any(p.endswith(".mpy") for p in flashed["written"])
    code = main(
        ["hil", "--port", qemu_port, "--scenario", "cold-charge", "--out", str(tmp_path / "hil"),
         "--json"]
    )  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert_passed(summary)
    assert summary["firmware"]["hello"]["boot_flag_bits"] & 1  # restored the scenario's state
    assert load_scenario("cold-charge").name == summary["scenario"]


CAMPAIGN_SCENARIO = """
name = "chip-campaign"
seed = 5
sample_period_s = 2.0
steps = [
    "Rest for 10 minutes",
    "Discharge at 1C for 10 minutes",
    "Rest for 30 minutes",
    "Charge at 0.5C for 10 minutes",
    "Expect no faults",
]
[initial]
soc = 0.6
branch = "discharge"
state_file = false
"""


def test_a_campaign_on_the_32_bit_target_scores_as_on_the_desktop(
    built: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`campaign --target unix-32`: every run's firmware on the chips' object model (32-bit
    small ints, single-precision floats, an RP2040's heap). The firmware's arithmetic is
    integer, so each run scores exactly as on the desktop interpreter; a figure that moved
    would be an overflow into a long int or a float the firmware should not have."""
    (tmp_path / "s.toml").write_text(CAMPAIGN_SCENARIO)
    spec = tmp_path / "c.toml"
    spec.write_text(
        'scenarios = ["s.toml"]\n[axes]\nsensors.current_bias_mA = [0.0, 20.0]\n'
        "mismatch.capacity_factor = [0.8]\n"
    )
    figures = {}
    for target in ("unix-64", "unix-32"):
        out = tmp_path / target
        code = main(["campaign", str(spec), "--out", str(out), "--workers", "2",
                     "--target", target, "--json"])  # fmt: skip
        agg = json.loads(capsys.readouterr().out)
        assert code == 0, agg
        runs = {}
        for folder in (out / "runs").iterdir():
            result = json.loads((folder / "result.json").read_text())
            s = result["summary"]
            assert target in s["board"]["micropython"] or target == "unix-64", s["board"]
            key = (s["sensors"]["current_bias_mA"], s["mismatch"]["capacity_factor"])
            runs[key] = {
                k: s[k]
                for k in ("soc_max_error_pct", "soc_rmse_pct", "uncertainty_coverage_pct",
                          "anode_potential_margin_mV", "steps", "violations")
            }  # fmt: skip
        figures[target] = runs
    assert len(figures["unix-32"]) == 2
    assert figures["unix-32"] == figures["unix-64"]

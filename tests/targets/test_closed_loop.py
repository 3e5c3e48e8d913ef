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

"""`sisnbms flash` end to end: real mpy-cross and mpremote into a virtual board's flash folder."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from host.boards import load_board
from host.cli.main import main
from host.image import counterpart, stage_firmware
from host.link import SerialLink
from host.link.board_files import BoardFiles, request_repl
from host.protocol.client import BmsClient
from host.vboard import VirtualBoard


async def flash_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["flash", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
async def blank_board(tmp_path: Path) -> AsyncIterator[VirtualBoard]:
    async with VirtualBoard(tmp_path / "flash") as vb:
        yield vb


async def test_flash_blank_board_then_reflash_running_firmware(
    blank_board: VirtualBoard, capsys: pytest.CaptureFixture[str]
) -> None:
    port = blank_board.port
    flash = blank_board.flash_dir
    code, first = await flash_cli(capsys, "--board", "virtual", "--port", port)
    assert code == 0, first
    assert first["ok"] and first["verified"] and not first["unchanged"]
    assert first["board_name"] == "virtual" and first["firmware_version"]
    assert (flash / "main.py").is_file() and (flash / "boot.py").is_file()
    assert (flash / "bms" / "core.mpy").read_bytes()[:2] == b"M\x06"  # .mpy version 6
    assert not (flash / "bms" / "core.py").exists()
    assert json.loads((flash / "board.json").read_text())["name"] == "virtual"

    # The firmware runs now: flash must get it back to the REPL itself, then skip
    # everything that is already there.
    code, second = await flash_cli(capsys, "--board", "virtual", "--port", port)
    assert code == 0, second
    assert second["written"] == [] and len(second["unchanged"]) == len(first["written"])

    # Sources replace the compiled modules, and no stale .mpy is left to confuse imports.
    code, third = await flash_cli(capsys, "--board", "virtual", "--port", port, "--source")
    assert code == 0, third
    assert "bms/core.mpy" in third["removed"] and "bms/core.py" in third["written"]
    assert not list(flash.rglob("*.mpy"))

    # A file damaged on the board is noticed by its hash and rewritten.
    (flash / "bms" / "core.py").write_text("broken = True\n")
    code, fourth = await flash_cli(capsys, "--board", "virtual", "--port", port, "--source")
    assert code == 0, fourth
    assert fourth["written"] == ["bms/core.py"]

    # The flashed firmware serves a host session (what `sisnbms hil` does next).
    async with await SerialLink.open(port) as link:
        client = BmsClient(link)
        hello = await client.hello()
        assert hello.board_name == "virtual"
        config = await client.config_read()
        written = json.loads((flash / "bms_config.json").read_text())
        assert all(config[k] == v for k, v in written.items())


async def test_a_firmware_still_booting_is_asked_again_until_it_hands_over_the_port(
    blank_board: VirtualBoard, capsys: pytest.CaptureFixture[str]
) -> None:
    port = blank_board.port
    code, flashed = await flash_cli(capsys, "--board", "virtual", "--port", port)
    assert code == 0, flashed
    await blank_board.power_cut()
    # Nothing answers a board that is off: one HELLO's wait, then no.
    assert not await request_repl(port)

    async def power_on_later() -> None:
        await asyncio.sleep(2.0)  # four HELLO timeouts: the firmware boots while we ask
        await blank_board.power_on()

    later = asyncio.create_task(power_on_later())
    assert await request_repl(port, wait_s=120.0)
    await later
    # The port is the REPL's now: mpremote gets its raw REPL (the firmware turned Ctrl-C
    # off, so it would not without the handover).
    files = BoardFiles(port)
    try:
        await asyncio.to_thread(files.enter_raw_repl)
        assert (await asyncio.to_thread(files.exec, "print(6 * 7)")).strip() == b"42"
    finally:
        files.close()


async def test_flash_unreachable_port_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code = await asyncio.to_thread(
        main, ["flash", "--board", "virtual", "--port", "/dev/nonexistent", "--json"]
    )
    assert code == 2
    assert "/dev/nonexistent" in json.loads(capsys.readouterr().out)["error"]


@pytest.mark.parametrize("board", ["pico", "esp32_devkitc"])
def test_stage_compiles_for_the_board_arch(board: str) -> None:
    staged = {f.path: f for f in stage_firmware(load_board(board), None, mpy=True)}
    assert "main.py" in staged and "boot.py" in staged  # boards run these by name
    modules = [p for p in staged if p.endswith(".mpy")]
    assert "bms/core.mpy" in modules and "adapters/rp2040.mpy" in modules
    assert all(staged[p].data[:2] == b"M\x06" for p in modules)
    assert list(staged)[-1] == "main.py"
    assert json.loads(staged["board.json"].data)["name"] == board
    assert counterpart("bms/core.mpy") == "bms/core.py" and counterpart("main.py") is None


async def test_flash_refuses_a_board_of_another_kind(
    blank_board: VirtualBoard, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Pico's pin map written to something that is not an RP2040 would drive the wrong pins
    (the MOSFET gates among them): refused, exit 2, nothing written, unless forced."""
    port = blank_board.port
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["flash", "--board", "pico", "--port", port])
    err = capsys.readouterr().err
    assert code == 2
    assert "not a rp2040 board" in err and "'linux'" in err and "--force" in err
    assert not (blank_board.flash_dir / "main.py").exists()
    assert not (blank_board.flash_dir / "board.json").exists()
    # The right board goes through.
    code, result = await flash_cli(capsys, "--board", "virtual", "--port", port)
    assert code == 0 and result["ok"], result

"""A provisioned virtual board runs the real firmware and `sisnbms board` serves it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from host.link import SerialLink
from host.protocol.client import BmsClient
from host.vboard import VirtualBoard
from host.vboard.provision import provision_flash


async def test_provisioned_board_boots_the_firmware(tmp_path: Path) -> None:
    flash = tmp_path / "flash"
    written = provision_flash(flash, None)
    assert {"main.py", "boot.py", "bms/core.py", "board.json", "bms_config.json"} <= set(written)
    async with VirtualBoard(flash) as vb, await SerialLink.open(vb.port) as link:
        client = BmsClient(link, timeout_s=2.0)
        hello = await client.hello()
        assert hello.board_name == "virtual" and hello.protocol_version == 1
        # RESET frame: the firmware saves and soft-resets; the port stays.
        await client.reset()
        boot = await client.wait_boot(10.0)
        assert boot.board_name == "virtual"
        assert vb.last_exit == 94 and vb.boots == 2
        # Power loss and back: the BOOT frame comes again on the same port.
        await vb.power_cut()
        await vb.power_on()
        assert (await client.wait_boot(10.0)).board_name == "virtual"
        assert (flash / "bms_state.json").exists()


async def test_cli_board_runs_until_sigterm(tmp_path: Path) -> None:
    flash = tmp_path / "fs"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "host.cli.main", "board", "--virtual", "--fs", str(flash), "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        info = json.loads(line)
        assert info["fs"] == str(flash.resolve()) and (flash / "main.py").is_file()
        async with await SerialLink.open(info["port"]) as link:
            assert (await BmsClient(link, timeout_s=2.0).hello()).board_name == "virtual"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert not os.path.exists(info["port"]) or info["port"] != ""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

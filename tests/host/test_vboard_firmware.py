"""A provisioned virtual board runs the real firmware and `sisnbms board` serves it."""

from __future__ import annotations

import asyncio
import json
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
    vb = VirtualBoard(flash)
    await vb.start(powered=False)
    try:
        link = await SerialLink.open(vb.port)
        client = BmsClient(link, timeout_s=2.0)
        await vb.power_on()  # the link is open first, so the BOOT frame cannot be missed
        assert (await client.wait_boot(10.0)).board_name == "virtual"
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
        await link.close()
    finally:
        await vb.stop()


async def test_cli_board_runs_until_sigterm() -> None:
    # No --fs: a temporary flash folder, provisioned, and removed on exit.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "host.cli.main", "board", "--virtual", "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        info = json.loads(line)
        flash = Path(info["fs"])
        assert (flash / "main.py").is_file() and info["port"].startswith("/dev/pts/")
        async with await SerialLink.open(info["port"]) as link:
            # One HELLO, however long the firmware takes to boot: a retry's bytes could
            # reach main.py before it disabled Ctrl-C (HELLO seq 3 holds a 0x03).
            client = BmsClient(link, timeout_s=20.0, retries=0)
            assert (await client.hello()).board_name == "virtual"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert not flash.exists()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_plain_mpremote_recovers_a_running_firmware(tmp_path: Path) -> None:
    # docs/protocol.md: mpremote's "\r\x03" always recovers a board, no ENTER_REPL needed.
    flash = tmp_path / "flash"
    provision_flash(flash, None)
    mpremote = Path(sys.executable).parent / "mpremote"
    async with VirtualBoard(flash) as vb:
        for _ in range(3):
            async with await SerialLink.open(vb.port) as link:
                await vb.soft_reset()  # the firmware runs and serves the port again
                await BmsClient(link, timeout_s=2.0).wait_boot(10.0)
            proc = await asyncio.create_subprocess_exec(
                str(mpremote), "connect", vb.port, "exec", "print('at the REPL')",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
                raise AssertionError("mpremote hung: the firmware lost its Ctrl-A") from None
            assert proc.returncode == 0 and b"at the REPL" in out


async def test_cli_board_verbose_logs_what_the_board_does(tmp_path: Path) -> None:
    flash = tmp_path / "flash"
    provision_flash(flash, None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "host.cli.main", "board", "--virtual", "--json", "-v",
        "--fs", str(flash),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        port = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))["port"]
        async with await SerialLink.open(port) as link:
            client = BmsClient(link, timeout_s=20.0, retries=0)
            await client.hello()
            await client.reset()
            await client.wait_boot(20.0)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        log = (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    events = [line.split(f"{port}: ", 1)[1] for line in log.splitlines() if "host.vboard" in line]
    assert events == [
        f"flash folder {flash.resolve()}",
        "power on",
        "soft reset (status 94)",
        "power cut",
        "stopped",
    ], log

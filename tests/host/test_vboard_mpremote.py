"""The real mpremote CLI against a virtual board: it must take the pty for a board."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from host.vboard import VirtualBoard
from tests.host.vboard_helpers import write_tiny_firmware

MPREMOTE = Path(sys.executable).parent / "mpremote"


async def mpremote(port: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(MPREMOTE),
        "connect",
        port,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, f"mpremote {' '.join(args)} exited {proc.returncode}:\n{text}"
    return text


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[VirtualBoard]:
    write_tiny_firmware(tmp_path / "flash")
    async with VirtualBoard(tmp_path / "flash") as vb:
        yield vb


async def test_fs_commands_write_the_flash_folder(board: VirtualBoard, tmp_path: Path):
    blob = os.urandom(20000)  # every byte value, several raw-paste windows of repr text
    (tmp_path / "blob.bin").write_bytes(blob)
    port = board.port
    await mpremote(port, "fs", "cp", str(tmp_path / "blob.bin"), ":blob.bin")
    assert (board.flash_dir / "blob.bin").read_bytes() == blob
    await mpremote(port, "fs", "mkdir", ":lib")
    await mpremote(port, "fs", "cp", str(tmp_path / "blob.bin"), ":/lib/copy.bin")
    assert (board.flash_dir / "lib" / "copy.bin").read_bytes() == blob
    listing = await mpremote(port, "fs", "ls", ":")
    assert "blob.bin" in listing and "lib/" in listing and "main.py" in listing
    # sizes as a board's filesystem gives them (the unix port's VfsPosix leaves them out)
    assert "20000 blob.bin" in " ".join(listing.split())
    digest = await mpremote(port, "fs", "sha256sum", ":blob.bin")
    assert hashlib.sha256(blob).hexdigest() in digest
    assert "answer = 41" in await mpremote(port, "fs", "cat", ":main.py")
    await mpremote(port, "fs", "cp", ":lib/copy.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == blob
    await mpremote(port, "fs", "rm", ":lib/copy.bin")
    await mpremote(port, "fs", "rmdir", ":lib")
    assert not (board.flash_dir / "lib").exists()


async def test_exec_resume_and_soft_reset(board: VirtualBoard):
    port = board.port
    assert (await mpremote(port, "exec", "print(6 * 7)")).strip() == "42"
    # mpremote soft-resets on connect (raw REPL: boot.py only), so main.py's global is gone...
    assert "NameError" in await _mpremote_fails(port, "exec", "print(answer)")
    await mpremote(port, "exec", "kept = 'ram'")
    # ...unless told to resume the session.
    assert (await mpremote(port, "resume", "exec", "print(kept)")).strip() == "ram"
    assert "NameError" in await _mpremote_fails(port, "soft-reset", "exec", "print(kept)")
    assert "boot ran" not in await mpremote(port, "eval", "1")


async def _mpremote_fails(port: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(MPREMOTE),
        "connect",
        port,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0
    return out.decode()

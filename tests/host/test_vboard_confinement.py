"""Code typed at a virtual board's REPL stays on the board: its flash folder is all it reaches.

Every attempt runs on a real board process over its real pty, the way a user
(or anything that gets the board to its REPL) would type it, and is judged on
the host side: a file that must not appear, a host file that must stay as it
was, a secret that must not come back on the port, a listener that must see
no connection. Each of them escaped on the board before it was confined.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cellmodel.errors import InputError
from host.link import SerialLink
from host.vboard import VirtualBoard
from host.vboard.launch import UNCONFINED_ENV
from host.vboard.provision import provision_flash
from tests.host.vboard_helpers import expect, write_tiny_firmware

PROMPT = b"\r\n>>> "
SECRET = "host-secret-5f3a9c"
MPREMOTE = Path(sys.executable).parent / "mpremote"


class Host:
    """What the board must not touch: files beside (not in) its flash folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.target = root / "outside" / "pwned"  # must never be created
        self.target.parent.mkdir()
        self.secret = root / "secret.txt"  # must never be read back
        self.secret.write_text(SECRET)
        self.victim = root / "victim.txt"  # must never be removed or replaced
        self.victim.write_text("keep me")

    def up(self, path: Path) -> str:
        """`path` written as a board path that climbs out of the flash folder first."""
        return "/.." * 12 + str(path)

    def intact(self) -> bool:
        return not self.target.exists() and self.victim.read_text() == "keep me"


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


@pytest.fixture
async def repl(tmp_path: Path) -> AsyncIterator[Repl]:
    write_tiny_firmware(tmp_path / "flash")
    vb = VirtualBoard(tmp_path / "flash")
    await vb.start(powered=False)
    try:
        async with await SerialLink.open(vb.port) as link:
            await vb.power_on()
            await expect(link, b">>> ")
            yield Repl(vb, link)
    finally:
        await vb.stop()


class Repl:
    def __init__(self, board: VirtualBoard, link: SerialLink) -> None:
        self.board = board
        self.link = link

    async def run(self, line: str) -> str:
        """Type one line at the friendly REPL; the output up to the next prompt."""
        self.link.write(line.encode() + b"\r")
        return (await expect(self.link, PROMPT, 20.0)).decode(errors="replace")


async def test_dot_dot_and_absolute_paths_stay_in_the_flash(repl: Repl, host: Host) -> None:
    await repl.run("import os")
    out = await repl.run(f"open({host.up(host.target)!r}, 'w').write('x')")
    out += await repl.run(f"open({host.up(host.secret)!r}).read()")
    out += await repl.run(f"open({str(host.secret)!r}).read()")
    out += await repl.run(f"os.rename('/main.py', {host.up(host.target)!r})")
    out += await repl.run(f"os.remove({host.up(host.victim)!r})")
    out += await repl.run(f"os.rename({host.up(host.victim)!r}, '/stolen.txt')")
    assert host.intact() and SECRET not in out
    assert (repl.board.flash_dir / "main.py").is_file()
    # as on a board, ".." at the root is the root: "/../boot.py" is the flash's boot.py
    assert "boot ran" in await repl.run("print(open('/../../boot.py').read())")


async def test_chdir_cannot_climb_out(repl: Repl, host: Host) -> None:
    await repl.run("import os")
    out = await repl.run("for _ in range(12): os.chdir('..')")
    out += await repl.run("os.getcwd(), os.listdir()")
    out += await repl.run(f"os.chdir({str(host.root)!r})")
    out += await repl.run(f"open({os.path.relpath(host.target, '/')!r}, 'w').write('x')")
    assert "('/', ['boot.py', 'main.py'])" in out
    assert host.intact()


async def test_no_host_commands(repl: Repl, host: Host) -> None:
    await repl.run("import os")
    out = await repl.run(f"os.system('echo x > {host.target}')")
    out += await repl.run(f"__import__('os').system('cat {host.secret}')")
    assert host.intact() and SECRET not in out
    out = await repl.run("import ffi")
    if "ImportError" not in out:  # a build with ffi: libc's system() is one call away
        out = await repl.run(
            f"ffi.open('libc.so.6').func('i', 'system', 's')('id > {host.target}')"
        )
        assert host.intact()


@pytest.mark.parametrize(
    "setup",
    [
        "import vfs",
        # a fresh os module, whatever the board put in sys.modules
        "import sys; sys.modules.clear(); vfs = __import__('os')",
        "import sys; [sys.modules.pop(k) for k in list(sys.modules)]; import uos as vfs",
    ],
)
async def test_a_new_mount_of_the_real_root_shows_no_host_files(
    repl: Repl, host: Host, setup: str
) -> None:
    await repl.run(setup)
    out = await repl.run("vfs.mount(vfs.VfsPosix('/'), '/host')")
    out += await repl.run("import os; print(os.listdir('/host'))")
    out += await repl.run(f"open('/host{host.target}', 'w').write('x')")
    out += await repl.run(f"print(open('/host{host.secret}').read())")
    out += await repl.run(f"os.stat('/host{host.secret}')")
    out += await repl.run(f"os.remove('/host{host.victim}')")
    assert host.intact() and SECRET not in out
    listing = out[out.index("[") : out.index("]") + 1]
    for name in ("etc", "usr", "proc", "tmp", "home", "root", "dev"):
        assert f"'{name}'" not in listing, listing


async def test_no_host_environment(repl: Repl) -> None:
    out = await repl.run("import os; print([os.getenv(k) for k in ('HOME', 'PATH', 'USER')])")
    assert "[None, None, None]" in out


async def test_no_network(repl: Repl) -> None:
    accepted: list[tuple[str, int]] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername"))  # in the order of the connections
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await repl.run("import socket; s = socket.socket()")
        out = await repl.run(f"s.connect(socket.getaddrinfo('127.0.0.1', {port})[0][-1])")
        out += await repl.run("s.send(b'B')")
        sockaddr = bytes([socket.AF_INET, 0, port >> 8, port & 0xFF, 127, 0, 0, 1]) + bytes(8)
        out += await repl.run(f"s2 = socket.socket(); s2.connect({sockaddr!r}); s2.send(b'B')")
        # A connection of our own, after the board's: connections are accepted in order,
        # so once ours is in, any of the board's is in before it.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        ours = writer.get_extra_info("sockname")
        while ours not in accepted:
            await asyncio.sleep(0.01)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert accepted == [ours], out
    assert out.count("OSError") == 3


async def test_no_unix_sockets_of_the_host(repl: Repl, tmp_path: Path) -> None:
    # Listeners on the host, by path and in the abstract namespace (where a path hides nothing).
    path = tmp_path / "host.sock"
    abstract = f"\0sisnbms-test-{os.getpid()}"
    listeners = []
    for address in (str(path), abstract):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(address)
        sock.listen()
        sock.setblocking(False)
        listeners.append(sock)
    try:
        out = await repl.run("import socket")
        for address in (str(path).encode(), abstract.encode()):
            sockaddr = bytes([socket.AF_UNIX, 0]) + address
            out += await repl.run(f"u = socket.socket(1, 1); u.connect({sockaddr!r})")
        for sock in listeners:
            with pytest.raises(BlockingIOError):  # nobody connected
                sock.accept()
    finally:
        for sock in listeners:
            sock.close()
    assert out.count("OSError") == 2, out


async def test_mpremote_fs_cp_stays_in_the_flash(tmp_path: Path, host: Host) -> None:
    write_tiny_firmware(tmp_path / "flash")
    src = tmp_path / "payload.txt"
    src.write_text("payload")
    async with VirtualBoard(tmp_path / "flash") as vb:
        for dest in (":" + host.up(host.target), ":" + host.up(host.victim)):
            proc = await asyncio.create_subprocess_exec(
                str(MPREMOTE), "connect", vb.port, "fs", "cp", str(src), dest,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            await asyncio.wait_for(proc.communicate(), 60)
        assert host.intact()
        # where ".." stops at the flash's root, the file lands in it, as on a board
        (tmp_path / "flash" / str(host.root).lstrip("/")).mkdir(parents=True)
        proc = await asyncio.create_subprocess_exec(
            str(MPREMOTE), "connect", vb.port, "fs", "cp", str(src), ":" + host.up(host.victim),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, out
        assert host.intact()
        landed = tmp_path / "flash" / str(host.victim).lstrip("/")
        assert landed.read_text() == "payload"


async def test_a_board_that_cannot_be_confined_does_not_run(tmp_path: Path) -> None:
    vb = VirtualBoard(tmp_path / "flash")
    await vb.start(powered=False)
    try:
        (tmp_path / "flash").rmdir()  # nothing left to confine it to
        with pytest.raises(InputError, match="cannot start the board.*flash") as err:
            await vb.power_on()
        assert UNCONFINED_ENV in str(err.value)
        assert not vb.powered and vb.boots == 1 and vb.crashes == 0
    finally:
        await vb.stop()


async def test_unconfined_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(UNCONFINED_ENV, "1")
    write_tiny_firmware(tmp_path / "flash")
    vb = VirtualBoard(tmp_path / "flash")
    await vb.start(powered=False)
    try:
        async with await SerialLink.open(vb.port) as link:
            await vb.power_on()
            await expect(link, b">>> ")
            link.write(b"import os; os.listdir('/..'), os.getenv('HOME')\r")
            assert b"(['boot.py', 'main.py'], None)" in await expect(link, PROMPT)
    finally:
        await vb.stop()
    assert any("not confined" in r.getMessage() for r in caplog.records)


def test_provisioning_follows_no_link_the_board_planted(tmp_path: Path, host: Host) -> None:
    # Code on the board can reach the symlink() system call (uctypes): inside its root a
    # link leads nowhere, but the host must not write through it when it provisions.
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "main.py").symlink_to(host.victim)
    (flash / "bms").symlink_to(host.target.parent, target_is_directory=True)
    (flash / "board.json.tmp").symlink_to(host.victim)
    os.mkfifo(flash / "boot.py")  # would block a writer that opens it
    written = provision_flash(flash, None)
    assert host.intact() and not any(host.target.parent.iterdir())
    for rel in written:
        assert (flash / rel).is_file() and not (flash / rel).is_symlink(), rel
    assert not (flash / "bms").is_symlink()
    assert not list(flash.rglob(".provision-*"))

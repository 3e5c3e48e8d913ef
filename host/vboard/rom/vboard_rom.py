# ROM of the sisnbms virtual board (MicroPython code, run by the unix port).
#
# It plays the part of a real board's C firmware: it runs boot.py and main.py
# from the board's flash, then the friendly REPL and the raw REPL that mpremote
# and pyboard.py speak. host/vboard/jail.py starts it as
#
#     micropython vboard_rom.py MODE
#
# confined to a root that holds the flash folder (the working directory) and
# little else, with stdin/stdout pipes to the line process that serves the
# board's USB serial port (a pseudo-terminal). MODE:
#   power  power-up: boot.py, main.py, then the friendly REPL
#   soft   soft reboot from the friendly REPL or the firmware: the same, after
#          the "MPY: soft reboot" line
#   raw    soft reboot from the raw REPL: boot.py, then the raw REPL (main.py
#          does not run, as on a board)
# A soft reset ends this process with exit status 94 (restart in "soft") or 95
# (restart in "raw"); the supervisor keeps the pty, so the port never changes.
#
# Soft reset from the firmware: machine.soft_reset() (works on every port), or
# sys.exit(94). Both raise SystemExit; a bare or 94 SystemExit from boot.py,
# main.py or REPL code soft-resets, any other exit code returns to the REPL.
#
# Ctrl-C: as a board's USB stack does, the line takes the interrupt character
# off the wire while code runs and raises KeyboardInterrupt in it (a SIGINT,
# which the unix port turns into one). It needs to know when code runs and
# what micropython.kbd_intr() set: this ROM writes "<char or -1>\n" to fd 3 at
# each change. The firmware's kbd_intr(-1) therefore makes every byte data.
#
# Bulk reads: code that runs with no interrupt character (the firmware's
# framing mode) may ask for a non-blocking stdin with
# micropython.nonblocking_stdin() (this board's only: the firmware looks for
# it). The line then sets O_NONBLOCK on the pipe's open file description (it
# shares it), so sys.stdin.buffer.readinto(buf, n) returns what is waiting
# instead of waiting for n bytes: a frame in one read. kbd_intr(c) for any
# character, and the end of the code, make stdin block again (this ROM's REPL
# reads it byte by byte and takes an empty read for the end of the port);
# code that does not ask keeps a blocking stdin, as on a board. The ROM writes
# "nonblock 0|1\n" to fd 3 at each change and waits for the line's one-byte
# acknowledgement on fd 4: the request returns only once stdin is
# non-blocking, kbd_intr(c) and the end of the code only once it blocks again.
import builtins
import io
import os
import sys

import micropython
import vfs

EXIT_SOFT = 94
EXIT_SOFT_RAW = 95

_IN = sys.stdin.buffer
_OUT = sys.stdout.buffer
_B1 = bytearray(1)
_ROM_FILE = __file__
# Board output is "cooked" on real ports: print's "\n" leaves the USB port as
# "\r\n". Frames written to sys.stdout.buffer stay binary.
_raw_print = builtins.print
_globals = {"__name__": "__main__"}
_RAW_BANNER = "raw REPL; CTRL-B to exit\r\n"
_PASTE_WINDOW = 2048
# What a board's REPL reports for input it cannot read as source text.
_NOT_UTF8 = (
    'Traceback (most recent call last):\r\n  File "<stdin>", line 1\r\n'
    "SyntaxError: invalid UTF-8\r\n"
)
try:
    # To the line: the interrupt character while code runs. Open for the board's life.
    _CTL = open(3, "wb")  # noqa: SIM115
except OSError:
    _CTL = None
try:
    # From the line: the acknowledgement of each "nonblock" state. Open for the board's life.
    _ACK = open(4, "rb") if _CTL is not None else None  # noqa: SIM115
except OSError:
    _ACK = None
_ACK_BUF = bytearray(1)
# [interrupt character set by kbd_intr (-1: none), code running]
_intr_state = [3, False]
# stdin: [non-blocking asked for by the running code, non-blocking now]
_stdin_nb = [False, False]


def _cooked_print(*args, sep=" ", end="\n", file=None):
    if file is not None and file is not sys.stdout:
        _raw_print(*args, sep=sep, end=end, file=file)
        return
    buf = io.StringIO()
    _raw_print(*args, sep=sep, end=end, file=buf)
    _OUT.write(buf.getvalue().replace("\n", "\r\n"))


def put(text):
    _OUT.write(text)


def getc():
    try:
        n = _IN.readinto(_B1)
    except KeyboardInterrupt:
        # A Ctrl-C meant for code that ended just before it arrived: a Ctrl-C here.
        return 0x03
    if not n:
        # The line closed the port: the board is being switched off.
        sys.exit(0)
    return _B1[0]


def decode(data):
    """REPL input as text; None if it is not UTF-8 (the caller reports a SyntaxError)."""
    try:
        return data.decode()
    except UnicodeError:
        return None


def print_exc(exc):
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    lines = [ln for ln in buf.getvalue().split("\n") if _ROM_FILE not in ln]
    put("\r\n".join(lines))


def is_soft_reset(exc):
    return not exc.args or exc.args[0] == EXIT_SOFT


def tell_line():
    if _CTL is not None:
        _CTL.write(str(_intr_state[0] if _intr_state[1] else -1).encode() + b"\n")


def sync_stdin():
    """Make stdin non-blocking while code that asked runs with no interrupt character.

    Called only where no SIGINT can come (the unix port's handler is off, or the line
    knows of no interrupt character): the wait for the acknowledgement is not cut short.
    """
    want = _stdin_nb[0] and _intr_state[1] and _intr_state[0] < 0
    if _ACK is None or want == _stdin_nb[1]:
        return
    _CTL.write(b"nonblock 1\n" if want else b"nonblock 0\n")
    _ACK.readinto(_ACK_BUF)  # nothing (the line is gone): the board is being switched off
    _stdin_nb[1] = want


def set_interrupt(c):
    """micropython.kbd_intr as a board has it: any character, or -1 for none."""
    if c < 0:
        _intr_state[0] = -1
        tell_line()  # the line stops sending SIGINT before the handler goes
        micropython.kbd_intr(-1)
        sync_stdin()
    else:
        _intr_state[0] = c & 0xFF
        _stdin_nb[0] = False
        sync_stdin()  # before the handler comes back: stdin blocks for the REPL
        micropython.kbd_intr(3)  # the unix port's SIGINT handler serves any character
        tell_line()


class _Micropython:
    """The micropython module as board code imports it: kbd_intr also informs the line.

    nonblocking_stdin is this board's own (see the top of this file).
    """

    def __getattr__(self, name):
        return getattr(micropython, name)

    def kbd_intr(self, c):
        set_interrupt(c)

    def nonblocking_stdin(self):
        """A non-blocking stdin until kbd_intr(c) or the end of the code; True if granted
        (only after kbd_intr(-1): a request with an interrupt character set is forgotten)."""
        _stdin_nb[0] = _intr_state[0] < 0
        sync_stdin()
        return _stdin_nb[1]


def run_armed(ack, src, filename, mode):
    """Acknowledge input with `ack`, then compile and run it in the REPL's globals.

    Ctrl-C interrupts from before the acknowledgement (the newline, "OK") until
    the code ends, as pyexec arms it around execution on a board: a host that
    sends Ctrl-C once it sees the acknowledgement finds the line armed.
    Raises whatever the code raised.
    """
    set_interrupt(3)
    _intr_state[1] = True
    tell_line()
    try:
        put(ack)
        exec(compile(src, filename, mode), _globals)
    finally:
        disarm()


def disarm():
    _intr_state[1] = False
    _stdin_nb[0] = False
    sync_stdin()  # the code has ended with no interrupt character: no SIGINT comes
    tell_line()


class BoardFlash:
    """The flash folder as a board's root filesystem (mounted at "/").

    Paths resolve inside it whatever they say ("/.." is "/", as on a board), this
    object keeps the working directory, and ilistdir gives sizes as FAT and
    littlefs do (VfsPosix leaves them out, and mpremote's `fs ls` shows them).
    The VfsPosix below has no root of its own: with one, its rename() builds
    both paths in one buffer and renames the new name onto itself.
    """

    def __init__(self, root):
        self._fs = vfs.VfsPosix()
        self._root = root.rstrip("/")
        self._cwd = "/"

    def _path(self, path):
        """The normalised board path."""
        if not path.startswith("/"):
            path = self._cwd + "/" + path
        parts = []
        for part in path.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part and part != ".":
                parts.append(part)
        return "/" + "/".join(parts)

    def _real(self, path):
        return self._root + self._path(path)

    def mount(self, readonly, mkfs):
        pass

    def umount(self):
        pass

    def open(self, path, mode):
        return self._fs.open(self._real(path), mode)

    def stat(self, path):
        return self._fs.stat(self._real(path))

    def statvfs(self, path):
        return self._fs.statvfs(self._real(path))

    def mkdir(self, path):
        self._fs.mkdir(self._real(path))

    def rmdir(self, path):
        self._fs.rmdir(self._real(path))

    def remove(self, path):
        self._fs.remove(self._real(path))

    def rename(self, old, new):
        self._fs.rename(self._real(old), self._real(new))

    def chdir(self, path):
        path = self._path(path)
        if not self._fs.stat(self._root + path)[0] & 0x4000:
            raise OSError(20)  # ENOTDIR
        self._cwd = path

    def getcwd(self):
        return self._cwd

    def ilistdir(self, path):
        real = self._real(path)
        prefix = real.rstrip("/") + "/"
        for entry in self._fs.ilistdir(real):
            size = 0
            if entry[1] == 0x8000:  # a regular file
                try:  # noqa: SIM105 -- MicroPython has no contextlib
                    size = self._fs.stat(prefix + entry[0])[6]
                except OSError:
                    pass
            yield (entry[0], entry[1], entry[2], size)


def mount_flash():
    # The flash folder becomes "/", so paths mpremote sends (":/main.py",
    # ":bms/core.py") land in it exactly as on a board.
    root = os.getcwd()
    try:  # noqa: SIM105 -- MicroPython has no contextlib
        vfs.umount("/")
    except OSError:
        pass
    vfs.mount(BoardFlash(root), "/")
    os.chdir("/")
    sys.modules["micropython"] = _Micropython()
    del sys.path[:]
    sys.path.append("")
    sys.path.append("/lib")


def board_name():
    try:
        import json

        with open("/board.json") as f:
            return str(json.load(f).get("name", "virtual"))
    except Exception:
        return "virtual"


def banner():
    impl = sys.implementation
    ver = ".".join(str(v) for v in impl.version[:3])
    if len(impl.version) > 3 and impl.version[3]:
        ver += "-" + str(impl.version[3])
    put(f"MicroPython v{ver}; sisnbms {board_name()} board with unix\r\n")
    put('Type "help()" for more information.\r\n')


def run_file(path):
    """Run boot.py or main.py as a board does; True when it asked for a soft reset."""
    try:
        os.stat(path)
    except OSError:
        return False
    try:
        with open(path) as f:
            src = f.read()
        run_armed("", src, path, "exec")
    except SystemExit as exc:
        if is_soft_reset(exc):
            return True
    except BaseException as exc:  # noqa: B036 -- a board prints whatever ends main.py
        print_exc(exc)
    return False


# ---------------------------------------------------------------- raw REPL


def execute_raw(ack, src):
    """Run one raw-REPL command: `ack`, output, 0x04, error text, 0x04. True on soft reset."""
    if src is None:
        put(ack + "\x04" + _NOT_UTF8 + "\x04")
        return False
    reset = False
    try:
        run_armed(ack, src, "<stdin>", "exec")
    except SystemExit as exc:
        reset = is_soft_reset(exc)
    except BaseException as exc:  # noqa: B036
        put("\x04")
        print_exc(exc)
        put("\x04")
        return False
    put("\x04\x04")
    return reset


def raw_paste():
    """Raw-paste mode (mpremote's fast path): windowed flow control, then execute."""
    put(b"R\x01" + bytes((_PASTE_WINDOW & 0xFF, _PASTE_WINDOW >> 8)))
    data = bytearray()
    used = 0
    while True:
        c = getc()
        if c == 0x04:
            break
        if c == 0x03:  # abandoned: as a board does, end the transfer with KeyboardInterrupt
            put("\x04\x04")
            print_exc(KeyboardInterrupt())
            put("\x04")
            return False
        data.append(c)
        used += 1
        if used == _PASTE_WINDOW:
            put(b"\x01")
            used = 0
    src = decode(data)
    del data
    return execute_raw("\x04", src)


def raw_repl():
    """The raw REPL; returns "friendly" or "reset"."""
    put(_RAW_BANNER)
    while True:
        put(">")
        line = bytearray()
        while True:
            c = getc()
            if c == 0x01:
                if len(line) == 2 and line[0] == 0x05 and line[1] == ord("A"):
                    if raw_paste():
                        return "reset"
                    line = None
                    break
                put(_RAW_BANNER)
                put(">")
                line = bytearray()
            elif c == 0x02:
                put("\r\n")
                return "friendly"
            elif c == 0x03:
                line = bytearray()
            elif c == 0x04:
                break
            else:
                line.append(c)
        if line is None:
            continue
        if not line:
            put("OK\r\n")
            return "reset"
        src = decode(line)
        del line
        if execute_raw("OK", src):
            return "reset"


# ----------------------------------------------------------- friendly REPL

_CANCEL, _RAW, _FRIENDLY, _RESET, _PASTE, _LINE = range(6)


def read_line(prompt):
    """Read one edited line; returns (kind, text)."""
    put(prompt)
    line = bytearray()
    last = 0
    while True:
        c = getc()
        prev, last = last, c
        if c == 0x0A and prev == 0x0D:
            continue  # CR LF from a terminal is one Enter
        if c in (0x0D, 0x0A):
            return _LINE, line  # echoed by the caller: "\r\n" may start running code
        if c == 0x01:
            put("\r\n")
            return _RAW, ""
        if c == 0x02:
            put("\r\n")
            return _FRIENDLY, ""
        if c == 0x03:
            put("\r\n")
            return _CANCEL, ""
        if c == 0x04:
            if not line:
                put("\r\n")
                return _RESET, ""
        elif c == 0x05:
            return _PASTE, ""
        elif c in (0x08, 0x7F):
            if line:
                # Drop a whole UTF-8 sequence, not just its last byte.
                while line and (line[-1] & 0xC0) == 0x80:
                    line.pop()
                if line:
                    line.pop()
                put("\b \b")
        elif c == 0x1B:
            # Swallow cursor-key escape sequences (ESC [ ... letter).
            if getc() == ord("["):
                while True:
                    k = getc()
                    if 0x40 <= k <= 0x7E:
                        break
        elif c == 0x09:
            line.extend(b"    ")
            put("    ")
        elif c >= 0x20:
            line.append(c)
            _B1[0] = c
            _OUT.write(_B1)


def open_depth(src):
    """Bracket depth and whether a triple-quoted string is still open."""
    depth = 0
    i = 0
    n = len(src)
    while i < n:
        ch = src[i]
        if ch == "#":
            while i < n and src[i] != "\n":
                i += 1
            continue
        if ch in "'\"":
            triple = src[i : i + 3] == ch * 3
            quote = ch * 3 if triple else ch
            i += len(quote)
            while i < n and src[i : i + len(quote)] != quote:
                if src[i] == "\\":
                    i += 1
                elif src[i] == "\n" and not triple:
                    break
                i += 1
            if i >= n and triple:
                return depth, True
            i += len(quote)
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        i += 1
    return depth, False


def needs_more(lines):
    src = "\n".join(lines)
    depth, in_string = open_depth(src)
    if depth > 0 or in_string:
        return True
    last = lines[-1].rstrip()
    if last.endswith("\\"):
        return True
    if len(lines) == 1:
        return last.endswith(":")
    return last != ""


def _repl_print(value):
    # What the compiler calls for an expression statement typed at the REPL.
    if value is not None:
        print(repr(value))


def execute_friendly(src, mode):
    """Echo the newline and run REPL input ("single" prints expression values).

    True on soft reset.
    """
    try:
        run_armed("\r\n", src, "<stdin>", mode)
    except SystemExit as exc:
        return is_soft_reset(exc)
    except BaseException as exc:  # noqa: B036
        print_exc(exc)
    return False


def paste_mode():
    put("\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
    data = bytearray()
    while True:
        c = getc()
        if c == 0x03:
            put("\r\n")
            return None
        if c == 0x04:
            return data  # the newline is echoed when the code starts
        if c == 0x0D:
            data.append(0x0A)
            put("\r\n=== ")
        elif c != 0x0A:
            data.append(c)
            _B1[0] = c
            _OUT.write(_B1)


def friendly_repl(greet):
    """The friendly REPL (with the banner if `greet`); returns "raw" or "reset"."""
    if greet:
        banner()
    lines = []
    while True:
        kind, text = read_line("... " if lines else ">>> ")
        if kind == _RAW:
            return "raw"
        if kind == _RESET:
            if not lines:
                return "reset"
            continue
        if kind == _FRIENDLY:
            banner()
            lines = []
            continue
        if kind == _CANCEL:
            lines = []
            continue
        if kind == _PASTE:
            lines = []
            data = paste_mode()
            if data is None:
                continue
            src = decode(data)
            if src is None:
                put("\r\n" + _NOT_UTF8)
            elif execute_friendly(src, "exec"):
                return "reset"
            continue
        text = decode(text)
        if text is None:
            put("\r\n" + _NOT_UTF8)
            lines = []
            continue
        lines.append(text)
        if needs_more(lines):
            put("\r\n")
            continue
        src = "\n".join(lines)
        lines = []
        if not src.strip():
            put("\r\n")
        elif execute_friendly(src, "single"):
            return "reset"


# ------------------------------------------------------------------ board


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "power"
    mount_flash()
    builtins.print = _cooked_print
    builtins.__repl_print__ = _repl_print
    if mode in ("soft", "raw"):
        put("MPY: soft reboot\r\n")
    if run_file("boot.py"):
        sys.exit(EXIT_SOFT_RAW if mode == "raw" else EXIT_SOFT)
    repl = "raw"
    if mode != "raw":
        if run_file("main.py"):
            sys.exit(EXIT_SOFT)
        repl = "friendly"
    greet = True
    while True:
        try:
            if repl == "raw":
                repl = raw_repl()
                if repl == "reset":
                    sys.exit(EXIT_SOFT_RAW)
            else:
                repl = friendly_repl(greet)
                if repl == "reset":
                    sys.exit(EXIT_SOFT)
            greet = True
        except KeyboardInterrupt:
            # A Ctrl-C that reached the ROM itself (code had just ended): a fresh prompt.
            disarm()
            put("\r\n")
            greet = False
        except Exception as exc:  # noqa: BLE001 -- a fault of the ROM must not end the board
            put("\r\n")
            print_exc(exc)
            greet = False


main()

# ROM of the sisnbms virtual board (MicroPython code, run by the unix port).
#
# It plays the part of a real board's C firmware: it runs boot.py and main.py
# from the board's flash, then the friendly REPL and the raw REPL that mpremote
# and pyboard.py speak. host.vboard.board starts it as
#
#     micropython vboard_rom.py MODE
#
# with the flash folder as working directory and stdin/stdout on the master
# side of a pseudo-terminal (the board's USB serial port). MODE:
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
import builtins
import io
import os
import sys

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
    if not _IN.readinto(_B1):
        # The supervisor closed the port: the board is being switched off.
        sys.exit(0)
    return _B1[0]


def print_exc(exc):
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    lines = [ln for ln in buf.getvalue().split("\n") if _ROM_FILE not in ln]
    put("\r\n".join(lines))


def is_soft_reset(exc):
    return not exc.args or exc.args[0] == EXIT_SOFT


class _BoardOs:
    """The unix port's os with a board's ilistdir: (name, type, inode, size).

    VfsPosix leaves the size out, so mpremote's `fs ls` would show 0 for every
    file; a board's FAT or littlefs gives it. Everything else is the real os.
    """

    def __getattr__(self, name):
        return getattr(os, name)

    def ilistdir(self, path=""):
        prefix = path.rstrip("/") + "/" if path not in ("", ".") else ""
        for entry in os.ilistdir(path):
            size = 0
            if entry[1] == 0x8000:  # a regular file
                try:  # noqa: SIM105 -- MicroPython has no contextlib
                    size = os.stat(prefix + entry[0])[6]
                except OSError:
                    pass
            yield (entry[0], entry[1], entry[2], size)


def mount_flash():
    # The flash folder becomes "/", so paths mpremote sends (":/main.py",
    # ":bms/core.py") land in it exactly as on a board.
    root = os.getcwd()
    try:  # noqa: SIM105 -- MicroPython has no contextlib
        os.umount("/")
    except OSError:
        pass
    os.mount(os.VfsPosix(root), "/")
    os.chdir("/")
    sys.modules["os"] = _BoardOs()
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
            code = compile(f.read(), path, "exec")
        exec(code, _globals)
    except SystemExit as exc:
        if is_soft_reset(exc):
            return True
    except BaseException as exc:  # noqa: B036 -- a board prints whatever ends main.py
        print_exc(exc)
    return False


# ---------------------------------------------------------------- raw REPL


def execute_raw(src):
    """Run one raw-REPL command: output, 0x04, error text, 0x04. True on soft reset."""
    reset = False
    try:
        exec(compile(src, "<stdin>", "exec"), _globals)
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
        data.append(c)
        used += 1
        if used == _PASTE_WINDOW:
            put(b"\x01")
            used = 0
    put("\x04")
    try:
        src = data.decode()
    except UnicodeError as exc:
        put("\x04")
        print_exc(exc)
        put("\x04")
        return False
    del data
    return execute_raw(src)


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
        put("OK")
        if not line:
            put("\r\n")
            return "reset"
        try:
            src = line.decode()
        except UnicodeError as exc:
            put("\x04")
            print_exc(exc)
            put("\x04")
            continue
        del line
        if execute_raw(src):
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
            put("\r\n")
            return _LINE, line.decode()
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
    """Run REPL input ("single": expression values are printed). True on soft reset."""
    try:
        exec(compile(src, "<stdin>", mode), _globals)
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
            put("\r\n")
            return data.decode()
        if c == 0x0D:
            data.append(0x0A)
            put("\r\n=== ")
        elif c != 0x0A:
            data.append(c)
            _B1[0] = c
            _OUT.write(_B1)


def friendly_repl():
    """The friendly REPL; returns "raw" or "reset"."""
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
            src = paste_mode()
            if src and execute_friendly(src, "exec"):
                return "reset"
            continue
        lines.append(text)
        if needs_more(lines):
            continue
        src = "\n".join(lines)
        lines = []
        if src.strip() and execute_friendly(src, "single"):
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
    while True:
        if repl == "raw":
            repl = raw_repl()
            if repl == "reset":
                sys.exit(EXIT_SOFT_RAW)
        else:
            repl = friendly_repl()
            if repl == "reset":
                sys.exit(EXIT_SOFT)


main()

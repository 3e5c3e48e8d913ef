"""Why a serial port could not be opened, in the user's words rather than pyserial's.

pyserial wraps the system's error twice ("[Errno 21] could not open port /tmp: [Errno 21]
Is a directory: '/tmp'") and says nothing of the usual causes: the board is not plugged in,
the path is no serial port at all, another program holds it, or the user may not open it.
Every place that opens a port (the asyncio and lock-step links, the recovery before a run)
reports through open_error, so the same fault reads the same everywhere.
"""

from __future__ import annotations

import errno
import os
import stat

from cellmodel.errors import InputError
from cellmodel.files import file_kind

_PREFIX = "cannot open serial port"


def open_error(port: str, exc: BaseException) -> InputError:
    """The InputError (naming --port and the port) for `exc`, raised opening `port`."""
    return InputError("--port", port, f"{_PREFIX}: {_why(port, exc)}")


def _why(port: str, exc: BaseException) -> str:
    if "://" not in port:  # a pyserial URL (socket://, rfc2217://) is no path to look at
        try:
            st = os.stat(port)
        except FileNotFoundError:
            return "no such port (is the board plugged in?)"
        except OSError:
            st = None
        if st is not None and not stat.S_ISCHR(st.st_mode):
            return f"not a serial port ({file_kind(st.st_mode)})"
    code = _errno(exc)
    if code == errno.ENOTTY:
        return "not a serial port (a device that is no terminal)"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied (on Linux: add yourself to the dialout group)"
    if code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in str(exc):
        return "in use by another program (a terminal, mpremote or another run)"
    return str(exc)


def _errno(exc: BaseException) -> int | None:
    """The system error number behind `exc`, which pyserial may keep only in its text or
    its arguments (SerialException(errno, text), or "Could not configure port: (25, ...)")."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    for arg in exc.args:
        if isinstance(arg, int):
            return arg
    text = str(exc)
    for code in (errno.ENOTTY, errno.EACCES, errno.EBUSY, errno.EAGAIN):
        if f"[Errno {code}]" in text or f"({code}, " in text:
            return code
    return None

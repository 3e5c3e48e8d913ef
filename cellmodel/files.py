"""Reading input files and writing output files, the same way everywhere.

Inputs: `read_text` turns every way a file can be unreadable (missing, a folder, a
device or FIFO such as /dev/zero, no permission, not UTF-8) into an InputError naming
the file and the reason, so the CLI exits 2 with a message instead of a traceback;
`check_input_file` is its check that a path is a regular file, without reading it.

Outputs: `check_output_dir` refuses an output folder that cannot be one before anything
is created; `atomic_path` and `write_text_atomic` write a file whole or not at all (a
temporary file in the same folder, then a rename), so a crash or Ctrl-C never leaves a
half-written log, plot or summary under the final name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from cellmodel.errors import InputError


def read_text(path: str | Path, source: str | None = None, what: str = "file") -> str:
    """The UTF-8 text of `path` (a leading BOM dropped); InputError(source or path, what, why).

    `what` is the field the error names ("file", or e.g. "profile").
    """
    path = Path(path)
    src = str(path) if source is None else source
    try:
        data = _read_regular(path, src, what)
    except OSError as exc:
        raise InputError(src, what, f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            src, what, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def check_input_file(path: str | Path, source: str, field: str) -> Path:
    """`path` if it names a regular file (or a link to one); InputError otherwise.

    A device, FIFO or socket (`/dev/zero`, a named pipe) is refused without being opened:
    reading one may never end, or block, or exhaust memory.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InputError(source, field, f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise InputError(source, field, f"cannot read {path}: Is a directory")
    if not stat.S_ISREG(mode):
        raise InputError(source, field, f"{path} is not a regular file ({file_kind(mode)})")
    return path


def file_kind(mode: int) -> str:
    """What a path that is no regular file is, for a message."""
    for test, name in (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


def _read_regular(path: Path, source: str, what: str) -> bytes:
    """The bytes of a regular file; a device, FIFO or socket is refused before it is read."""
    check_input_file(path, source, what)
    # O_NONBLOCK: should the path have become a FIFO since, opening it does not wait.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(source, what, f"{path} is not a regular file ({file_kind(mode)})")
        return f.read()


def check_output_dir(path: str | Path, source: str, field: str) -> Path:
    """An output folder that exists as a folder or can be created; nothing is created here."""
    text = str(path)
    if not text.strip():
        raise InputError(source, field, "empty: name an output folder")
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(source, field, f"{out} exists and is not a folder")
    existing = out
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise InputError(source, field, f"{existing} is not a folder")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(source, field, f"{existing} is not writable")
    return out


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path`: write it in the block; it becomes `path` when the block
    ends without an exception, else it is removed. The folder is created if missing."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    # A fresh hidden name per write, created by the writer with the usual permissions; the
    # suffix keeps the format writers choose by it (.png, .parquet).
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp{final.suffix}")
    try:
        yield Path(tmp)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` whole or not at all."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)

"""Reading input files and writing output files, the same way everywhere.

Inputs: `read_text` turns every way a file can be unreadable (missing, a folder, a
device or FIFO such as /dev/zero, no permission, not UTF-8) into an InputError naming
the file and the reason (anything but a regular file, a folder included, is "PATH is not
a regular file (a directory)", "(a FIFO)", ...), so the CLI exits 2 with a message
instead of a traceback;
`check_input_file` is its check that a path is a regular file, without reading it.
Every input file is read whole into memory, so each kind has a size cap (`SizeCap`:
TOML_CAP for cell, board, scenario and campaign files, PROFILE_CAP for profiles and
BDF logs run as profiles), checked from the file's stat before a byte is read
(docs/cli.md, "Input file sizes").

`read_once()` is a scope within which a loader marked `loaded_once` (a cell file, a board
file) loads each file once: a campaign checks hundreds of runs that read the same few.

Outputs: `check_output_dir` refuses an output folder that cannot be one (a file, under a
file, in a folder where no file can be created: `check_writable` tries) before anything
is created; `atomic_path` and `write_text_atomic` write a file whole or not at all (a
temporary file in the same folder, then a rename), so a crash or Ctrl-C never leaves a
half-written log, plot or summary under the final name.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from cellmodel.errors import InputError

MiB = 1024 * 1024
P = ParamSpec("P")
T = TypeVar("T")
_LOADED: ContextVar[dict[Any, Any] | None] = ContextVar("sisnbms_loaded_once", default=None)


@contextlib.contextmanager
def read_once() -> Iterator[None]:
    """Within it, a `loaded_once` loader called again with the same arguments returns what it
    returned the first time (an error is raised again each time): for many checks that read
    the same files, which do not change meanwhile (a campaign's runs, checked up front)."""
    token = _LOADED.set({})
    try:
        yield
    finally:
        _LOADED.reset(token)


def loaded_once(loader: Callable[P, T]) -> Callable[P, T]:
    """`loader` (of hashable arguments, its result not to be modified) kept within read_once."""

    @functools.wraps(loader)
    def load(*args: P.args, **kwargs: P.kwargs) -> T:
        loaded = _LOADED.get()
        if loaded is None:
            return loader(*args, **kwargs)
        key = (loader, args, tuple(sorted(kwargs.items())))
        if key not in loaded:
            loaded[key] = loader(*args, **kwargs)
        return loaded[key]

    return load


@dataclass(frozen=True)
class SizeCap:
    """The largest file of one kind the host reads: it is read whole, then parsed."""

    max_bytes: int
    kind: str  # for the message: "over the 4 MiB limit for a {kind}"

    def describe(self) -> str:
        return _size_text(self.max_bytes, exact=False)


# Cell, board, scenario and campaign files: TOML of a few tables and lists. The largest
# shipped one (a campaign) is 7 kB, a cell file 4 kB; a cell with 10,000-point OCV tables
# would be about 0.3 MB. 4 MiB leaves room for any hand- or script-made file.
TOML_CAP = SizeCap(4 * MiB, "TOML file (cell, board, scenario, campaign)")
# Profiles, and BDF logs replayed as profiles (other columns ignored). The widest log is
# an emulation of 16 cells: 47 columns, about 300 bytes a row, so 48 h at a 1 s period
# (172,800 rows) is about 52 MB and a week about 180 MB; a plain time_s,current_A profile
# of the 2,000,000-row limit (cellmodel.profile.MAX_ROWS) is about 40 MB. Reading takes a
# few times the file's size in memory (bytes, text, lines) at its peak.
PROFILE_CAP = SizeCap(256 * MiB, "profile or BDF log")


def read_text(
    path: str | Path, source: str | None = None, what: str = "file", *, cap: SizeCap = TOML_CAP
) -> str:
    """The UTF-8 text of `path` (a leading BOM dropped); InputError(source or path, what, why).

    `what` is the field the error names ("file", or e.g. "profile"). A file larger than
    `cap` (by default that of a TOML file) is refused before it is read.
    """
    path = Path(path)
    src = str(path) if source is None else source
    try:
        data = _read_regular(path, src, what, cap)
    except OSError as exc:
        raise InputError(src, what, f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            src, what, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def expand_home(path: str | Path) -> Path:
    """`path` with a leading `~` or `~user` made that home folder, as a shell would. A `~user`
    of no user stays as written (pathlib raises RuntimeError there): the file is then
    missing and reported as such, naming what was written."""
    path = Path(path)
    try:
        return path.expanduser()
    except RuntimeError:
        return path


def input_file_problem(path: str | Path, cap: SizeCap | None = None) -> str | None:
    """Why `path` is not a regular file (or a link to one) no larger than `cap` (when given),
    or None when it is; the reason alone, for a caller that names where the path was
    written in its own way (check_input_file: an InputError)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    return _stat_problem(path, st, cap)


def check_input_file(path: str | Path, source: str, field: str, cap: SizeCap | None = None) -> Path:
    """`path` if it names a regular file (or a link to one) no larger than `cap` (when
    given); InputError otherwise (input_file_problem).

    A device, FIFO or socket (`/dev/zero`, a named pipe) is refused without being opened:
    reading one may never end, or block, or exhaust memory.
    """
    problem = input_file_problem(path, cap)
    if problem is not None:
        raise InputError(source, field, problem)
    return Path(path)


def _stat_problem(path: Path, st: os.stat_result, cap: SizeCap | None) -> str | None:
    mode = st.st_mode
    if not stat.S_ISREG(mode):  # a folder too: the same words as for a FIFO or a device
        return f"{path} is not a regular file ({file_kind(mode)})"
    if cap is not None and st.st_size > cap.max_bytes:
        return _too_large(path, st.st_size, cap)
    return None


def _too_large(path: Path, size: int, cap: SizeCap) -> str:
    return f"{path} is {_size_text(size)}, over the {cap.describe()} limit for a {cap.kind}"


def _size_text(n_bytes: int, *, exact: bool = True) -> str:
    """'4 MiB', '2.5 GiB (2,684,354,560 bytes)'."""
    for unit, scale in (("GiB", 1024 * MiB), ("MiB", MiB), ("KiB", 1024)):
        if n_bytes >= scale:
            value = f"{n_bytes / scale:.3g} {unit}"
            return f"{value} ({n_bytes:,} bytes)" if exact else value
    return f"{n_bytes:,} bytes"


def file_kind(mode: int) -> str:
    """What a path is, for a message that says it is not what was wanted."""
    for test, name in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


def _read_regular(path: Path, source: str, what: str, cap: SizeCap) -> bytes:
    """The bytes of a regular file of at most cap.max_bytes; a device, FIFO or socket, or a
    larger file, is refused before it is read."""
    check_input_file(path, source, what, cap)
    # O_NONBLOCK: should the path have become a FIFO since, opening it does not wait.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        problem = _stat_problem(path, st, cap)
        if problem is not None:
            raise InputError(source, what, problem)
        data = f.read(cap.max_bytes + 1)  # a file that grew since is not read on
        if len(data) > cap.max_bytes:
            raise InputError(source, what, _too_large(path, max(st.st_size, len(data)), cap))
        return data


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
        _no_dangling_link(existing, source, field)
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise InputError(source, field, f"{existing} is not a folder")
    check_writable(existing, source, field)
    return out


def _no_dangling_link(path: Path, source: str, field: str) -> None:
    """InputError if `path` is a symbolic link to nothing: no folder can be made there (the
    link's name is taken), and mkdir would fail with a bare 'File exists'."""
    if path.is_symlink():
        raise InputError(
            source, field, f"{path} is a link to {os.readlink(path)}, which does not exist"
        )


def check_writable(folder: Path, source: str, field: str) -> None:
    """Create and remove a file in `folder`, InputError(source, field, why) if that fails:
    os.access says yes to root where the file system says no (/proc, /sys, a read-only
    mount), and the command would then fail on its first write, naming no option."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".sisnbms-probe-", dir=folder)
    except OSError as exc:
        raise InputError(
            source, field, f"cannot write in {folder}: {exc.strerror or exc}"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


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
        try:
            os.replace(tmp, final)
        except OSError as exc:
            # The rename's error names the hidden temporary file; the user knows `path`
            # (a folder standing where the file belongs: "PATH: Is a directory").
            raise OSError(exc.errno, exc.strerror, str(final)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` whole or not at all."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)

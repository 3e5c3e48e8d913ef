"""Reading input files and writing output files, the same way everywhere.

Inputs: `read_text` turns every way a file can be unreadable (missing, a folder, no
permission, not UTF-8) into an InputError naming the file and the reason, so the CLI
exits 2 with a message instead of a traceback.

Outputs: `check_output_dir` refuses an output folder that cannot be one before anything
is created; `atomic_path` and `write_text_atomic` write a file whole or not at all (a
temporary file in the same folder, then a rename), so a crash or Ctrl-C never leaves a
half-written log, plot or summary under the final name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
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
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(src, what, f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            src, what, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


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

"""Output files named on the command line, checked before anything runs or is written.

`check_output_file` refuses, as bad input naming the option (exit 2): an empty name, a
name without one of the command's extensions (`NAME.bdf.csv`, `FILE.md`), a target that
is a folder or exists and is not a regular file (a FIFO, a device such as /dev/full: a
rename would replace it), and a folder that is missing (where it must exist), is not a
folder, or cannot be written in. An existing regular file of the right name is replaced
when the command ends well.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path

from cellmodel.errors import InputError
from cellmodel.files import check_output_dir, file_kind
from host.cli.options import CLI


def check_output_file(
    path: str | Path,
    field: str,
    suffixes: Sequence[str],
    *,
    source: str = CLI,
    parent_must_exist: bool = False,
) -> Path:
    """`path` if a command can write its output file there; InputError(source, field, why).

    suffixes: the names allowed (`NAME` + one of them, NAME not empty). parent_must_exist:
    refuse a folder that does not exist yet instead of creating it when writing.
    """
    text = str(path)
    if not text.strip():
        raise InputError(source, field, "empty: name an output file")
    out = Path(text)
    if out.exists():
        mode = out.stat().st_mode
        if stat.S_ISDIR(mode):
            raise InputError(source, field, f"{out} is a folder; give a file name")
        if not stat.S_ISREG(mode):
            kind = file_kind(mode)
            raise InputError(source, field, f"{out} exists and is not a regular file ({kind})")
    if not any(out.name.endswith(s) and len(out.name) > len(s) for s in suffixes):
        names = " or ".join(f"NAME{s}" for s in suffixes)
        raise InputError(source, field, f"{text}: the file name must be {names}")
    folder = out.parent
    if parent_must_exist and not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(source, field, f"folder {folder} {why}")
    check_output_dir(folder, source, field)  # a folder there, or one that can be made
    return out

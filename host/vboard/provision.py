"""Fill a virtual board's flash folder as `sisnbms flash --source` fills a real board's.

The files come from host.image, the one maker of a board's flash image.

Layout (docs/internals.md): boot.py, main.py, bms/*.py, adapters/*.py,
board.json, bms_config.json. The firmware's own bms_state.json is left alone,
so provisioning again keeps the persisted state as reflashing a board does.

Each file is written whole (a temporary file, then a rename) and nothing in
the folder is followed: a board's filesystem has no links, so a symbolic
link found there (code running on the board could make one, pointing at a
host file) is replaced, never written through.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from host.boards import Board
from host.image import config_files, firmware_sources

if TYPE_CHECKING:
    from cellmodel import CellDesign


def has_firmware(flash_dir: str | os.PathLike[str]) -> bool:
    return (Path(flash_dir) / "main.py").is_file()


def provision_flash(
    flash_dir: str | os.PathLike[str],
    design: CellDesign | str | None,
    board: Board | str = "virtual",
) -> list[str]:
    """Copy the firmware sources and write board.json and bms_config.json; return board paths."""
    flash = Path(flash_dir)
    # The configuration first: a design the firmware refuses (InputError) leaves no folder.
    config = list(config_files(design, board).items())
    files = [(rel, src.read_bytes()) for rel, src in firmware_sources()] + config
    flash.mkdir(parents=True, exist_ok=True)
    for rel, data in files:
        write_flash_file(flash, rel, data)
    return [rel for rel, _ in files]


def write_flash_file(flash: Path, rel: str, data: bytes) -> None:
    """Write `data` to flash/rel whole, following no link inside the flash folder."""
    folder = flash
    for part in Path(rel).parent.parts:
        folder = folder / part
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            folder.unlink()  # a board's folders are folders
        folder.mkdir(exist_ok=True)
    # mkstemp creates a new name (O_EXCL): a link planted at a fixed .tmp name is not used.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".provision-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, flash / rel)  # replaces a link or special file, never writes through it
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

"""Fill a virtual board's flash folder as `sisnbms flash --source` fills a real board's.

The files come from host.image, the one maker of a board's flash image.

Layout (docs/internals.md): boot.py, main.py, bms/*.py, adapters/*.py,
board.json, bms_config.json. The firmware's own bms_state.json is left alone,
so provisioning again keeps the persisted state as reflashing a board does.
"""

from __future__ import annotations

import os
import shutil
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
    flash.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for rel, src in firmware_sources():
        dest = flash / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        written.append(rel)
    for rel, data in config_files(design, board).items():
        tmp = flash / (rel + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, flash / rel)
        written.append(rel)
    return written

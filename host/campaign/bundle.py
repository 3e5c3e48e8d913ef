"""A run's scenario as a self-contained bundle: the expanded TOML and every file it reads.

A scenario reads files by relative path: `cell` and `bms_cell` files (and the files
they `extends`), and `Run PROFILE.csv` steps. A campaign run executes somewhere
else (a worker process's temporary folder, a Dask worker on another machine) and
is reproduced from out/runs/<id>/, so each run carries copies of those files under
`files/` and its scenario names them there. Preset cell names are not files: every
installation of sisnbms has them.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import tomli_w

from cellmodel import list_cells, resolve_cell
from cellmodel.errors import InputError
from cellmodel.files import PROFILE_CAP, TOML_CAP, SizeCap, expand_home, read_text
from host.scenarios.steps import DriveStep, parse_scenario_step

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # pyright: ignore[reportMissingImports]

FILES_DIR = "files"
CELL_KEYS = ("cell", "bms_cell")
_MAX_EXTENDS_DEPTH = 8


def is_preset(ref: str) -> bool:
    """cellmodel's rule: a bare name of a shipped preset, not a path."""
    return "/" not in ref and "\\" not in ref and not ref.endswith(".toml") and ref in list_cells()


def absolute_cell(ref: Any, beside: Path, source: str, key: str) -> Any:
    """A cell reference (`cell`, `bms_cell`) as an absolute path, read from the folder of
    `beside`: the file that wrote it (the scenario, or the campaign file for an axis value).
    A preset name, or a value the scenario parser refuses, is returned as it is. A name that
    is neither a preset nor a file there is refused here, as written: once absolute, it would
    be reported as a path the user never wrote."""
    if isinstance(ref, str) and ref and not is_preset(ref):
        return str(resolve_cell(ref, beside, source, key))
    return ref


def absolute_steps(data: dict[str, Any], origin: Path, source: str) -> dict[str, Any]:
    """A copy of scenario `data` whose `Run PROFILE` steps name absolute paths from `origin`."""
    out = dict(data)
    steps = out.get("steps")
    if isinstance(steps, list):
        out["steps"] = [
            _run_step(text, origin, source, i) if isinstance(text, str) else text
            for i, text in enumerate(steps)
        ]
    return out


def _absolute(ref: str, origin: Path) -> Path:
    path = expand_home(ref)
    return path if path.is_absolute() else origin / path


def _run_step(text: str, origin: Path, source: str, index: int) -> str:
    """'Run PROFILE.csv' with the profile's path made absolute; other steps unchanged."""
    step = parse_scenario_step(text, source, f"steps[{index}]")
    if not isinstance(step, DriveStep) or step.step.kind != "run":
        return text
    return f"Run {_absolute(step.step.profile_path or '', origin)}"


class Bundle:
    """The files of one run, each under files/NAME (NAME: the file's own name, made unique)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.files: dict[str, str] = {}
        self._by_path: dict[Path, str] = {}

    def pack(self, data: dict[str, Any]) -> dict[str, Any]:
        """`data` (absolute references: absolute_cell, absolute_steps) pointing at files/NAME
        copies."""
        out = dict(data)
        for key in CELL_KEYS:
            ref = out.get(key)
            if isinstance(ref, str) and ref and not is_preset(ref):
                out[key] = self._cell(Path(ref), key, 0)
        steps = out.get("steps")
        if isinstance(steps, list):
            out["steps"] = [self._packed_step(t, i) for i, t in enumerate(steps)]
        return out

    def _packed_step(self, text: Any, index: int) -> Any:
        if not isinstance(text, str):
            return text
        step = parse_scenario_step(text, self.source, f"steps[{index}]")
        if not isinstance(step, DriveStep) or step.step.kind != "run":
            return text
        path = Path(step.step.profile_path or "")
        return f"Run {self._add(path, self._read(path, f'steps[{index}]', PROFILE_CAP))}"

    def _cell(self, path: Path, field: str, depth: int) -> str:
        """A cell file and the files it extends; `extends` rewritten to the copy's name."""
        if depth > _MAX_EXTENDS_DEPTH:
            raise InputError(self.source, field, f"{path}: extends chain too deep (a cycle?)")
        text = self._read(path, field)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(self.source, field, f"{path}: not valid TOML: {exc}") from None
        base = data.get("extends")
        if isinstance(base, str) and not is_preset(base):
            copy = self._cell(_absolute(base, path.parent), field, depth + 1)
            data["extends"] = Path(copy).name  # beside it in files/
            text = tomli_w.dumps(data)
        return self._add(path, text)

    def _read(self, path: Path, field: str, cap: SizeCap = TOML_CAP) -> str:
        try:
            return read_text(path, cap=cap)
        except InputError as exc:
            raise InputError(self.source, field, f"{path}: {exc.reason}") from None

    def _add(self, path: Path, text: str) -> str:
        key = path.resolve()
        if key in self._by_path:
            return self._by_path[key]
        name = f"{FILES_DIR}/{path.name}"
        if name in self.files and self.files[name] != text:
            digest = hashlib.sha256(str(key).encode()).hexdigest()[:8]
            name = f"{FILES_DIR}/{path.stem}-{digest}{path.suffix}"
        self.files[name] = text
        self._by_path[key] = name
        return name

"""Build a target from MicroPython source into a cache, once per (source, target, board files).

Cache layout (default ~/.cache/sisnbms/micropython, or --out DIR):

    src-<sha16>/                  an unpacked source tarball
    mpy-cross-<sha16>/mpy-cross   mpy-cross of that source (freezes modules into the builds)
    <target>-<key16>/             one build: the binary (micropython or firmware.elf),
                                  build.json (what it was built from, how long it took),
                                  build.log (make's output)

The key hashes the source, the target, the make arguments and the board files the build
reads (boards/qemu/ for the qemu target), so editing any of them builds again. An entry
appears whole or not at all: it is built in a work folder and renamed into place.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cellmodel.errors import InputError
from host.micropython.source import Source, resolve_source
from host.micropython.targets import UNIX32_MANIFEST, UNIX32_TARGET, Target, get_target
from host.micropython.toolchain import require_toolchain
from host.resources import boards_dir

# Bump when the way a build is made changes without its inputs changing.
RECIPE_VERSION = 1
CACHE_ENV = "SISNBMS_MICROPYTHON_CACHE"
_LOG_TAIL_LINES = 25
# Emulated RAM of the qemu board (nrf51-soc.sram-size in boards/qemu/mpconfigboard.mk).
QEMU_RAM_BYTES = 256 * 1024
QEMU_STACK_BYTES = 8192


class BuildFailed(Exception):
    """make failed or the result does not fit the board (exit code 1)."""


@dataclass
class BuildResult:
    target: str
    path: Path
    """The binary: the unix-32 interpreter, or the qemu board's firmware.elf."""
    entry: Path
    """Its cache folder (build.json and build.log beside the binary)."""
    mpy_cross: Path
    cached: bool
    wall_s: float
    """Wall time of this call (a cache hit takes well under a second)."""
    build_wall_s: float
    """Wall time the build took when it was made (make only, without mpy-cross)."""
    key: str
    source: str
    source_sha256: str
    info: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("path", "entry", "mpy_cross"):
            out[name] = str(out[name])
        return out


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sisnbms" / "micropython"


def build_target(
    target_name: str,
    source: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    jobs: int | None = None,
) -> BuildResult:
    """The target's binary built from `source` (tree or tarball), from the cache when it can.

    InputError (exit 2) for an unknown target, a bad source, a missing toolchain or an
    unusable output folder; BuildFailed (exit 1) when make fails.
    """
    t0 = time.monotonic()
    target = get_target(target_name)
    root = _cache_root(out)
    src = resolve_source(source, root)
    if not (src.root / "ports" / target.port / "Makefile").is_file():
        raise InputError("--source", str(src.origin), f"has no ports/{target.port}")
    key = cache_key(target, src)
    entry = root / f"{target.name}-{key[:16]}"
    with _locked(root, key):
        if not (entry / target.artifact).is_file():
            require_toolchain(target)
            mpy_cross = _mpy_cross(src, root, jobs)
            _build(target, src, key, entry, mpy_cross, jobs)
            cached = False
        else:
            cached = True
    return _result(entry, target, cached, time.monotonic() - t0)


def latest_build(target_name: str, out: str | os.PathLike[str] | None = None) -> BuildResult | None:
    """The most recent cached build of a target, or None (for boards that need one built)."""
    target = get_target(target_name)
    root = Path(out) if out is not None else default_cache_dir()
    entries = (
        [p for p in root.glob(f"{target.name}-*") if (p / target.artifact).is_file()]
        if root.is_dir()
        else []
    )
    if not entries:
        return None
    newest = max(entries, key=lambda p: (p / "build.json").stat().st_mtime)
    return _result(newest, target, True, 0.0)


def cache_key(target: Target, src: Source) -> str:
    digest = hashlib.sha256()
    placeholder = Path("@")
    recipe = {
        "recipe": RECIPE_VERSION,
        "target": target.name,
        "source": src.sha256,
        # where the checkout is does not change the binary: builds are shared between clones
        "make": [
            a.replace(str(boards_dir()), "@boards")
            for a in target.make_args(placeholder, placeholder, placeholder)
        ],
        "manifest": UNIX32_MANIFEST if target.name == UNIX32_TARGET else "",
        "board_files": board_files_sha256(target),
    }
    digest.update(json.dumps(recipe, sort_keys=True).encode())
    return digest.hexdigest()


def board_files_sha256(target: Target) -> str:
    """sha256 over the names (relative to boards/) and contents of the board files."""
    digest = hashlib.sha256()
    base = boards_dir()
    for path in target.board_files():
        digest.update(path.relative_to(base).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _cache_root(out: str | os.PathLike[str] | None) -> Path:
    root = Path(out) if out is not None else default_cache_dir()
    if any(c.isspace() for c in str(root.resolve())):
        raise InputError("--out", str(root), "make cannot build in a path with white space")
    if root.exists() and not root.is_dir():
        raise InputError("--out", str(root), "exists and is not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError("--out", str(root), f"cannot create it: {exc.strerror}") from exc
    if not os.access(root, os.W_OK):
        raise InputError("--out", str(root), "not writable")
    return root.resolve()


@contextlib.contextmanager
def _locked(root: Path, key: str) -> Iterator[None]:
    """One build of a key at a time (two test sessions may share a cache)."""
    with open(root / f".lock-{key[:16]}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _make(args: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write("$ " + " ".join(args) + "\n")
        out.flush()
        proc = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
        raise BuildFailed(
            f"make exited with status {proc.returncode} (full log: {log}):\n" + "\n".join(tail)
        )


def _jobs(jobs: int | None) -> str:
    return f"-j{jobs or os.cpu_count() or 1}"


def _mpy_cross(src: Source, root: Path, jobs: int | None) -> Path:
    entry = root / f"mpy-cross-{src.sha256[:16]}"
    binary = entry / "mpy-cross"
    if binary.is_file():
        return binary
    with tempfile.TemporaryDirectory(prefix=".work-mpy-cross-", dir=root) as tmp:
        staging = Path(tmp) / "entry"
        staging.mkdir()
        build = Path(tmp) / "build"
        _make(
            ["make", _jobs(jobs), "-C", str(src.root / "mpy-cross"), f"BUILD={build}"],
            staging / "build.log",
        )
        shutil.copy2(build / "mpy-cross", staging / "mpy-cross")
        _install(staging, entry)
    return binary


def _build(
    target: Target, src: Source, key: str, entry: Path, mpy_cross: Path, jobs: int | None
) -> None:
    root = entry.parent
    with tempfile.TemporaryDirectory(prefix=f".work-{target.name}-", dir=root) as tmp:
        work = Path(tmp)
        staging = work / "entry"
        staging.mkdir()
        lib = work / "mpy-lib"  # stands in for the absent micropython-lib
        lib.mkdir()
        (lib / "README.md").write_text("micropython-lib is not used by sisnbms builds\n")
        (lib / "manifest.py").write_text(UNIX32_MANIFEST)
        build = work / "build"
        args = target.make_args(build, mpy_cross, lib)
        log = staging / "build.log"
        t0 = time.monotonic()
        _make(["make", _jobs(jobs), "-C", str(src.root / "ports" / target.port), *args], log)
        seconds = time.monotonic() - t0
        shutil.copy2(build / target.artifact, staging / target.artifact)
        info: dict[str, Any] = {
            "target": target.name,
            "source": str(src.origin),
            "source_kind": src.kind,
            "source_sha256": src.sha256,
            "board_files_sha256": board_files_sha256(target),
            "key": key,
            "make_args": args,
            "build_seconds": round(seconds, 2),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "mpy_cross": str(mpy_cross),
        }
        if target.port == "qemu":
            info["memory"] = _qemu_memory(staging / target.artifact)
        (staging / "build.json").write_text(json.dumps(info, indent=2) + "\n")
        _install(staging, entry)


def _qemu_memory(elf: Path) -> dict[str, int]:
    """RAM the image takes (data + bss, the GC heap included); fails if the stack has no room."""
    out = (
        subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True)
        .stdout.split("\n")[1]
        .split()
    )
    text, data, bss = (int(v) for v in out[:3])
    ram = data + bss
    if ram + QEMU_STACK_BYTES > QEMU_RAM_BYTES:
        raise BuildFailed(
            f"{elf}: data + bss = {ram} B leave no room for the {QEMU_STACK_BYTES} B stack "
            f"in the board's {QEMU_RAM_BYTES} B of RAM"
        )
    return {
        "flash_bytes": text + data,
        "ram_static_bytes": ram,
        "ram_bytes": QEMU_RAM_BYTES,
        "ram_left_for_stack_bytes": QEMU_RAM_BYTES - ram,
    }


def _install(staging: Path, entry: Path) -> None:
    if entry.exists():  # an incomplete entry (its binary missing) from an older crash
        shutil.rmtree(entry)
    staging.rename(entry)


def _result(entry: Path, target: Target, cached: bool, seconds: float) -> BuildResult:
    info = json.loads((entry / "build.json").read_text())
    return BuildResult(
        target=target.name,
        path=entry / target.artifact,
        entry=entry,
        mpy_cross=Path(info["mpy_cross"]),
        cached=cached,
        wall_s=round(seconds, 3),
        build_wall_s=info["build_seconds"],
        key=info["key"],
        source=info["source"],
        source_sha256=info["source_sha256"],
        info=info,
    )

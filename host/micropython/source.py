"""The MicroPython source a build starts from: a source tree, or a tarball of one.

A tarball is identified by the sha256 of its bytes and unpacked once into the cache. A tree is
identified by the sha256 of the files the two ports' builds read (names and contents), so an
edited source builds again; build folders and .git are left out. Builds never write into a
source tree (every make runs with BUILD= outside it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cellmodel.errors import InputError
from cellmodel.files import check_input_file

# What ../shared/vendor/README.md lists as needed for the unix and qemu ports.
_HASHED = (
    "py",
    "extmod",
    "shared",
    "mpy-cross",
    "tools",
    "drivers",
    "ports/unix",
    "ports/qemu",
    "lib/libm",
    "lib/libm_dbl",
    "lib/littlefs",
    "lib/oofatfs",
    "lib/re1.5",
    "lib/uzlib",
    "lib/crypto-algorithms",
    "lib/mbedtls_errors",
)
_SKIPPED_DIRS = {".git", "__pycache__"}


@dataclass(frozen=True)
class Source:
    root: Path
    """The source tree make runs in (for a tarball, its unpacked copy in the cache)."""
    origin: Path
    """What --source named."""
    sha256: str
    kind: str  # "tarball" or "directory"


def is_source_tree(path: Path) -> bool:
    return (path / "py" / "mpconfig.h").is_file() and (path / "mpy-cross" / "Makefile").is_file()


def tree_sha256(root: Path) -> str:
    digest = hashlib.sha256()
    for top in _HASHED:
        base = root / top
        if not base.is_dir():
            continue
        for folder, dirs, files in os.walk(base):
            dirs[:] = sorted(
                d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith("build")
            )
            for name in sorted(files):
                path = Path(folder, name)
                if path.is_symlink() or not path.is_file():
                    continue
                digest.update(path.relative_to(root).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_source(path: str | os.PathLike[str], cache_root: Path) -> Source:
    """A buildable source tree from --source; InputError naming it when it is not one."""
    origin = Path(path)
    if origin.is_dir():
        if not is_source_tree(origin):
            raise InputError(
                "--source", str(origin), "not a MicroPython source tree (no py/mpconfig.h)"
            )
        root = origin.resolve()
        return Source(root, origin, tree_sha256(root), "directory")
    if not origin.exists():
        raise InputError("--source", str(origin), "no such file or directory")
    check_input_file(origin, "--source", str(origin))  # a device, a FIFO: there, refused unread
    if not tarfile.is_tarfile(origin):
        raise InputError(
            "--source", str(origin), "neither a MicroPython source tree nor a tarball of one"
        )
    sha = file_sha256(origin)
    return Source(_unpacked(origin, sha, cache_root), origin, sha, "tarball")


def _unpacked(tarball: Path, sha: str, cache_root: Path) -> Path:
    dest = cache_root / f"src-{sha[:16]}"
    if not dest.is_dir():
        cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".src-", dir=cache_root))
        try:
            try:
                with tarfile.open(tarball) as tar:
                    tar.extractall(staging, filter="data")
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise InputError("--source", str(tarball), f"cannot unpack: {exc}") from exc
            try:
                staging.rename(dest)
            except OSError:
                if not dest.is_dir():  # another build unpacked it meanwhile: use theirs
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    for candidate in (dest, *sorted(p for p in dest.iterdir() if p.is_dir())):
        if is_source_tree(candidate):
            return candidate
    raise InputError(
        "--source", str(tarball), "the tarball holds no MicroPython source tree (no py/mpconfig.h)"
    )


SOURCE_ENV = "SISNBMS_MICROPYTHON_SOURCE"
VENDOR_TARBALL = Path("shared") / "vendor" / "micropython-src.tar.gz"


def vendor_source() -> Path | None:
    """The vendored MicroPython tarball: $SISNBMS_MICROPYTHON_SOURCE, else
    ../shared/vendor/micropython-src.tar.gz beside this checkout (or beside the main checkout
    of a git worktree); None when there is none."""
    env = os.environ.get(SOURCE_ENV)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    candidates = [repo.parent / VENDOR_TARBALL]
    git = repo / ".git"
    if git.is_file():  # a worktree: "gitdir: <main>/.git/worktrees/<name>"
        text = git.read_text().strip()
        if text.startswith("gitdir:"):
            main_git = Path(text.split(":", 1)[1].strip()).resolve().parents[1]
            candidates.append(main_git.parent.parent / VENDOR_TARBALL)
    return next((c for c in candidates if c.is_file()), None)

"""`sisnbms micropython build`: cached builds, the JSON shape, bad input, and what was built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from host.cli.main import main
from host.micropython import BuildResult
from host.micropython.source import tree_sha256

REPO = Path(__file__).resolve().parents[2]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["micropython", "build", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("target", ["unix-32", "qemu-cortex-m0"])
def test_second_build_is_a_cache_hit_with_the_json_shape(
    target: str,
    request: pytest.FixtureRequest,
    mp_source: Path,
    mp_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    built: BuildResult = request.getfixturevalue(
        "unix32" if target == "unix-32" else "qemu_firmware"
    )
    args = ["--target", target, "--source", str(mp_source), "--out", str(mp_cache), "--json"]
    code, out, err = _cli(capsys, *args)
    assert code == 0, err
    result = json.loads(out)
    assert result["cached"] is True and result["path"] == str(built.path)
    assert result["target"] == target and Path(result["path"]).is_file()
    assert result["wall_s"] < 30 and result["build_wall_s"] > 0
    assert result["source_sha256"] == built.source_sha256 and len(result["key"]) == 64
    info = result["info"]
    assert info["source_kind"] == "tarball" and info["make_args"]
    if target == "qemu-cortex-m0":
        memory = info["memory"]
        assert memory["ram_static_bytes"] + 8192 <= memory["ram_bytes"] == 262144
    # without --json: one line saying where it is
    code, out, _ = _cli(capsys, *args[:-1])
    assert code == 0 and out.strip() == f"{target}: {built.path} (cached)"


def test_unix32_has_the_chips_object_model(unix32: BuildResult) -> None:
    """32-bit objects, small ints of +-2**30 (2**30 needs the heap), float32."""
    code = (
        "import micropython, struct\n"
        "print(struct.calcsize('P'), repr(1.1 + 2.2))\n"
        "a = (1 << 29) - 1 + (1 << 29)\n"  # 2**30 - 1: the largest small int
        "micropython.heap_lock()\n"
        "b = a + 0\n"
        "try:\n"
        "    c = a + 1\n"
        "    print('small')\n"
        "except MemoryError:\n"
        "    print('boxed')\n"
        "micropython.heap_unlock()\n"
    )
    proc = subprocess.run(
        [str(unix32.path), "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.split() == ["4", "3.3000002", "boxed"]


def test_missing_source_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-source.tar.gz"
    code, out, err = _cli(
        capsys, "--target", "unix-32", "--source", str(missing), "--out", str(tmp_path / "c")
    )
    assert code == 2 and str(missing) in err and "Traceback" not in err + out


def test_not_a_source_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball at all")
    out_dir = str(tmp_path / "c")
    code, _, err = _cli(capsys, "--target", "unix-32", "--source", str(junk), "--out", out_dir)
    assert code == 2 and "neither a MicroPython source tree nor a tarball" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _cli(
        capsys, "--target", "qemu-cortex-m0", "--source", str(empty), "--out", out_dir
    )
    assert code == 2 and "not a MicroPython source tree" in err and str(empty) in err


def _fake_source(root: Path) -> Path:
    for rel in (
        "py/mpconfig.h",
        "mpy-cross/Makefile",
        "ports/qemu/Makefile",
        "ports/unix/Makefile",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("# stands in for MicroPython\n")
    return root


def test_missing_toolchain_exits_2_naming_the_packages(tmp_path: Path) -> None:
    source = _fake_source(tmp_path / "src")
    bare = tmp_path / "bin"  # a PATH with no compiler, no make, no QEMU
    bare.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "host.cli.main", "micropython", "build",
         "--target", "qemu-cortex-m0", "--source", str(source), "--out", str(tmp_path / "c")],
        env=dict(os.environ, PATH=str(bare)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "apt-get install make gcc gcc-arm-none-eabi libnewlib-arm-none-eabi" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_changed_source_tree_has_another_hash(tmp_path: Path) -> None:
    source = _fake_source(tmp_path / "src")
    first = tree_sha256(source)
    (source / "build-standard").mkdir()  # build output of the tree's own builds: not hashed
    (source / "ports" / "unix" / "build-32").mkdir()
    (source / "ports" / "unix" / "build-32" / "x.o").write_bytes(b"\0")
    assert tree_sha256(source) == first
    (source / "py" / "mpconfig.h").write_text("# edited\n")
    assert tree_sha256(source) != first

"""Fixtures of the target tests: both targets built once per session, and a provisioned
QEMU board image that each test boots a copy of.

The builds go into $SISNBMS_MICROPYTHON_CACHE when it is set (CI builds there first, so the
tests find them), else into a folder of this session. The tests skip, saying why, only when
the toolchain or the vendored MicroPython source is absent; CI has both.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from host.micropython import QEMU_TARGET, TARGETS, UNIX32_TARGET, BuildResult, build_target
from host.micropython.build import CACHE_ENV
from host.micropython.source import vendor_source
from host.micropython.toolchain import install_hint, missing_tools


def _skip_without(target: str, *, run: bool = False) -> None:
    t = TARGETS[target]
    missing = missing_tools(t.tools + (t.run_tools if run else ()))
    if missing:
        pytest.skip(f"{target}: toolchain absent ({', '.join(m.command for m in missing)}); "
                    + install_hint(missing))  # fmt: skip


@pytest.fixture(scope="session")
def mp_source() -> Path:
    source = vendor_source()
    if source is None:
        pytest.skip("the vendored MicroPython source (../shared/vendor) is absent")
    return source


@pytest.fixture(scope="session")
def mp_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else tmp_path_factory.mktemp("micropython-cache")


@pytest.fixture(scope="session")
def unix32(mp_source: Path, mp_cache: Path) -> BuildResult:
    _skip_without(UNIX32_TARGET)
    return build_target(UNIX32_TARGET, mp_source, mp_cache)


@pytest.fixture(scope="session")
def qemu_firmware(mp_source: Path, mp_cache: Path) -> BuildResult:
    _skip_without(QEMU_TARGET, run=True)
    return build_target(QEMU_TARGET, mp_source, mp_cache)


@pytest.fixture(scope="session")
def provisioned_image(qemu_firmware: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """flash.img of a QEMU board that `sisnbms flash` (mpy, armv6m) provisioned once."""
    from host.boards import load_board
    from host.flash.flasher import flash_board
    from host.vboard.qemu_board import QemuBoard

    folder = tmp_path_factory.mktemp("qemu-provisioned")

    async def provision() -> None:
        async with QemuBoard(folder, qemu_firmware.path) as qb:
            result = await flash_board(qb.port, load_board("qemu_cortex_m0"), None, mpy=True)
            assert result.ok, result.problems

    asyncio.run(provision())
    return folder / "flash.img"


@pytest.fixture
def board_dir(provisioned_image: Path, tmp_path: Path) -> Path:
    """A fresh copy of the provisioned board's flash: each test gets its own board."""
    folder = tmp_path / "qemu-board"
    folder.mkdir()
    shutil.copyfile(provisioned_image, folder / "flash.img")
    return folder

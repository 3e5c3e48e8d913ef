"""pytest plugin for hardware-in-the-loop tests of the sisnbms firmware.

Registered through the `pytest11` entry point, so it is active in any project
that installs sisnbms. Options:

- `--bms-port PORT`: run against a real board (flashed with `sisnbms flash`)
  at PORT. Without it, every test gets a fresh virtual board (the real
  firmware under the MicroPython unix port on a pseudo-terminal).
- `--bms-board NAME`: the board definition (default: `virtual`).
- `--bms-cell NAME_OR_FILE`: the cell (default: the default cell).
- `--bms-target TARGET`: the virtual board's MicroPython (unix-64, unix-32, qemu-cortex-m0).

Fixtures: `bms_cell` (the CellDesign), `cell_model` (a factory of PackModel
for that cell), `bms_board` (a started host.board_session.BoardSession: the
real board's or a fresh virtual board's), `bms_port` (its serial port, with the
firmware running), `bms` (an async BmsClient connected to it, session opened
with HELLO) and `run_bms_scenario` (run a scenario
against the board and return its RunResult with the score).

Marker: `@pytest.mark.hardware` for tests that need a real board; they are
skipped unless --bms-port is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    import pytest_asyncio
except ImportError:  # the async fixtures need it; the rest of the plugin does not
    pytest_asyncio = None

from cellmodel import PackModel, load_cell
from cellmodel.design import CellDesign


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sisnbms", "sisnbms hardware-in-the-loop")
    group.addoption(
        "--bms-port",
        default=None,
        help="serial port of a flashed board (default: a fresh virtual board per test)",
    )
    group.addoption("--bms-board", default="virtual", help="board definition name")
    group.addoption("--bms-cell", default=None, help="cell preset name or TOML file")
    group.addoption(
        "--bms-target",
        default="unix-64",
        help="the virtual board's MicroPython when no --bms-port: unix-64 (default), unix-32 "
        "or qemu-cortex-m0 (the chip targets need `sisnbms micropython build` first)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hardware: needs a real board (skipped unless --bms-port is given)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--bms-port"):
        return
    skip = pytest.mark.skip(reason="needs a real board: pass --bms-port PORT")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def bms_cell(request: pytest.FixtureRequest) -> CellDesign:
    name = request.config.getoption("--bms-cell")
    return load_cell(name) if name else load_cell()


@pytest.fixture
def cell_model(bms_cell: CellDesign) -> Callable[..., PackModel]:
    """`cell_model(**kwargs)` builds a PackModel of the session's cell (kwargs as PackModel's)."""

    def make(**kwargs: Any) -> PackModel:
        return PackModel(bms_cell, **kwargs)

    return make


def _async_fixture(func: Any) -> Any:
    if pytest_asyncio is None:

        @pytest.fixture(name=func.__name__)
        def missing() -> None:
            pytest.fail("the sisnbms fixture needs pytest-asyncio: pip install pytest-asyncio")

        return missing
    return pytest_asyncio.fixture(func)


@_async_fixture
async def bms_board(
    request: pytest.FixtureRequest, tmp_path: Path, bms_cell: CellDesign
) -> AsyncIterator[Any]:
    """A started BoardSession (host.board_session): --bms-port's board, or a fresh virtual
    board provisioned for the session's cell. Its port is free until `bms` connects."""
    from host.board_session import BoardSetup, open_board

    board = open_board(
        port=request.config.getoption("--bms-port"),
        flash_dir=tmp_path / "flash",
        board=str(request.config.getoption("--bms-board")),
        target=str(request.config.getoption("--bms-target")),
    )
    async with board:
        await board.start(BoardSetup(bms_cell), connect=False)
        yield board


@_async_fixture
async def bms_port(bms_board: Any) -> AsyncIterator[str]:
    """A serial port with the firmware running: --bms-port, or a fresh virtual board's."""
    yield bms_board.port


@_async_fixture
async def bms(bms_board: Any) -> AsyncIterator[Any]:
    """A BmsClient connected to the board, with a session opened (HELLO answered)."""
    yield await bms_board.connect()


@pytest.fixture
def run_bms_scenario(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Any]]:
    """`run_bms_scenario(name_or_file, **kwargs) -> RunResult` on --bms-port or a virtual board.

    Synchronous, so it is usable from plain (non-async) tests; outputs go to
    the test's tmp_path unless out_dir is given.
    """
    from host.emulator import run_scenario
    from host.scenarios import load_scenario

    port = request.config.getoption("--bms-port")
    cell = request.config.getoption("--bms-cell")
    target = request.config.getoption("--bms-target")

    def run(name_or_file: str | Path, **kwargs: Any) -> Any:
        scenario = load_scenario(str(name_or_file))
        kwargs.setdefault("out_dir", tmp_path / scenario.name)
        kwargs.setdefault("cell", cell)
        if port:
            kwargs.setdefault("port", port)
        else:
            kwargs.setdefault("target", target)
        return asyncio.run(run_scenario(scenario, **kwargs))

    yield run

"""pytest plugin for hardware-in-the-loop tests of the sisnbms firmware.

Registered through the `pytest11` entry point, so it is active in any project that
installs sisnbms (pytest-asyncio, which runs its async fixtures, is installed with it).
README's "Your own HIL tests with pytest" documents the same:

Options:
- `--bms-port PORT`: run against a flashed board (`sisnbms flash`) at PORT. Without it,
  every test gets a fresh virtual board (the real firmware under the MicroPython unix
  port on a pseudo-terminal).
- `--bms-board NAME`: the board definition a virtual board is provisioned as (default
  `virtual`).
- `--bms-cell NAME_OR_FILE`: the cell the BMS is configured for (default: the default cell).
- `--bms-target TARGET`: the virtual board's MicroPython: unix-64 (default), unix-32 or
  qemu-cortex-m0 (the chip targets need `sisnbms micropython build` first).

The options are checked once, when the session starts (a bad cell, board or target is one
usage error). The board is checked once too, before the first test that uses it: a
`--bms-port` that cannot be opened, or where no firmware answers, ends the session with
one message instead of an error per test, and a board found at its REPL or running code
typed there is brought back to its firmware (interrupt, soft reset, BOOT).

Fixtures:
- `bms_cell`: the CellDesign of --bms-cell.
- `cell_model`: `cell_model(**kwargs)` makes a cellmodel.PackModel of that cell.
- `bms_board` (async tests): a started host.board_session.BoardSession: the board at
  --bms-port, or a fresh virtual board provisioned for the cell. Its port is free until
  `bms` connects.
- `bms_port`: that board's serial port, with the firmware running (sync or async tests;
  open it with your own serial code).
- `bms` (async tests): a host.protocol.client.BmsClient connected to the board, session
  opened with HELLO. Its methods are coroutines: hello(), sample(t_ms, cell_mV,
  current_mA, temp_ddegC) -> State, get_state(), config_read(), config_write(changes),
  clear_latched(reason, mask), fault_log(), save(), reset() + wait_boot(timeout_s), enter_repl(),
  request(ftype, payload), call(command); `stats` counts frames, retries and errors.
  Requested by a sync test, it is an error that says so.
- `run_bms_scenario`: `run_bms_scenario(name_or_file, **kwargs)` runs a scenario against
  the board (host.emulator.run_scenario's keyword arguments; outputs in the test's
  tmp_path) and returns its RunResult (`.passed`, `.summary`). In a sync test it returns
  the result; in an async test it returns an awaitable: `await run_bms_scenario(...)`.

Marker: `@pytest.mark.hardware` for tests that need a real board; skipped without
--bms-port. Async tests need `@pytest.mark.asyncio` (or `asyncio_mode = auto`).
pytest-asyncio's warning that `asyncio_default_fixture_loop_scope` is unset is not shown
(the plugin's fixtures are per test, the default it warns about); a project with async
fixtures of its own sets that option itself.
"""

from __future__ import annotations

import asyncio
import inspect
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from cellmodel import PackModel, load_cell
from cellmodel.design import CellDesign
from cellmodel.errors import InputError
from host.micropython.resolve import RUN_TARGETS

_LOOP_SCOPE_INI = "asyncio_default_fixture_loop_scope"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sisnbms", "sisnbms hardware-in-the-loop")
    group.addoption(
        "--bms-port",
        default=None,
        help="serial port of a flashed board (default: a fresh virtual board per test)",
    )
    group.addoption(
        "--bms-board",
        default="virtual",
        help="board definition a virtual board is provisioned as (default: virtual)",
    )
    group.addoption(
        "--bms-cell",
        default=None,
        help="cell preset name or TOML file the BMS is configured for (default: the default)",
    )
    group.addoption(
        "--bms-target",
        default="unix-64",
        choices=RUN_TARGETS,
        help="the virtual board's MicroPython when no --bms-port: unix-64 (default), unix-32 "
        "or qemu-cortex-m0 (the chip targets need `sisnbms micropython build` first)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hardware: needs a real board (skipped unless --bms-port is given)"
    )
    _quiet_loop_scope_warning()
    try:
        cell = config.getoption("--bms-cell")
        if cell:
            load_cell(cell, "--bms-cell", cell)
        from host.boards import load_board

        load_board(str(config.getoption("--bms-board")))
    except InputError as exc:
        raise pytest.UsageError(f"sisnbms: {exc}") from None


def _quiet_loop_scope_warning() -> None:
    """pytest-asyncio (installed with sisnbms) warns in every project that has not set
    `asyncio_default_fixture_loop_scope`, whether or not it has async fixtures. Our fixtures
    are per test, the scope pytest-asyncio will default to: the warning says nothing to a
    project that only uses them, so it is filtered while the plugins configure (this hook
    runs first; pytest restores the filters after configuration). A project with async
    fixtures of its own should set the option, as pytest-asyncio advises."""
    warnings.filterwarnings(
        "ignore",
        message=f'The configuration option "{_LOOP_SCOPE_INI}" is unset',
        category=pytest.PytestDeprecationWarning,
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--bms-port"):
        return
    skip = pytest.mark.skip(reason="needs a real board: pass --bms-port PORT")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def _bms_checked(pytestconfig: pytest.Config) -> None:
    """Once per session, before the first test that uses a board: the board at --bms-port
    answers with its firmware (recovered from its REPL if need be), or the virtual board's
    interpreter is usable. Otherwise the session ends here with one message."""
    port = pytestconfig.getoption("--bms-port")
    try:
        if port:
            from host.board_session.serial import reach_firmware

            reach_firmware(port)
        else:
            from host.micropython.resolve import target_binary

            target_binary(str(pytestconfig.getoption("--bms-target")))
    except InputError as exc:
        pytest.exit(f"sisnbms: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


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


def _async_test_only(request: pytest.FixtureRequest, fixture: str) -> None:
    test = getattr(request.node, "obj", None)
    if test is not None and not inspect.iscoroutinefunction(test):
        pytest.fail(
            f"the sisnbms fixture `{fixture}` is async: use it from an `async def` test "
            f"(with @pytest.mark.asyncio), or use `bms_port` or `run_bms_scenario` in "
            f"{request.node.name}, a sync test",
            pytrace=False,
        )


@pytest_asyncio.fixture
async def bms_board(
    request: pytest.FixtureRequest, tmp_path: Path, bms_cell: CellDesign, _bms_checked: None
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


@pytest_asyncio.fixture
async def bms_port(bms_board: Any) -> AsyncIterator[str]:
    """A serial port with the firmware running: --bms-port, or a fresh virtual board's."""
    yield bms_board.port


@pytest_asyncio.fixture
async def bms(request: pytest.FixtureRequest, bms_board: Any) -> AsyncIterator[Any]:
    """A BmsClient connected to the board, with a session opened (HELLO answered)."""
    _async_test_only(request, "bms")
    yield await bms_board.connect()


class PendingRun:
    """What run_bms_scenario returns in an async test: `await` it for the RunResult."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro

    def __await__(self) -> Generator[Any, None, Any]:
        return self._coro.__await__()

    def __getattr__(self, name: str) -> Any:
        self._coro.close()
        raise TypeError(
            "in an async test, run_bms_scenario(...) returns an awaitable: "
            f"`result = await run_bms_scenario(...)`, then result.{name}"
        )


@pytest.fixture
def run_bms_scenario(
    request: pytest.FixtureRequest, tmp_path: Path, _bms_checked: None
) -> Iterator[Callable[..., Any]]:
    """`run_bms_scenario(name_or_file, **kwargs)`: a RunResult in a sync test, an awaitable
    of one in an async test; on --bms-port or a fresh virtual board; outputs in the test's
    tmp_path unless out_dir is given."""
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
        coro = run_scenario(scenario, **kwargs)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a sync test: no loop runs here
            return asyncio.run(coro)
        return PendingRun(coro)

    yield run

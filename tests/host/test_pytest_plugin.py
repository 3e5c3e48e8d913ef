"""The pytest plugin as a user's project meets it (issue 12): each case runs pytest in a
fresh process on a test folder of its own (pytester), with the plugin loaded from its
entry point and no configuration of ours, as in a project that installed sisnbms."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from host.link import SerialLink
from host.protocol.client import BmsClient
from tests.host.vboard_helpers import expect

SHORT = 'name = "short"\nsample_period_s = 1.0\nsteps = ["Discharge at 1C for 30 seconds"]\n'

HELLO_TESTS = """
import pytest

@pytest.mark.asyncio
async def test_first(bms, bms_cell):
    hello = await bms.hello()
    assert hello.board_name == "virtual" and hello.n_cells == bms_cell.n_series

@pytest.mark.asyncio
async def test_second(bms):
    state = await bms.get_state()
    assert state.capacity_mAh > 0 and state.samples == 0
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


def output(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)


@pytest.fixture
def board_port(tmp_path: Path) -> Iterator[str]:
    """A virtual board run apart, as `sisnbms board --virtual` (the firmware installed)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "host.cli.main", "board", "--virtual", "--json",
         "--fs", str(tmp_path / "vflash")],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())["port"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


async def _leave_at_repl(port: str, typed: bytes) -> None:
    """ENTER_REPL, then type `typed` at the prompt and go away, as a person might."""
    async with await SerialLink.open(port) as link:
        await BmsClient(link, timeout_s=5.0).enter_repl()
        link.write(b"\r")
        await expect(link, b"\r\n>>> ")
        link.write(typed)
        await link.drain()
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("typed", [b"", b"while True: pass\r"], ids=["at-repl", "in-a-loop"])
def test_a_board_left_at_its_repl_is_recovered_before_the_first_test(
    board_port: str, pytester: pytest.Pytester, typed: bytes
) -> None:
    asyncio.run(_leave_at_repl(board_port, typed))
    pytester.makepyfile(test_hil=HELLO_TESTS)
    result = run(pytester, f"--bms-port={board_port}")
    result.assert_outcomes(passed=2)


def test_a_bad_port_is_one_error_for_the_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hil=HELLO_TESTS)
    result = run(pytester, "--bms-port=/dev/no-such-board")
    text = output(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert text.count("cannot open serial port") == 1, text
    assert "--port: /dev/no-such-board" in text and "Traceback" not in text
    assert "test_second" not in text  # the session ended before a second test


def test_bad_options_are_usage_errors(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(test_hil=HELLO_TESTS)
    bad_cell = run(pytester, f"--bms-cell={tmp_path / 'none.toml'}")
    assert bad_cell.ret == pytest.ExitCode.USAGE_ERROR
    assert "none.toml" in output(bad_cell) and "Traceback" not in output(bad_cell)
    bad_target = run(pytester, "--bms-target", "avr")
    assert bad_target.ret == pytest.ExitCode.USAGE_ERROR
    assert "invalid choice: 'avr'" in output(bad_target)


def test_run_bms_scenario_in_sync_and_async_tests(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", short=SHORT)
    pytester.makepyfile(
        test_scenarios="""
import pytest

def test_sync(run_bms_scenario):
    result = run_bms_scenario("short.toml")
    assert result.passed and result.summary["steps"] >= 30

@pytest.mark.asyncio
async def test_async(run_bms_scenario):
    result = await run_bms_scenario("short.toml")
    assert result.passed and result.summary["steps"] >= 30

@pytest.mark.asyncio
async def test_async_forgot_await(run_bms_scenario):
    pending = run_bms_scenario("short.toml")
    with pytest.raises(TypeError, match="await run_bms_scenario"):
        pending.passed
"""
    )
    result = run(pytester, "-W", "error::RuntimeWarning")  # no coroutine left un-awaited
    result.assert_outcomes(passed=3)


def test_the_async_bms_fixture_in_a_sync_test_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_sync="""
def test_sync_with_bms(bms):
    bms.hello()

def test_sync_with_port(bms_port):
    assert bms_port.startswith("/dev/")
"""
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    text = output(result)
    assert "the sisnbms fixture `bms` is async: use it from an `async def` test" in text
    assert "test_sync_with_bms, a sync test" in text


def test_no_pytest_asyncio_warning_reaches_the_project(pytester: pytest.Pytester) -> None:
    """A project with no asyncio settings: pytest-asyncio (installed with sisnbms) must not
    warn about its unset loop scope."""
    pytester.makepyfile(test_plain="def test_nothing_async():\n    assert True\n")
    result = run(pytester)
    result.assert_outcomes(passed=1)
    text = output(result)
    assert "is unset" not in text and "Warning" not in text, text

"""BmsClient as a driver: with a link that answers at once it never suspends.

A lockstep driver runs client coroutines by hand (`coro.send(None)` until
StopIteration) with no event loop at all; these tests do exactly that over
tests/host/memory_board.py (the firmware's protocol machine under CPython)
with a clock the test owns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from host.protocol import commands
from host.protocol.client import BmsClient
from host.protocol.codec import ClearReason, Decoder, ErrorCode, Frame, FrameType, encode_frame
from host.protocol.errors import BmsError, BmsMalformedReply, BmsRejected, BmsTimeout
from tests.host.memory_board import CELLS, Clock, MemoryBoard, MemoryLink

T = TypeVar("T")


def at_once(coro: Coroutine[Any, Any, T]) -> T:
    """The coroutine's result; fails if it suspends even once."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError(f"the client suspended on {yielded!r}")


@pytest.fixture
def rig(tmp_path: Path) -> tuple[BmsClient, MemoryBoard, Clock]:
    clock = Clock()
    board = MemoryBoard(tmp_path / "flash", clock)
    return BmsClient(MemoryLink(board), timeout_s=0.5, clock=clock), board, clock


def test_no_event_loop_is_running_here() -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_every_command_completes_without_suspending(
    rig: tuple[BmsClient, MemoryBoard, Clock],
) -> None:
    client, board, clock = rig
    t0 = clock.now_s
    board.boot()
    boot = at_once(client.wait_boot(5.0))
    assert boot == client.last_boot and "STATE_MISSING" in boot.boot_flags
    assert at_once(client.hello()) == boot
    state = at_once(client.sample(1000, CELLS, 500, [250]))
    assert state.t_ms == 1000 and state.chg_on and state.dsg_on
    assert at_once(client.get_state()).samples == 1
    assert at_once(client.config_read())["n_cells"] == 4
    at_once(client.config_write({"ov_delay_ms": 500}))
    assert at_once(client.config_read())["ov_delay_ms"] == 500
    with pytest.raises(BmsRejected, match="window_top_dmAhg"):
        at_once(client.config_write({"window_top_dmAhg": 22001}))
    assert at_once(client.clear_latched(ClearReason.TEST)) == 0
    assert isinstance(at_once(client.fault_log()), list)
    at_once(client.save())
    assert at_once(client.request(FrameType.GET_STATE)).ftype == FrameType.GET_STATE_REPLY
    with pytest.raises(BmsRejected) as err:
        at_once(client.sample(1000, CELLS, 500, [250]))  # time standing still
    assert err.value.code == ErrorCode.E_TIME and not err.value.retried
    at_once(client.reset())
    assert board.acted and clock.now_s == t0  # nothing ever waited
    stats = client.stats
    assert stats.frames_sent == 13 and stats.frames_received == 14 and stats.error_replies == 1


def test_timeouts_and_retries_run_on_the_given_clock(
    rig: tuple[BmsClient, MemoryBoard, Clock],
) -> None:
    client, board, clock = rig
    at_once(client.sample(1000, CELLS, 500, [250]))
    t0 = clock.now_s
    board.lose_replies = 1  # taken, reply lost: timeout, resend, E_TIME, GET_STATE
    state = at_once(client.sample(2000, CELLS, 500, [250]))
    assert state.t_ms == 2000 and state.samples == 2
    assert clock.now_s == pytest.approx(t0 + 0.5)
    assert (client.stats.timeouts, client.stats.retries, client.stats.error_replies) == (1, 1, 1)
    client.tx_filter = lambda frame: b""
    assert client.session.tx_filter is client.tx_filter
    client.retries = 3
    with pytest.raises(BmsTimeout, match="4 attempts"):
        at_once(client.get_state())
    assert clock.now_s == pytest.approx(t0 + 0.5 + 4 * 0.5)
    client.tx_filter = None
    client.timeout_s = 0.25
    board.lose_requests = 1
    t1 = clock.now_s
    at_once(client.hello())
    assert clock.now_s == pytest.approx(t1 + 0.25) and client.session.timeout_s == 0.25


def test_an_abandoned_call_leaves_the_client_usable(
    rig: tuple[BmsClient, MemoryBoard, Clock],
) -> None:
    client, board, _ = rig

    class Stalling(MemoryLink):
        async def read(self, max_bytes: int, timeout_s: float) -> bytes:
            await asyncio.sleep(0)  # suspends: a real link waiting for bytes
            return await super().read(max_bytes, timeout_s)

    client.link = Stalling(board)
    coro = client.get_state()
    coro.send(None)  # suspended in the read
    coro.close()  # cancelled there
    assert not client.session.busy
    client.link = MemoryLink(board)
    board.take()  # the reply to the cancelled request comes late
    assert at_once(client.hello()).board_name == "memory"


def test_a_reply_that_cannot_be_read_is_a_bms_error_and_the_client_serves_on(
    rig: tuple[BmsClient, MemoryBoard, Clock],
) -> None:
    """A firmware whose STATE replies come a byte short (valid CRC): call() and the
    lockstep's send()/finish() end in BmsMalformedReply, a BmsError (the CLI's exit 1, the
    emulator's lost sample), not a ValueError traceback; the next request is served."""
    client, board, _ = rig

    class Shortened(MemoryLink):
        async def read(self, max_bytes: int, timeout_s: float) -> bytes:
            out = b""
            for frame in Decoder().feed(await super().read(max_bytes, timeout_s)):
                assert isinstance(frame, Frame)
                payload = frame.payload
                if frame.ftype in (FrameType.STATE, FrameType.GET_STATE_REPLY):
                    payload = payload[:-1]
                out += encode_frame(frame.ftype, frame.seq, payload)
            return out

    client.link = Shortened(board)
    with pytest.raises(BmsMalformedReply, match="GET_STATE: .* cannot be read"):
        at_once(client.get_state())
    client.send(commands.sample(1000, CELLS, 500, [250]))
    with pytest.raises(BmsError, match="SAMPLE"):
        at_once(client.finish())
    assert not client.session.busy and not client.in_flight
    assert at_once(client.hello()).board_name == "memory"
    assert client.stats.timeouts == 0  # read at once, not waited out

"""BmsClient over host.link.SerialLink against the real firmware on a virtual board's pty.

Fault injection uses the client's own tx_filter (damaged and dropped frames)
and a link wrapper that loses one reply; the firmware on the other side is
the real firmware/main.py under MicroPython. (The retry, timeout and sequence
logic itself is tested in memory: test_protocol_session.py.)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from host.link import SerialLink
from host.protocol.client import BmsClient, BmsRejected, BmsTimeout
from host.protocol.codec import ClearReason, ErrorCode
from host.protocol.faults import FAULT_BITS
from host.vboard import VirtualBoard
from tests.firmware.pty_board import provision
from tests.host.vboard_helpers import powered_board

CELLS = [3700, 3701, 3699, 3702]


class LoseReplies:
    """A link that drops the next `count` chunks it receives (a reply lost on the wire)."""

    def __init__(self, link: SerialLink) -> None:
        self.link = link
        self.count = 0

    def write(self, data: bytes) -> None:
        self.link.write(data)

    async def read(self, max_bytes: int, timeout_s: float) -> bytes:
        data = await self.link.read(max_bytes, timeout_s)
        if data and self.count:
            self.count -= 1
            return b""
        return data


async def repl_output(client: BmsClient, link: SerialLink, timeout_s: float = 5.0) -> bytes:
    """What the REPL printed after enter_repl(), up to its prompt.

    The client's last read may have taken the REPL's first bytes (or all of them)
    together with ENTER_REPL_REPLY; they are its trailing data, not lost.
    """
    seen = client.trailing_data
    while not seen.endswith(b">>> "):
        more = await link.read(4096, timeout_s)
        if not more:
            break
        seen += more
    return seen


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[tuple[VirtualBoard, SerialLink]]:
    """A virtual board running the firmware, its port opened before power-up.

    pyserial empties the input buffer when it opens a port: opened after the
    firmware had started, it could discard the BOOT frame (a slow host on a busy
    machine), and wait_boot() would time out.
    """
    flash = tmp_path / "flash"
    provision(flash, {"n_cells": 4, "n_temps": 1})
    async with powered_board(flash) as (vb, link):
        yield vb, link


async def test_a_sample_without_a_temperature_reading_is_a_sensor_fault_not_none(
    board: tuple[VirtualBoard, SerialLink],
) -> None:
    """STATE's max_temp_ddegC -32768 (docs/protocol.md): the sample carried no reading, or
    read the int16 minimum (an open or shorted thermistor's sentinel). The firmware calls it
    SENSOR_RANGE; the host reports it as such, in its JSON too, not as a board without
    sensors."""
    _, link = board
    client = BmsClient(link, timeout_s=2.0)
    await client.wait_boot(5.0)
    await client.hello()
    state = await client.sample(1000, CELLS, 0, [250])
    assert state.max_temp_reading == "measured" and state.max_temp_text == "25.0 degC"
    for t_ms, temps in ((2000, [-32768]), (3000, [])):
        state = await client.sample(t_ms, CELLS, 0, temps)
        assert state.max_temp_degC is None and "SENSOR_RANGE" in state.faults
        assert state.max_temp_text == "no reading (sensor fault)", temps
        assert state.as_dict()["max_temp_reading"] == "no reading (sensor fault)"


async def test_session_commands(board: tuple[VirtualBoard, SerialLink]) -> None:
    vb, link = board
    client = BmsClient(link, timeout_s=2.0)
    boot = await client.wait_boot(5.0)
    hello = await client.hello()
    assert hello == boot and hello.n_cells == 4 and client.stats.boots == 1
    state = await client.sample(1000, CELLS, 500, [250])
    assert state.t_ms == 1000 and state.chg_on and state.dsg_on and state.faults == ()
    assert state.max_temp_degC == pytest.approx(25.0)
    config = await client.config_read()
    assert config["n_cells"] == 4
    await client.config_write({"ov_delay_ms": 500})
    assert (await client.config_read())["ov_delay_ms"] == 500
    with pytest.raises(BmsRejected, match="window_top_dmAhg"):
        await client.config_write({"window_top_dmAhg": 22001})
    # cell 1 above ov_mV for longer than the new ov_delay_ms: OV is set, logged, not latched
    over = [4240, *CELLS[1:]]
    await client.sample(2000, over, 0, [250])
    state = await client.sample(3000, over, 0, [250])
    assert "OV" in state.faults and not state.chg_on and state.dsg_on
    ov = 1 << FAULT_BITS["OV"]
    assert [(bits & ov, is_set) for _, bits, is_set in await client.fault_log()] == [(ov, 1)]
    assert await client.clear_latched(ClearReason.TEST) == 0
    await client.save()
    state = await client.get_state()
    assert state.t_ms == 3000 and state.samples == 3
    with pytest.raises(BmsRejected) as err:
        await client.sample(3000, CELLS, 500, [250])  # time standing still
    assert err.value.code == ErrorCode.E_TIME
    await client.enter_repl()
    assert (await repl_output(client, link)).endswith(b">>> ")
    assert json.loads((vb.flash_dir / "bms_config.json").read_text())["ov_delay_ms"] == 500
    stats = client.stats
    assert stats.frames_sent == stats.frames_received - 1  # + BOOT
    assert stats.retries == stats.timeouts == stats.crc_errors == 0 and stats.error_replies == 1


async def test_retries_on_damaged_and_dropped_frames(
    board: tuple[VirtualBoard, SerialLink],
) -> None:
    vb, link = board
    client = BmsClient(link, timeout_s=1.0, retries=2)
    await client.wait_boot(5.0)
    plan: list[str | None] = ["flip", None, "drop", None]  # one action per frame sent

    def damage(frame: bytes) -> bytes:
        action = plan.pop(0) if plan else None
        if action == "flip":
            return frame[:-1] + bytes([frame[-1] ^ 0x01])
        if action == "drop":
            return b""
        return frame

    client.tx_filter = damage
    state = await client.sample(1000, CELLS, 500, [250])  # flipped: ERROR(E_CRC), then resent
    assert state.t_ms == 1000
    assert client.stats.crc_rejects == 1 and client.stats.retries == 1
    state = await client.sample(2000, CELLS, 500, [250])  # dropped: timeout, then resent
    assert state.t_ms == 2000 and client.stats.timeouts == 1 and client.stats.retries == 2
    assert state.bad_frames == 1

    client.tx_filter = lambda frame: b""
    with pytest.raises(BmsTimeout):
        await client.get_state()
    assert client.stats.timeouts == 4  # 1 + (1 + 2 retries)
    client.tx_filter = None
    await client.enter_repl()
    assert (await repl_output(client, link)).endswith(b">>> ")


async def test_lost_sample_reply_recovers_the_state(
    board: tuple[VirtualBoard, SerialLink],
) -> None:
    vb, link = board
    lossy = LoseReplies(link)
    client = BmsClient(lossy, timeout_s=1.0, retries=2)
    await client.wait_boot(5.0)
    await client.sample(1000, CELLS, 500, [250])
    lossy.count = 1
    # the firmware accepted the sample but its STATE was lost: the resend meets E_TIME
    # and the client reads the state that sample produced
    state = await client.sample(2000, CELLS, 500, [250])
    assert state.t_ms == 2000 and state.samples == 2
    assert client.stats.timeouts == 1 and client.stats.error_replies == 1
    await client.enter_repl()
    assert (await repl_output(client, link)).endswith(b">>> ")


async def test_reset_and_repl_on_the_virtual_board(
    board: tuple[VirtualBoard, SerialLink],
) -> None:
    vb, link = board
    client = BmsClient(link, timeout_s=2.0)
    first = await client.wait_boot(10.0)
    assert "STATE_MISSING" in first.boot_flags
    await client.sample(1000, CELLS, 500, [250])
    await client.reset()
    again = await client.wait_boot(10.0)  # the supervisor restarted the firmware
    # (vb.boots counts a start only once the spawn returns, which can be after the
    # new interpreter's BOOT has arrived; the exit status is set before it starts)
    assert "STATE_RESTORED" in again.boot_flags and vb.last_exit == 94
    await client.hello()
    state = await client.sample(5, CELLS, 500, [250])
    assert state.samples == 1 and state.chg_on
    await client.enter_repl()
    # the reply and the REPL's banner can arrive in one read (under load they did, and
    # the prompt was lost to the client): repl_output starts from the trailing data
    assert (await repl_output(client, link)).endswith(b">>> ")

"""The sans-I/O protocol session in memory: no pty, no process, time passed in.

The other end of the line is the firmware's own protocol machine
(firmware/bms/app.py under CPython, tests/host/memory_board.py); the tests
lose, damage, hold and split what travels between them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from host.protocol import commands
from host.protocol.codec import (
    ClearReason,
    ErrorCode,
    Frame,
    FrameType,
    decode_hello,
    decode_state,
    encode_frame,
)
from host.protocol.commands import Command
from host.protocol.errors import BmsError, BmsMalformedReply, BmsRejected, BmsTimeout
from host.protocol.session import (
    IDLE,
    NEED_DATA,
    Booted,
    Event,
    NoBoot,
    NoReply,
    Rejected,
    Reply,
    Session,
    Transmit,
    decode_reply,
    reply_frame,
)
from tests.host.memory_board import CELLS, REPL_BANNER, Clock, MemoryBoard


class Line:
    """A session, a MemoryBoard and the clock they share; `run` drives one operation."""

    def __init__(self, tmp_path: Path, *, retries: int = 2, timeout_s: float = 0.5) -> None:
        self.clock = Clock()
        self.board = MemoryBoard(tmp_path / "flash", self.clock)
        self.session = Session(timeout_s=timeout_s, retries=retries)
        self.sent: list[Transmit] = []
        self.chunk = 4096

    def run(self, command: Command[object] | None = None) -> Event:
        """Start `command` (None: drive what is in progress) and return its final event."""
        if command is not None:
            data = self.session.start(command, self.clock.now_s)
            self.board.write(data)
        for _ in range(10_000):  # a session that never ends an operation fails, not hangs
            event = self.session.next_event(self.clock.now_s)
            if event is NEED_DATA:
                data = self.board.take(self.chunk)
                if data:
                    self.session.receive_data(data)
                else:  # nothing will come: the time runs out
                    deadline = self.session.deadline_s
                    assert deadline is not None
                    self.clock.now_s = deadline
            elif isinstance(event, Transmit):
                self.sent.append(event)
                self.board.write(event.data)
            else:
                assert event is not IDLE
                return event
        raise AssertionError("the operation never ended")

    def sample(self, t_ms: int) -> Event:
        return self.run(commands.sample(t_ms, CELLS, 500, [250]))


def reply_of(event: Event) -> Reply:
    assert isinstance(event, Reply), event
    return event


def test_a_request_and_its_reply(tmp_path: Path) -> None:
    line = Line(tmp_path)
    reply = reply_of(line.run(commands.hello()))
    assert reply.frame.ftype == FrameType.HELLO_REPLY and reply.frame.seq == 1
    assert decode_hello(reply.frame.payload).board_name == "memory" and not reply.retried
    state = commands.sample(1000, CELLS, 500, [250]).decode(reply_of(line.sample(1000)).frame)
    assert state.t_ms == 1000 and state.samples == 1 and line.session.seq == 2
    stats = line.session.stats
    assert (stats.frames_sent, stats.frames_received, stats.timeouts) == (2, 2, 0)
    assert line.session.next_event(line.clock.now_s) is IDLE


def test_timeout_follows_the_clock_passed_in(tmp_path: Path) -> None:
    line = Line(tmp_path, timeout_s=0.5)
    line.board.lose_requests = 1
    t0 = line.clock.now_s
    line.board.write(line.session.start(commands.get_state(), t0))
    for _ in range(3):  # no clock of its own: asking again at the same time changes nothing
        assert line.session.next_event(t0 + 0.499) is NEED_DATA
    assert line.session.deadline_s == pytest.approx(t0 + 0.5)
    resend = line.session.next_event(t0 + 0.5)
    assert isinstance(resend, Transmit) and (resend.seq, resend.attempt) == (2, 2)
    assert line.session.deadline_s == pytest.approx(t0 + 1.0)
    line.clock.now_s = t0 + 0.5
    line.board.write(resend.data)
    reply = reply_of(line.run())
    assert reply.retried and reply.frame.seq == 2 and reply.frame.ftype == 0x83
    stats = line.session.stats
    assert (stats.timeouts, stats.retries, stats.frames_sent) == (1, 1, 2)


def test_error_crc_is_resent_with_a_new_seq(tmp_path: Path) -> None:
    line = Line(tmp_path)
    flips = [True]

    def flip_first(frame: bytes) -> bytes:
        return frame[:-1] + bytes([frame[-1] ^ 0x01]) if flips and flips.pop() else frame

    line.session.tx_filter = flip_first
    reply = reply_of(line.sample(1000))
    assert [t.seq for t in line.sent] == [2] and reply.frame.seq == 2 and reply.retried
    stats = line.session.stats
    assert (stats.crc_rejects, stats.error_replies, stats.retries, stats.timeouts) == (1, 1, 1, 0)
    assert decode_state(reply.frame.payload).bad_frames == 1


def test_gives_up_after_retries_plus_one_attempts(tmp_path: Path) -> None:
    line = Line(tmp_path, retries=2)
    line.session.tx_filter = lambda frame: b""  # every frame lost on the way
    t0 = line.clock.now_s
    event = line.run(commands.get_state())
    assert isinstance(event, NoReply) and event == NoReply(FrameType.GET_STATE, 3)
    assert line.clock.now_s == pytest.approx(t0 + 3 * 0.5)
    stats = line.session.stats
    assert (stats.frames_sent, stats.timeouts, stats.retries) == (3, 3, 2)
    with pytest.raises(BmsTimeout, match="GET_STATE: no valid reply after 3 attempts"):
        reply_frame(event)
    # damaged every time: ERROR(E_CRC) three times, then the same end
    line.session.tx_filter = lambda frame: frame[:-1] + bytes([frame[-1] ^ 0x80])
    assert line.run(commands.get_state()) == NoReply(FrameType.GET_STATE, 3)
    assert stats.crc_rejects == 3 and stats.timeouts == 3
    line.session.retries = 0
    line.session.tx_filter = lambda frame: b""
    assert line.run(commands.hello()) == NoReply(FrameType.HELLO, 1)


@pytest.mark.parametrize("command", [commands.enter_repl(), commands.reset()])
def test_enter_repl_and_reset_are_not_resent_after_a_timeout(
    tmp_path: Path, command: Command[None]
) -> None:
    line = Line(tmp_path)
    line.board.lose_requests = 1
    assert line.run(command) == NoReply(command.ftype, 1)
    assert line.session.stats.frames_sent == 1 and not line.board.acted
    # a damaged copy was never acted on: that one is sent again (ERROR(E_CRC) resends)
    flips = [True]

    def flip_first(frame: bytes) -> bytes:
        return frame[:-1] + bytes([frame[-1] ^ 0x01]) if flips and flips.pop() else frame

    line.session.tx_filter = flip_first
    assert reply_of(line.run(command)).retried and line.board.acted
    assert line.session.stats.crc_rejects == 1


def test_sequence_numbers_wrap_past_zero(tmp_path: Path) -> None:
    line = Line(tmp_path)
    line.session.seq = 65533
    assert reply_of(line.run(commands.hello())).frame.seq == 65534
    assert reply_of(line.sample(1000)).frame.seq == 65535
    line.board.lose_requests = 1  # the resend of 65535's successor crosses zero too
    reply = reply_of(line.sample(2000))
    assert [t.seq for t in line.sent] == [2] and reply.frame.seq == 2
    # the firmware took 1 (lost) and 2 as newer than 65535: no E_SEQ, both samples counted
    assert (
        decode_state(reply.frame.payload).samples == 2
        and decode_state(reply.frame.payload).bad_frames == 0
    )
    seqs = set()
    session = Session()
    session.seq = 65535
    for _ in range(65536):
        session.start_request(FrameType.HELLO, now_s=0.0)
        seqs.add(session.seq)
        session.abandon()
    assert 0 not in seqs and len(seqs) == 65535  # 0 is the firmware's (BOOT)


def test_a_frame_with_seq_0_is_never_a_reply(tmp_path: Path) -> None:
    session = Session(timeout_s=1.0)
    session.seq = 65535
    session.start(commands.get_state(), 0.0)
    assert session.seq == 1
    session.receive_data(encode_frame(FrameType.GET_STATE_REPLY, 0, bytes(48)))
    assert session.next_event(0.5) is NEED_DATA and session.stats.stale_replies == 1


def test_a_reply_to_an_earlier_attempt_is_stale(tmp_path: Path) -> None:
    line = Line(tmp_path)
    line.board.write(line.session.start(commands.get_state(), line.clock.now_s))
    held = line.board.take()  # the first reply is slow: it arrives after the timeout
    line.clock.now_s += 0.5
    resend = line.session.next_event(line.clock.now_s)
    assert isinstance(resend, Transmit)
    line.board.write(resend.data)
    line.session.receive_data(held)
    reply = reply_of(line.run())
    assert reply.frame.seq == 2 and line.session.stats.stale_replies == 1
    # a reply to a request given up on is stale at the next request
    line.board.write(line.session.start(commands.get_state(), line.clock.now_s))
    line.session.abandon()
    assert reply_of(line.run(commands.hello())).frame.seq == 4
    assert line.session.stats.stale_replies == 2


def test_a_reply_split_into_single_bytes(tmp_path: Path) -> None:
    line = Line(tmp_path)
    line.chunk = 1
    reply = reply_of(line.sample(1000))
    assert decode_state(reply.frame.payload).t_ms == 1000
    stats = line.session.stats
    assert (stats.frames_received, stats.timeouts, stats.crc_errors, stats.stale_replies) == (
        1,
        0,
        0,
        0,
    )


def test_a_damaged_reply_is_counted_and_the_request_resent(tmp_path: Path) -> None:
    line = Line(tmp_path)
    line.board.damage_replies = 1
    reply = reply_of(line.run(commands.get_state()))
    assert reply.retried and line.session.stats.crc_errors == 1
    assert line.session.stats.timeouts == 1


def test_a_boot_arriving_mid_request(tmp_path: Path) -> None:
    line = Line(tmp_path)
    line.board.boot()  # the board restarted while the host was asking
    reply = reply_of(line.run(commands.hello()))
    assert reply.frame.ftype == FrameType.HELLO_REPLY
    session = line.session
    assert session.stats.boots == 1 and session.boot_pending and session.last_boot is not None
    # the boot wait that follows returns that BOOT at once, without reading or waiting
    t = line.clock.now_s
    session.start_boot_wait(t, 5.0)
    event = session.next_event(t)
    assert isinstance(event, Booted) and event.hello.board_name == "memory"
    assert not session.boot_pending and session.next_event(t) is IDLE


def test_wait_boot_times_out_on_the_clock(tmp_path: Path) -> None:
    line = Line(tmp_path)
    t0 = line.clock.now_s
    line.session.start_boot_wait(t0, 2.0)
    assert line.session.next_event(t0 + 1.999) is NEED_DATA
    assert line.session.next_event(t0 + 2.0) == NoBoot(2.0)
    # a BOOT that comes in time; other frames on the way are stale
    line.session.start_boot_wait(t0 + 2.0, 2.0)
    line.session.receive_data(encode_frame(FrameType.STATE, 9, bytes(48)))
    line.board.boot()
    assert isinstance(line.run(), Booted) and line.session.stats.stale_replies == 1


def test_reset_forgets_an_earlier_boot(tmp_path: Path) -> None:
    line = Line(tmp_path)
    line.board.boot()
    reply_of(line.sample(1000))
    assert line.session.boot_pending
    assert reply_of(line.run(commands.reset())) and line.board.acted
    assert not line.session.boot_pending  # the BOOT before the reset is not the one awaited
    t0 = line.clock.now_s
    line.session.start_boot_wait(t0, 3.0)
    assert line.run() == NoBoot(3.0) and line.clock.now_s == pytest.approx(t0 + 3.0)
    # the firmware starts again on its flash: the state it saved is restored
    restarted = MemoryBoard(tmp_path / "flash", line.clock)
    line.board = restarted
    line.session.start_boot_wait(line.clock.now_s, 3.0)
    restarted.boot()
    event = line.run()
    assert isinstance(event, Booted) and "STATE_RESTORED" in event.hello.boot_flags


def test_e_time_after_a_resent_sample_reads_the_state(tmp_path: Path) -> None:
    line = Line(tmp_path)
    reply_of(line.sample(1000))
    line.board.lose_replies = 1  # the firmware took t=2000; its STATE was lost
    reply = reply_of(line.sample(2000))
    assert [(t.ftype, t.seq) for t in line.sent] == [
        (FrameType.SAMPLE, 3),
        (FrameType.GET_STATE, 4),
    ]
    assert reply.request == FrameType.SAMPLE and reply.retried
    assert reply.frame.ftype == FrameType.GET_STATE_REPLY
    state = commands.sample(2000, CELLS, 500).decode(reply.frame)
    assert state.t_ms == 2000 and state.samples == 2
    stats = line.session.stats
    assert (stats.timeouts, stats.error_replies, stats.retries) == (1, 1, 1)


def test_e_time_after_a_resend_of_a_sample_never_taken_is_an_error(tmp_path: Path) -> None:
    line = Line(tmp_path)
    reply_of(line.sample(1000))
    line.board.lose_requests = 1  # t=500 never arrives; its resend meets E_TIME (500 < 1000)
    event = line.sample(500)
    assert isinstance(event, Rejected) and event.request == FrameType.SAMPLE
    assert event.code == ErrorCode.E_TIME and event.retried
    assert line.sent[-1].ftype == FrameType.GET_STATE  # it did look
    with pytest.raises(BmsRejected) as err:
        reply_frame(event)
    assert err.value.code == ErrorCode.E_TIME and err.value.retried


def test_e_time_on_a_first_copy_is_not_recovered(tmp_path: Path) -> None:
    line = Line(tmp_path)
    reply_of(line.sample(1000))
    event = line.sample(1000)  # time standing still
    assert isinstance(event, Rejected) and event.code == ErrorCode.E_TIME and not event.retried
    assert line.sent == [] and line.session.stats.frames_sent == 2


def test_enter_repl_leaves_what_the_repl_prints_unparsed(tmp_path: Path) -> None:
    line = Line(tmp_path)
    line.board.write(line.session.start(commands.enter_repl(), line.clock.now_s))
    line.board.outbox += REPL_BANNER  # reply and banner in one read, as under load
    reply = reply_of(line.run())
    assert reply.frame.ftype == FrameType.ENTER_REPL_REPLY
    assert line.session.trailing_data == REPL_BANNER


def test_one_operation_at_a_time(tmp_path: Path) -> None:
    session = Session()
    session.start(commands.hello(), 0.0)
    assert session.busy
    with pytest.raises(RuntimeError):
        session.start(commands.hello(), 0.0)
    with pytest.raises(RuntimeError):
        session.start_boot_wait(0.0, 1.0)
    session.abandon()
    assert not session.busy and session.deadline_s is None
    assert session.next_event(0.0) is IDLE


@pytest.mark.parametrize(
    ("command", "reply_type", "payload"),
    [
        (commands.get_state(), FrameType.ERROR, b""),  # ERROR without a code
        (commands.get_state(), FrameType.BOOT, b"\x01\x04"),  # a BOOT cut short, mid-request
        (commands.get_state(), FrameType.GET_STATE_REPLY, bytes(67 + 4 * 4 - 1)),
        (commands.get_state(), FrameType.GET_STATE_REPLY, b""),
        (commands.hello(), FrameType.HELLO_REPLY, b"\x01\x04\x02"),
        (commands.config_read(), FrameType.CONFIG, b'{"n_cells":'),
        (commands.config_read(), FrameType.CONFIG, b"\xff\xfe"),  # not UTF-8
        (commands.fault_log(), FrameType.FAULT_LOG_REPLY, b"[[1,2,"),
        (commands.clear_latched(ClearReason.TEST), FrameType.CLEAR_LATCHED_REPLY, b"\x01\x00"),
        (commands.save(), FrameType.SAVE_REPLY, b""),
        (commands.config_write({"n_cells": 4}), FrameType.CONFIG_WRITE_REPLY, b""),
    ],
    ids=[
        "error-no-code",
        "boot-short",
        "state-one-byte-short",
        "state-empty",
        "hello-short",
        "config-cut-json",
        "config-not-utf8",
        "fault-log-cut-json",
        "clear-latched-2-bytes",
        "save-no-status",
        "config-write-no-status",
    ],
)
def test_a_reply_that_cannot_be_read_is_a_bms_error(
    command: Command[object], reply_type: FrameType, payload: bytes
) -> None:
    """A reply that passed its CRC but cannot be read (a firmware fault, not noise) ends the
    request in a BmsError naming it, as a timeout does: the CLI's exit 1, the emulator's lost
    sample; never a bare ValueError, struct.error or JSONDecodeError escaping as a traceback."""
    session = Session()
    session.start(command, 0.0)
    session.receive_data(
        encode_frame(reply_type, 0 if reply_type == FrameType.BOOT else 1, payload)
    )
    with pytest.raises(BmsMalformedReply) as err:
        event = session.next_event(0.0)
        assert isinstance(event, Reply | Rejected)
        decode_reply(command, event)
    assert isinstance(err.value, BmsError) and command.ftype.name in str(err.value)
    assert not session.busy
    assert session.start(commands.hello(), 0.0)  # the session serves on


def test_a_noise_sync_whose_length_claims_more_than_comes_costs_one_timeout(
    tmp_path: Path,
) -> None:
    """A noise byte 0xA5 on the host's receive line, followed by bytes that read as a header
    claiming 4,000 payload bytes: the decoder waits for them, and every reply behind it is
    held. At the attempt's deadline the stalled partial frame is dropped (as the firmware
    drops one after 100 ms) and the reply behind it is found; before, the host timed out on
    every request until some 4,000 bytes of replies had piled up (a dozen requests)."""
    line = Line(tmp_path)
    line.session.receive_data(bytes([0xA5, 0x01, 0x82, 0x05, 0x00, 0xA0, 0x0F]))
    t0 = line.clock.now_s
    first = reply_of(line.run(commands.get_state()))
    assert first.frame.seq == 1 and not first.retried
    assert line.clock.now_s == pytest.approx(t0 + 0.5)  # found at the first deadline
    for _ in range(3):
        reply_of(line.run(commands.get_state()))
    stats = line.session.stats
    assert (stats.frames_sent, stats.timeouts, stats.other_errors) == (4, 0, 1)
    # the same at a boot wait: a BOOT behind a stalled header is returned at the deadline
    line.session.receive_data(bytes([0xA5, 0x01, 0x40, 0x00, 0x00, 0x00, 0x08]))
    line.board.boot()
    line.session.start_boot_wait(line.clock.now_s, 2.0)
    assert isinstance(line.run(), Booted)


def test_raw_requests_return_the_frame(tmp_path: Path) -> None:
    line = Line(tmp_path)
    reply = reply_of(line.run(commands.raw(FrameType.CONFIG_READ)))
    frame = commands.raw(FrameType.CONFIG_READ).decode(reply.frame)
    assert isinstance(frame, Frame) and frame.payload.startswith(b"{")
    assert commands.config_read().decode(reply.frame)["n_cells"] == 4


def test_a_failing_tx_filter_leaves_nothing_in_flight() -> None:
    session = Session()

    def broken(frame: bytes) -> bytes:
        raise OSError("injector failed")

    session.tx_filter = broken
    with pytest.raises(OSError):
        session.start(commands.hello(), 0.0)
    assert not session.busy
    session.tx_filter = None
    assert session.start(commands.hello(), 0.0)

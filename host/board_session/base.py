"""One board for one run, whatever kind it is: the interface the emulator, `hil`, the pytest
plugin and campaigns use, so none of them asks which kind of board it has.

Like python-can's buses, every kind behaves the same to its user: start it with
what the run needs on its flash (`BoardSetup`), talk to the firmware through
`client`, cut and restore power where the kind can, tear it down. The virtual
board (the MicroPython unix port on a pty) and a flashed board at a serial port
implement it; so can any new target (docs/internals.md, "How to change it").
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from host.link.byte_link import ByteLink
from host.link.lockstep_link import LockstepLink
from host.link.serial_link import SerialLink
from host.protocol.client import BmsClient, BmsError

if TYPE_CHECKING:
    from cellmodel.design import CellDesign
    from host.boards import Board
    from host.scenarios import InitialState

# A reply slower than this (after the client's retries) counts the sample as lost.
REPLY_TIMEOUT_S = 1.0
# A virtual board boots in well under a second; a real one after a reset in a few.
BOOT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class BoardSetup:
    """What a run puts on the board before the firmware starts.

    `design` is the cell the BMS is configured for (its belief, never the simulated
    cell's truth); `initial` says which persisted state the firmware boots from (None:
    leave the board's own: a fresh virtual board has none, a flashed board keeps its);
    `cell_soc` each simulated cell's SOC at the start, which a true state file holds per
    cell (empty: `initial.soc` for every cell); `sample_period_ms` the period the host
    will sample at: a board the run provisions (virtual, QEMU) is set up for it as a user
    flashes a board for it (its timing keys, host.firmware_config), a flashed board keeps
    its own (None: the board definition's).
    """

    design: CellDesign
    initial: InitialState | None = None
    cell_soc: tuple[float, ...] = ()
    sample_period_ms: int | None = None

    def for_board(self, board: Board) -> Board:
        """`board` sampling at this setup's period."""
        if self.sample_period_ms is None:
            return board
        return replace(board, sample_period_ms=self.sample_period_ms)


class PowerNotControllable(RuntimeError):
    """The host cannot switch this board's power."""


class BoardSession(ABC):
    """A board with the firmware running, reachable through `client` once started."""

    kind: ClassVar[str]
    can_cut_power: ClassVar[bool] = False

    def __init__(self, *, lockstep: bool = False) -> None:
        """lockstep: the run waits for every reply and nothing else happens meanwhile, so a
        board on this machine is reached through host.link.LockstepLink, which waits for the
        reply without the event loop; otherwise (real time, a board at a port) SerialLink."""
        self.lockstep = lockstep
        # lockstep: how long the link polls for a reply before it sleeps (LockstepLink); set
        # before start by a run that has a core for it (a pipelined run: host.emulator.run)
        self.busy_wait_s = 0.0
        self._link: ByteLink | None = None
        self._client: BmsClient | None = None

    @property
    @abstractmethod
    def port(self) -> str:
        """The serial port the firmware talks on (a device path)."""

    @property
    def client(self) -> BmsClient:
        if self._client is None:
            raise RuntimeError(f"{self.kind} board not started")
        return self._client

    @abstractmethod
    async def start(self, setup: BoardSetup, *, connect: bool = True) -> None:
        """Put the setup on the board and leave it running the firmware; with `connect`,
        `client` is connected too (the firmware has answered, so the next request is
        served). Without, the port is free for another program until `connect()`."""

    async def connect(self) -> BmsClient:
        """Open the link to a started board and wait until the firmware answers HELLO."""
        client = await self._open_link()
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            try:
                await client.hello()
                return client
            except BmsError:
                if time.monotonic() > deadline:
                    raise

    async def power_cut(self) -> None:
        raise PowerNotControllable(f"the host cannot switch a {self.kind} board's power")

    async def power_on(self) -> None:
        raise PowerNotControllable(f"the host cannot switch a {self.kind} board's power")

    async def teardown(self) -> None:
        """Close the link and release the board; safe to call twice or before start."""
        await self._close_link()

    async def _close_link(self) -> None:
        """Close the link only: the board runs on, its port free for another program."""
        link, self._link, self._client = self._link, None, None
        if link is not None:
            await link.close()

    def describe(self) -> dict[str, Any]:
        """What a run's summary says about the board."""
        return {"kind": self.kind, "port": self.port if self._client else None}

    async def _open_link(self) -> BmsClient:
        if self.lockstep:
            self._link = await LockstepLink.open(self.port, busy_s=self.busy_wait_s)
        else:
            self._link = await SerialLink.open(self.port)
        self._client = BmsClient(self._link, timeout_s=REPLY_TIMEOUT_S)
        return self._client

    async def __aenter__(self) -> BoardSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.teardown()


class EmulatedBoard(Protocol):
    """A board process this host runs (host.vboard.VirtualBoard, QemuBoard)."""

    @property
    def port(self) -> str: ...

    async def power_cut(self) -> None: ...

    async def power_on(self) -> None: ...

    async def stop(self) -> None: ...


B = TypeVar("B", bound=EmulatedBoard)


class EmulatedBoardSession(BoardSession, Generic[B]):
    """A session whose board runs on this host: it owns the board, so it switches its power
    and stops it at teardown. Subclasses create `board` in start()."""

    can_cut_power = True

    def __init__(self, *, lockstep: bool = False) -> None:
        super().__init__(lockstep=lockstep)
        self.board: B | None = None

    @property
    def port(self) -> str:
        if self.board is None:
            raise RuntimeError(f"{self.kind} board not started")
        return self.board.port

    async def power_cut(self) -> None:
        assert self.board is not None
        await self.board.power_cut()

    async def power_on(self) -> None:
        assert self.board is not None
        await self.board.power_on()

    async def teardown(self) -> None:
        await super().teardown()
        board, self.board = self.board, None
        if board is not None:
            await board.stop()

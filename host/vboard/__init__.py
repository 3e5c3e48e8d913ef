"""The virtual board: MicroPython's unix port on a pseudo-terminal (see host.vboard.board)."""

from host.vboard.board import VirtualBoard

__all__ = ["VirtualBoard"]

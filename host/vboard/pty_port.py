"""The virtual board's USB serial port: a pseudo-terminal pair in raw mode.

The board process gets the master side as stdin/stdout; clients (pyserial,
mpremote, a terminal) open the slave device path like /dev/ttyACM0.

The slave is put in raw mode (cfmakeraw) because the line discipline sits
between the two sides: with echo on, the board would read back its own
output; with ICRNL or OPOST on, binary frames would be rewritten. This port
also keeps one slave descriptor open for its whole life: without it, the
master reads EIO whenever no client has the port open, and the board process
would see its serial port vanish.
"""

from __future__ import annotations

import os
import pty
import termios
import tty


class PtyPort:
    """An open pty pair; `path` stays valid until `close()`."""

    def __init__(self) -> None:
        master_fd, slave_fd = pty.openpty()
        self.master_fd = master_fd
        self._slave_fd = slave_fd
        self.path = os.ttyname(slave_fd)
        tty.setraw(slave_fd, termios.TCSANOW)
        # Nothing of the board's output may be turned into signals or echoes
        # on the master side either.
        tty.setraw(master_fd, termios.TCSANOW)

    def drop_pending(self) -> None:
        """Discard bytes in flight both ways, as unplugging a USB cable does."""
        termios.tcflush(self._slave_fd, termios.TCIOFLUSH)
        termios.tcflush(self.master_fd, termios.TCIOFLUSH)

    def close(self) -> None:
        for fd in (self.master_fd, self._slave_fd):
            if fd >= 0:
                os.close(fd)
        self.master_fd = self._slave_fd = -1

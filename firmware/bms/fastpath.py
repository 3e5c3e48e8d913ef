"""The frame path's inner loops, picked once for the port: machine code where it has a
native emitter, bytecode elsewhere.

Every frame in and out goes through three loops byte by byte: the line's reading
(read_ready), the copy of the bytes into the parser's buffer (copy) and the CRC of each
frame (crc16). bms/native.py has them as viper functions, which MicroPython compiles to the
CPU's own instructions (an order of magnitude fewer than bytecode per byte); bms/portable.py
has the same in bytecode. Ports with an emitter: the unix ports (x64, x86), the RP2040
(armv6m, MICROPY_EMIT_THUMB), the ESP32 (xtensawin). Elsewhere importing bms.native fails:
from source with a SyntaxError ("invalid micropython decorator"), as an .mpy with a
ValueError ("native code in .mpy unsupported"; the QEMU Cortex-M0 board, whose port leaves
the emitter out on the nRF51), under CPython with an ImportError. NATIVE tells which runs.
"""

try:
    from bms.native import copy as copy
    from bms.native import crc16 as crc16
    from bms.native import read_ready as read_ready

    NATIVE = True
except (ImportError, SyntaxError, ValueError):
    from bms.portable import copy as copy
    from bms.portable import crc16 as crc16
    from bms.portable import read_ready as read_ready

    NATIVE = False

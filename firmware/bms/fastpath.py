"""The frame path's inner loops, picked once for the port: machine code where it has a
native emitter, bytecode elsewhere.

Every frame in and out goes through the CRC byte by byte (crc16). bms/native.py has it
as a viper function, which MicroPython compiles to the CPU's own instructions (an order of
magnitude fewer than bytecode per byte); bms/portable.py has it in bytecode. Ports with an
emitter: the unix ports (x64, x86), the RP2040 (armv6m, MICROPY_EMIT_THUMB), the ESP32
(xtensawin). Elsewhere importing bms.native fails: from source with a SyntaxError ("invalid
micropython decorator"), as an .mpy with a ValueError ("native code in .mpy unsupported";
the QEMU Cortex-M0 board, whose port leaves the emitter out on the nRF51), under CPython
with an ImportError. NATIVE tells which runs.
"""

try:
    from bms.native import crc16 as crc16

    NATIVE = True
except (ImportError, SyntaxError, ValueError):
    from bms.portable import crc16 as crc16

    NATIVE = False

"""CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR).

A 256-entry table keeps every intermediate below 2**16, so the computation
stays in small ints on 32-bit ports (binascii.crc32 would allocate a long
int per call). Check value: crc16(b"123456789", 0, 9, 0xFFFF) == 0x29B1.
"""

from array import array

INIT = 0xFFFF


def _make_table():
    table = array("H", bytes(512))
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
            c &= 0xFFFF
        table[i] = c
    return table


_TABLE = _make_table()
del _make_table  # used once: its code need not stay in the heap


def crc16(buf, start, end, crc):
    """CRC of buf[start:end] continued from `crc` (pass INIT to start); no allocation."""
    table = _TABLE
    for i in range(start, end):
        crc = ((crc << 8) & 0xFF00) ^ table[((crc >> 8) ^ buf[i]) & 0xFF]
    return crc

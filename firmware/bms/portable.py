"""The frame path's inner loops in bytecode: bms/native.py's functions for ports without a
native emitter, with the same contracts and results (tests/firmware/test_native.py).

bms.fastpath picks these or the machine code once for the port.
"""

from array import array


def _make_table():
    """The 256-entry table of CRC-16/CCITT-FALSE (poly 0x1021)."""
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
    """CRC-16/CCITT-FALSE of buf[start:end] continued from `crc`; no allocation.

    A table CRC: every intermediate stays below 2**16, a small int on 32-bit ports
    (binascii.crc32 would allocate a long int per call).
    """
    table = _TABLE
    for i in range(start, end):
        # crc >> 8 and a byte are both below 256: their XOR indexes the table as it is
        crc = ((crc << 8) & 0xFF00) ^ table[(crc >> 8) ^ buf[i]]
    return crc


def copy(dst, dpos, src, spos, n):
    """dst[dpos:dpos+n] = src[spos:spos+n], without the slice objects that would allocate."""
    for k in range(n):
        dst[dpos + k] = src[spos + k]


def read_ready(ipoll, readinto, one, buf, off, n):
    """What the line holds now, up to n bytes, into buf[off:]; the count, or -1 at its end.

    The first byte is read at once (the caller saw the line ready), each further one only
    while ipoll(0) says one is waiting: never a wait for a byte that is not there.
    """
    k = 0
    while k < n:
        if k:
            waiting = False
            for _ in ipoll(0):  # ipoll reuses its tuple: no allocation
                waiting = True
                break
            if not waiting:
                break
        if not readinto(one, 1):
            return k if k else -1
        buf[off + k] = one[0]
        k += 1
    return k

"""The frame path's inner loops as machine code (MicroPython's viper emitter).

Importable only on a port built with a native emitter; bms.fastpath picks these or their
bytecode twins in bms/portable.py (same contracts, same results). Viper indexes buffers
through raw pointers, without bounds checks: every caller passes ranges it has checked
against the buffers' sizes.
"""

# ptr8 is a builtin of viper code only: ruff (which reads this as Python) does not know it.
# ruff: noqa: F821
import micropython


@micropython.viper
def crc16(buf, start: int, end: int, crc: int) -> int:
    """CRC-16/CCITT-FALSE of buf[start:end] continued from `crc`.

    Table-free: the byte update of the polynomial 0x1021 in shifts and XORs (the form of
    avr-libc's _crc_xmodem_update): no 512-byte table in the heap, no loads from it.
    """
    b = ptr8(buf)
    i = start
    while i < end:
        x = ((crc >> 8) ^ b[i]) & 0xFF
        x ^= x >> 4
        crc = ((crc << 8) ^ (x << 12) ^ (x << 5) ^ x) & 0xFFFF
        i += 1
    return crc


@micropython.viper
def copy(dst, dpos: int, src, spos: int, n: int):
    """dst[dpos:dpos+n] = src[spos:spos+n], without the slice objects that would allocate."""
    d = ptr8(dst)
    s = ptr8(src)
    i = 0
    while i < n:
        d[dpos + i] = s[spos + i]
        i += 1


@micropython.viper
def read_ready(ipoll, readinto, one, buf, off: int, n: int) -> int:
    """Read what the line holds now, up to n bytes, into buf[off:]; the count, or -1 at its end.

    For a stream whose readinto waits for the full count (sys.stdin on every port): the
    first byte is read at once (the caller saw the line ready), each further one only
    while ipoll(0) says one is waiting, so this never waits for a byte that is not there.
    `one` is a 1-byte buffer for the single reads.
    """
    d = ptr8(buf)
    s = ptr8(one)
    k = 0
    while k < n:
        if k:
            waiting = 0
            for _ in ipoll(0):  # ipoll reuses its tuple: no allocation
                waiting = 1
                break
            if not waiting:
                break
        if not readinto(one, 1):
            return k if k else -1
        d[off + k] = s[0]
        k += 1
    return k

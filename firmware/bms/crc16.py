"""CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR).

crc16(buf, start, end, crc) is the CRC of buf[start:end] continued from `crc` (INIT to
start), allocation-free; machine code where the port has a native emitter, a table CRC in
bytecode elsewhere (bms.fastpath). Check value: crc16(b"123456789", 0, 9, 0xFFFF) == 0x29B1.
"""

from bms.fastpath import crc16 as crc16

INIT = 0xFFFF

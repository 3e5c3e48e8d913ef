# pyright: reportMissingImports=false, reportAttributeAccessIssue=false
"""MicroPython-side rig for power cuts during a save, on the boards' real filesystems.

MicroPython's own VfsFat (FatFs) and VfsLfs2 (littlefs) run on a RAM block
device whose power can be cut at any write: the cut write is dropped, or torn
(for FAT, the leading sectors of a multi-sector write; for littlefs, the first
half of a program, or of an erase), and nothing after it reaches the flash.
The image left behind is mounted afresh, as at the next power-up, and the
firmware's own loaders read it. So the semantics under test are the
filesystems' own: littlefs renames over a file atomically, VfsFat removes the
old file and then renames (extmod/vfs_fat.c), FatFs writes data, FAT and
directory sectors in its own order.

Used by tests/firmware/test_power_cuts.py.
"""

import os

MOUNT = "/flash"
SECTOR = 512


class PowerCut(Exception):
    pass


class Flash:
    """A block device in RAM; `left` writes (programs and erases) get through, then the
    power is cut (-1: never). After the cut nothing more is written."""

    def __init__(self, kind, blocks, image=None):
        self.kind = kind
        self.blocks = blocks
        self.mem = bytearray(image) if image is not None else bytearray(blocks * SECTOR)
        self.left = -1
        self.torn = False
        self.writes = 0
        self.dead = False

    def readblocks(self, n, buf, off=0):
        a = n * SECTOR + off
        buf[:] = self.mem[a : a + len(buf)]

    def _cut(self):
        """True when this write is where the power goes (or went) off."""
        if self.dead:
            return True
        if self.left == 0:
            self.dead = True
            return True
        if self.left > 0:
            self.left -= 1
        self.writes += 1
        return False

    def writeblocks(self, n, buf, off=0):
        a = n * SECTOR + off
        if self._cut():
            if self.torn and self.dead and self.left == 0:
                self.left = -2  # tear only the write at the cut
                keep = len(buf) // 2
                if self.kind == "fat":
                    keep = (len(buf) // SECTOR) // 2 * SECTOR  # whole sectors only
                self.mem[a : a + keep] = buf[:keep]
            raise PowerCut()
        self.mem[a : a + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return SECTOR
        if op == 6:  # erase (littlefs)
            a = arg * SECTOR
            if self._cut():
                if self.torn and self.dead and self.left == 0:
                    self.left = -2
                    for k in range(a, a + SECTOR // 2):
                        self.mem[k] = 0xFF
                raise PowerCut()
            for k in range(a, a + SECTOR):
                self.mem[k] = 0xFF
            return 0
        return 0


def _vfs(dev):
    if dev.kind == "fat":
        return os.VfsFat(dev)
    return os.VfsLfs2(dev, readsize=32, progsize=32, lookahead=32)


def format_flash(kind, blocks=256):
    dev = Flash(kind, blocks)
    if kind == "fat":
        os.VfsFat.mkfs(dev)
    else:
        os.VfsLfs2.mkfs(dev, readsize=32, progsize=32, lookahead=32)
    return dev


def mount(dev):
    try:  # noqa: SIM105 -- MicroPython has no contextlib
        os.umount(MOUNT)
    except OSError:
        pass
    os.mount(_vfs(dev), MOUNT)


def power_up(image, kind):
    """A fresh device from `image`, mounted as at power-up."""
    dev = Flash(kind, len(image) // SECTOR, image)
    mount(dev)
    return dev


def listing():
    try:
        return sorted(os.listdir(MOUNT))
    except OSError:
        return []


def cut_during(image, kind, save, left, torn):
    """Power up from `image` and run save(), cutting the power at write number `left`
    (-1: never); return (the image after, whether the power was cut, writes done)."""
    dev = power_up(image, kind)
    dev.left = left
    dev.torn = torn
    try:
        save()
    except PowerCut:
        return bytes(dev.mem), True, dev.writes
    return bytes(dev.mem), False, dev.writes


def write_garbage(path, n):
    with open(path, "w") as f:
        f.write('{"torn": [' + "1," * n)

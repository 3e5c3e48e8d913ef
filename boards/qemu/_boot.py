# Frozen into the sisnbms QEMU board's firmware; runs before boot.py at every (soft) reset.
# Mounts the flash (a littlefs v2 image file on the host) at /, as the rp2 port's _boot.py
# mounts its flash, and makes a filesystem on a blank image.
import sys

import qemuboard
import vfs

bdev = qemuboard.Flash()
try:
    fs = vfs.VfsLfs2(bdev, progsize=256)
except OSError:
    vfs.VfsLfs2.mkfs(bdev, progsize=256)
    fs = vfs.VfsLfs2(bdev, progsize=256)
vfs.mount(fs, "/")
sys.path.append("/lib")
del sys, qemuboard, vfs, bdev, fs

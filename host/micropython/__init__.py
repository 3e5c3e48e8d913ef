"""Chip-faithful MicroPython builds: the 32-bit unix interpreter and the QEMU board's firmware.

`build_target(target, source, out)` builds a target from a MicroPython source tree or tarball
into a cache and returns a BuildResult (binary path, cache entry, timings); `latest_build`
finds the newest cached one. Targets: host.micropython.targets.TARGETS.
"""

from host.micropython.build import BuildFailed, BuildResult, build_target, latest_build
from host.micropython.targets import QEMU_TARGET, TARGETS, UNIX32_TARGET

__all__ = [
    "QEMU_TARGET",
    "TARGETS",
    "UNIX32_TARGET",
    "BuildFailed",
    "BuildResult",
    "build_target",
    "latest_build",
]

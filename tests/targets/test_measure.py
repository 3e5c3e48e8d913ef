"""The bench measurements run on the chip-faithful targets and measure what they say.

No timing is judged here (performance goals live in `sisnbms bench`): these check that the
firmware serves 500 samples within an RP2040-sized heap on unix-32, and that the instruction
count of Bms.step under -icount grows with the number of cells it handles.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from host.micropython import BuildResult
from host.micropython.build import CACHE_ENV
from host.micropython.measure import heap_usage, step_time_qemu


@pytest.fixture(autouse=True)
def _session_cache(mp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(mp_cache))  # the measurements find the session's builds


def test_firmware_serves_within_the_rp2040_heap_on_unix32(unix32: BuildResult) -> None:
    heap = heap_usage("unix-32")
    # the script asserts that all 500 samples and the configuration write were served
    assert heap["gc_heap_total_B"] == 219_072  # the QEMU board's (the RP2040's) heap
    assert 0 < heap["after_boot_B"] <= heap["peak_in_operation_B"] < heap["gc_heap_total_B"]
    assert heap["after_operation_B"] <= heap["peak_in_operation_B"]


def test_step_instructions_grow_with_the_cells(qemu_firmware: BuildResult) -> None:
    result = step_time_qemu(quick=True)
    counts = [result[f"cells_{n}"]["instructions_per_step_median"] for n in (1, 4, 16)]
    assert 0 < counts[0] < counts[1] < counts[2], result

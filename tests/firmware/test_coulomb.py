"""Integer coulomb counter: exact against integer sums, under MicroPython and (properties) CPython.

Current is positive on discharge; the counter holds the charge in the cell.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.firmware.bms_harness import firmware_module, run_rig

_LOOP = """
from bms.coulomb import CoulombCounter

def run(n, ce, amp):
    c = CoulombCounter(ce)
    add = c.add
    x = 12345
    sc = 0
    sd = 0
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        cur = (x >> 8) % (2 * amp + 1) - amp
        dt = 900 + (x & 255)
        add(cur, dt)
        p = cur * dt
        if p > 0:
            sd += p
        else:
            sc -= p
    return c, sc, sd

def check(n, ce, amp):
    c, sc, sd = run(n, ce, amp)
    lp = 1000000 - ce
    assert 0 <= c.rem_mAms < 1000 and 0 <= c.loss_u < 1000000
    lhs = (1000 * c.q_mAs + c.rem_mAms) * 1000000 - c.loss_u
    rhs = 1000000 * (sc - sd) - lp * sc
    assert lhs == rhs, (lhs, rhs)
    if ce == 1000000:
        assert 1000 * c.q_mAs + c.rem_mAms == sc - sd
    print(n, c.q_mAs, sc, sd)
"""


@pytest.mark.slow
def test_ten_million_samples_equal_the_exact_integer_sum(tmp_path: Path) -> None:
    t0 = time.monotonic()
    out = run_rig(_LOOP + "check(10000000, 998000, 2000)\n", tmp_path, timeout_s=120)
    elapsed = time.monotonic() - t0
    print(f"10M samples under MicroPython: {elapsed:.1f} s; {out.strip()}")


def test_counter_exact_with_and_without_efficiency(tmp_path: Path) -> None:
    run_rig(
        _LOOP
        + "check(200000, 1000000, 2000)\ncheck(200000, 998000, 100000)\ncheck(50000, 900000, 7)\n",
        tmp_path,
    )


def test_extreme_products_stay_exact(tmp_path: Path) -> None:
    run_rig(
        """
from bms.coulomb import CoulombCounter
c = CoulombCounter(900000)
sc = 0
sd = 0
SEQ = ((-100000, 10000), (100000, 10000), (-99999, 9999), (-1, 1), (1, 9999), (-100000, 10000))
for cur, dt in SEQ:
    c.add(cur, dt)
    p = cur * dt
    if p > 0:
        sd += p
    else:
        sc -= p
lhs = (1000 * c.q_mAs + c.rem_mAms) * 1000000 - c.loss_u
assert lhs == 1000000 * (sc - sd) - 100000 * sc
""",
        tmp_path,
    )


class Bounded(int):
    """An int that fails when any arithmetic result leaves the 32-bit small-int range."""

    LIMIT = 1 << 30

    def _wrap(self, v: int) -> Bounded:
        assert -self.LIMIT <= v < self.LIMIT, f"intermediate {v} beyond +-2**30"
        return Bounded(v)

    def __add__(self, o: int) -> Bounded:  # type: ignore[override]
        return self._wrap(int(self) + int(o))

    __radd__ = __add__

    def __sub__(self, o: int) -> Bounded:  # type: ignore[override]
        return self._wrap(int(self) - int(o))

    def __rsub__(self, o: int) -> Bounded:  # type: ignore[override]
        return self._wrap(int(o) - int(self))

    def __mul__(self, o: int) -> Bounded:  # type: ignore[override]
        return self._wrap(int(self) * int(o))

    __rmul__ = __mul__

    def __floordiv__(self, o: int) -> Bounded:  # type: ignore[override]
        return self._wrap(int(self) // int(o))

    def __rfloordiv__(self, o: int) -> Bounded:  # type: ignore[override]
        return self._wrap(int(o) // int(self))

    def __neg__(self) -> Bounded:
        return self._wrap(-int(self))


samples = st.lists(
    st.tuples(st.integers(-100000, 100000), st.integers(0, 10000)), min_size=1, max_size=200
)


@settings(max_examples=200, deadline=None)
@given(samples, st.integers(900000, 1000000))
def test_counter_property_exact_and_bounded(seq: list[tuple[int, int]], ce: int) -> None:
    c = firmware_module("bms.coulomb").CoulombCounter(ce)
    c.loss_ppm = Bounded(c.loss_ppm)
    sc = sd = 0
    for cur, dt in seq:
        c.add(Bounded(cur), Bounded(dt))
        p = cur * dt
        if p > 0:
            sd += p
        else:
            sc -= p
    assert 0 <= c.rem_mAms < 1000
    assert 0 <= c.loss_u < 1000000
    lhs = (1000 * int(c.q_mAs) + int(c.rem_mAms)) * 1000000 - int(c.loss_u)
    assert lhs == 1000000 * (sc - sd) - (1000000 - ce) * sc

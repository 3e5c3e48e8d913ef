"""Property tests (CPython, hypothesis) of the firmware's integer arithmetic and OCV tables.

The firmware runs on 32-bit MicroPython ports where ints beyond +-2**30 become
heap-allocated big ints. `SmallInt` checks that claim operation by operation:
every intermediate result of the function under test must stay a small int.
The same functions run under real MicroPython in the estimator tests.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.firmware.bms_harness import firmware_module

LIMIT = 2**30

intmath = firmware_module("bms.intmath")
ocv = firmware_module("bms.ocv")
resistance = firmware_module("bms.resistance")
config_rules = firmware_module("bms.config_rules")


class SmallInt(int):
    """An int whose arithmetic fails loudly when a result leaves the small-int range."""

    def __new__(cls, value: int) -> SmallInt:
        if not -LIMIT <= value < LIMIT:
            raise OverflowError(f"{value} is not a small int on a 32-bit port")
        return super().__new__(cls, value)

    def _op(name: str) -> Any:  # type: ignore[misc]
        def op(self: SmallInt, other: Any) -> Any:
            result = getattr(int, name)(self, other)
            return SmallInt(result) if isinstance(result, int) else result

        return op

    __add__ = __radd__ = _op("__add__")
    __sub__ = _op("__sub__")
    __rsub__ = _op("__rsub__")
    __mul__ = __rmul__ = _op("__mul__")
    __floordiv__ = _op("__floordiv__")
    __rfloordiv__ = _op("__rfloordiv__")
    __rshift__ = _op("__rshift__")
    __lshift__ = _op("__lshift__")
    __mod__ = _op("__mod__")

    def __neg__(self) -> SmallInt:
        return SmallInt(-int(self))


small = st.integers(min_value=0, max_value=LIMIT - 1)


@given(b=st.integers(min_value=1, max_value=LIMIT // 10 - 1), data=st.data())
def test_ratio_1e4_is_exact_and_stays_small(b: int, data: st.DataObject) -> None:
    # The documented domain: the result is a small int too.
    a = data.draw(st.integers(min_value=0, max_value=min(LIMIT - 1, (LIMIT * b - 1) // 10000)))
    assert intmath.ratio_1e4(SmallInt(a), SmallInt(b)) == a * 10000 // b


# ratio_1e4 takes two digits a step while remainder x 100 stays a small int (b <= 10737418),
# one digit a step above: both forms, and the edge between them, at the domain's ends.
_TWO_FORMS = st.sampled_from(
    [1, 7, 7199999, 10737417, 10737418, 10737419, 72000000, LIMIT // 10 - 1]
)


@given(b=st.one_of(_TWO_FORMS, st.integers(min_value=10737318, max_value=10737518)), data=st.data())
def test_ratio_1e4_is_exact_on_both_sides_of_its_two_digit_form(
    b: int, data: st.DataObject
) -> None:
    top = min(LIMIT - 1, (LIMIT * b - 1) // 10000)
    a = data.draw(st.one_of(st.sampled_from([0, b - 1, b, top]), st.integers(0, top)))
    assert intmath.ratio_1e4(SmallInt(a), SmallInt(b)) == a * 10000 // b


@given(x=small, part=st.integers(min_value=0, max_value=10000))
def test_of_1e4_is_exact_and_stays_small(x: int, part: int) -> None:
    assert intmath.of_1e4(SmallInt(x), SmallInt(part)) == x * part // 10000


@given(d=st.integers(min_value=1, max_value=100000), data=st.data())
def test_muldiv_is_exact_for_either_sign_and_stays_small(d: int, data: st.DataObject) -> None:
    # its domain as documented: b of either sign (core.py withdraws an offset of either
    # sign with it), |b| * d and the result small ints
    b = data.draw(st.integers(min_value=-((LIMIT - 1) // d), max_value=(LIMIT - 1) // d))
    hi = LIMIT - 1 if b == 0 else min(LIMIT - 1, (LIMIT - 1) * d // abs(b))
    a = data.draw(st.integers(min_value=0, max_value=hi))
    assert intmath.muldiv(SmallInt(a), SmallInt(b), SmallInt(d)) == a * b // d


@given(b=st.integers(min_value=1, max_value=10000), data=st.data())
def test_scale_1e4_is_exact_and_stays_small(b: int, data: st.DataObject) -> None:
    a = data.draw(st.integers(min_value=0, max_value=min(LIMIT - 1, 107374 * b - 1)))
    assert intmath.scale_1e4(SmallInt(a), SmallInt(b)) == a * 10000 // b


@given(
    ma=st.one_of(st.sampled_from([0, 999, -999, 100000, -100000]), st.integers(-100000, 100000)),
    r=st.one_of(st.sampled_from([0, 1, 999, 1073742, 10000000]), st.integers(0, 10000000)),
)
def test_ir_of_is_exact_and_stays_small(ma: int, r: int) -> None:
    # The documented domain (|mA| <= 1e5, R up to resistance.py's 10 ohm); exact, floored
    # towards 0 (a 999 mA step over 10 ohm once passed 2**30 on the 32-bit port)
    exact = abs(ma) * r // 1000000
    assert resistance.ir_of(SmallInt(ma), SmallInt(r)) == (exact if ma >= 0 else -exact)


@given(n=small)
def test_isqrt_matches_math_isqrt(n: int) -> None:
    assert intmath.isqrt(SmallInt(n)) == math.isqrt(n)


def _tables() -> Any:
    d = config_rules.DEFAULTS
    return ocv.OcvTables(d["ocv_soc_cpct"], d["ocv_chg_mV"], d["ocv_dsg_mV"])


@given(
    branch=st.sampled_from([0, 1]),
    s1=st.integers(min_value=-2000, max_value=12000),
    s2=st.integers(min_value=-2000, max_value=12000),
)
def test_ocv_is_monotonic_in_soc_on_each_branch(branch: int, s1: int, s2: int) -> None:
    t = _tables()
    lo, hi = sorted((s1, s2))
    assert t.mV_at(branch, SmallInt(lo)) <= t.mV_at(branch, SmallInt(hi))


@given(
    branch=st.sampled_from([0, 1]),
    soc=st.integers(min_value=0, max_value=10000),
    shift=st.integers(min_value=-30, max_value=30),
)
def test_soc_from_voltage_inverts_voltage_from_soc(branch: int, soc: int, shift: int) -> None:
    # at any temperature shift of the tables (both directions apply it)
    t = _tables()
    t.shift_mV = shift
    mv = t.mV_at(branch, SmallInt(soc))
    back = t.soc_ext(branch, SmallInt(mv))
    # one mV of table resolution is at most ~5 cpct on the steepest segment... and up to
    # ~33 cpct on the flattest (30 mV per 1000 cpct): the inverse is exact to that.
    assert abs(back - soc) <= 35
    assert 0 <= back <= 10000


@given(branch=st.sampled_from([0, 1]), mv=st.integers(min_value=0, max_value=6000))
def test_extended_inverse_stays_within_its_bounds(branch: int, mv: int) -> None:
    t = _tables()
    s = t.soc_ext(branch, SmallInt(mv))
    assert -1000 <= s <= 11000


def test_discharge_branch_lies_below_the_charge_branch() -> None:
    t = _tables()
    for soc in range(0, 10001, 250):
        assert t.mV_at(1, soc) < t.mV_at(0, soc)

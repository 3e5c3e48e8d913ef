"""The scalar fast path (cellmodel.smallpack) against the vectorized engine: bit for bit.

Two models of the same pack, one on each engine, get the same long sequence of calls
(charge, discharge, rest, CV holds, pulses, balancing bleed on some cells, ambient
changes, steps on both sides of the RC centre correction) and every output is compared
with ==, never approximately. The numpy routines the fast path replicates are compared
with numpy itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from cellmodel import CellDesign, PackModel, load_cell
from cellmodel.guards import GuardEvent
from cellmodel.pack import FAST_PATH_MAX_CELLS, StepResult, with_cells
from cellmodel.smallpack import (
    ANODE_FAST_MAX_CELLS,
    ScalarTable,
    _clip,
    _sign,
    np_max,
    pairwise_sum,
)

_RESULT_ARRAYS = (
    "cell_current_A",
    "v_V",
    "ocv_V",
    "soc",
    "h",
    "temp_degC",
    "anode_util_mAh_g",
    "anode_potential_V",
)
_MODEL_ARRAYS = ("soc", "h", "v1", "v2", "temp_degC", "ocv_V", "v_V", "cell_current_A", "r0_ohm")


@dataclass
class _Tally:
    """What the sequence exercised, so a test can show it met every case it names."""

    steps: int = 0
    cv: int = 0
    bleed: int = 0
    centre: int = 0
    events: int = 0


def _same(a: Any, b: Any, what: str) -> None:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), what
        assert a.shape == b.shape, what
        assert np.array_equal(a, b, equal_nan=True), f"{what}: {a - b}"
    else:
        assert a == b or (a != a and b != b), f"{what}: {a!r} != {b!r}"


def _same_event(fast: GuardEvent | None, ref: GuardEvent | None, what: str) -> None:
    if fast is None or ref is None:
        assert fast is ref, what
        return
    assert (fast.kind, fast.limit, fast.unit, fast.t_s, fast.cell) == (
        ref.kind,
        ref.limit,
        ref.unit,
        ref.t_s,
        ref.cell,
    ), what
    _same(fast.value, ref.value, what)


def _same_result(fast: StepResult, ref: StepResult, what: str) -> None:
    for name in ("t_s", "current_A", "pack_v_V"):
        _same(getattr(fast, name), getattr(ref, name), f"{what} {name}")
    for name in _RESULT_ARRAYS:
        _same(getattr(fast, name), getattr(ref, name), f"{what} {name}")


def _same_model(fast: PackModel, ref: PackModel, what: str) -> None:
    for name in _MODEL_ARRAYS:
        _same(getattr(fast, name), getattr(ref, name), f"{what} model.{name}")
    _same(fast.t_s, ref.t_s, f"{what} t_s")
    _same(fast.anode_potential_V, ref.anode_potential_V, f"{what} anode_potential_V")


@pytest.fixture(scope="module")
def spread_design() -> CellDesign:
    """Cells with capacity, resistance and SOC spread (each cell its own numbers)."""
    return load_cell("sisn-lco-2ah-4s")


def _pair(design: CellDesign, n: int, **kw: Any) -> tuple[PackModel, PackModel]:
    d = with_cells(design, n)
    fast = PackModel(d, initial_soc=0.3, seed=21, **kw)
    ref = PackModel(d, initial_soc=0.3, seed=21, fast_path=False, **kw)
    assert fast._small is not None and ref._small is None  # two different engines
    return fast, ref


def _segments(rng: np.random.Generator, capacity_Ah: float) -> list[tuple[str, float, int]]:
    """(kind, C-rate or volts, samples): a charge-discharge history with holds and pulses."""
    plan = [("charge", 0.5, 160), ("cv", 4.2, 60), ("rest", 0.0, 40), ("pulse", 2.0, 60)]
    plan += [("discharge", 1.0, 150), ("rest", 0.0, 30), ("charge", 1.0, 80), ("cv", 4.15, 40)]
    plan += [("pulse", 1.5, 80), ("discharge", 0.3, 120), ("cv", 3.6, 30), ("rest", 0.0, 20)]
    out = []
    for kind, value, samples in plan:
        out.append((kind, value * (capacity_Ah if kind != "cv" else 1.0), samples))
        if rng.random() < 0.5:
            out.append(("rest", 0.0, int(rng.integers(3, 15))))
    return out


def _drive(fast: PackModel, ref: PackModel, seed: int, tally: _Tally) -> None:
    """The same calls on both models, outputs compared after every one."""
    rng = np.random.default_rng(seed)
    n = fast.n_cells
    cap = float(np.min(fast.capacity_Ah))
    for seg, (kind, value, samples) in enumerate(_segments(rng, cap)):
        if seg % 3 == 2:
            ambient = float(rng.choice([-10.0, 5.0, 25.0, 45.0]))
            fast.set_ambient(ambient)
            ref.set_ambient(ambient)
        for k in range(samples):
            dt = float(rng.choice([0.25, 1.0, 1.999, 2.0, 5.0, 30.0]))
            bleed = None
            if n > 1 and rng.random() < 0.4:
                bleed = np.where(rng.random(n) < 0.5, 4.1 / 33.0, 0.0)
            if kind == "cv":
                i = fast.cv_current_A(value, dt, bleed)
                _same(i, ref.cv_current_A(value, dt, bleed), "cv_current_A")
                tally.cv += 1
            elif kind == "pulse":
                i = value if (k // 5) % 2 == 0 else -0.5 * value
            elif kind == "rest":
                i = 0.0
            else:
                i = value if kind == "discharge" else -value
            _same(fast.terminal_voltage_V(i, bleed), ref.terminal_voltage_V(i, bleed), "terminal")
            event = fast.current_event(i, bleed)
            _same_event(event, ref.current_event(i, bleed), "current_event")
            _same_result(fast.step(i, dt, bleed), ref.step(i, dt, bleed), f"{kind} {k}")
            state = fast.state_event()
            _same_event(state, ref.state_event(), "state_event")
            tally.steps += 1
            tally.bleed += bleed is not None
            tally.centre += dt >= 2.0
            tally.events += (event is not None) + (state is not None)
        _same_model(fast, ref, f"after {kind}")


@pytest.mark.parametrize("n", [1, 4, 16])
@pytest.mark.parametrize(
    "kw",
    [
        pytest.param({}, id="thermal"),
        pytest.param({"hysteresis": False}, id="thermal-no-hysteresis"),
        pytest.param({"isothermal": True}, id="isothermal"),
        pytest.param({"isothermal": True, "hysteresis": False}, id="isothermal-no-hysteresis"),
    ],
)
def test_fast_path_is_the_vectorized_engine_bit_for_bit(
    spread_design: CellDesign, n: int, kw: dict[str, Any]
) -> None:
    fast, ref = _pair(spread_design, n, **kw)
    if n > 1:
        assert np.unique(fast.params.r0_ohm).size == n and np.unique(fast.soc).size == n
    tally = _Tally()
    _drive(fast, ref, seed=n * 7 + len(kw), tally=tally)
    assert tally.cv >= 130 and tally.centre > 100 and tally.steps > tally.centre
    if n > 1:
        assert tally.bleed > 100
    # The pack-voltage CV target takes the same path.
    _same(fast.cv_current_A(4.1 * n, 2.0, pack=True), ref.cv_current_A(4.1 * n, 2.0, pack=True), "")


def test_aged_cell_on_both_engines() -> None:
    """Faded capacity and grown resistance: still the same numbers (12 cells: the most whose
    anode potential the fast path computes)."""
    fast, ref = _pair(load_cell("sisn-lco-2ah-aged"), ANODE_FAST_MAX_CELLS)
    _drive(fast, ref, seed=99, tally=_Tally())


def test_guard_events_are_the_same_on_both_engines(spread_design: CellDesign) -> None:
    """Over-charge and over-discharge past the guard rails: the same events, cell and value."""
    fast, ref = _pair(spread_design, 4)
    seen: list[GuardEvent] = []
    # Charge past full, discharge past empty, then at mid SOC a current whose R0 drop alone
    # is abuse.
    for current, steps in ((-6.0, 400), (6.0, 900), (0.0, 1), (200.0, 2)):
        if current == 0.0:
            fast.set_soc(0.5)
            ref.set_soc(0.5)
        for _ in range(steps):
            _same_result(fast.step(current, 5.0), ref.step(current, 5.0), "abuse")
            event = fast.state_event()
            _same_event(event, ref.state_event(), "state_event")
            if event is not None and event.kind not in {e.kind for e in seen}:
                seen.append(event)
    assert {"soc_high", "voltage_high", "soc_low", "voltage_low"} <= {e.kind for e in seen}
    bleed = np.array([0.0, 1e6, 0.0, 0.0])
    assert fast.current_event(1.0, bleed) == ref.current_event(1.0, bleed) is not None
    assert fast.current_event(1e6) == ref.current_event(1e6) is not None


def test_nan_input_falls_back_to_the_vectorized_engine(spread_design: CellDesign) -> None:
    """np.interp of NaN is not replicated: a NaN result reruns the step on numpy."""
    fast, ref = _pair(spread_design, 4)
    for current in (1.0, float("nan"), 1.0):
        _same_event(fast.current_event(current), ref.current_event(current), "nan current")
        _same_result(fast.step(current, 2.0), ref.step(current, 2.0), "nan")
        _same_event(fast.state_event(), ref.state_event(), "nan state")
    assert np.isnan(fast.v_V).all()


def test_large_packs_take_the_vectorized_engine(default_design: CellDesign) -> None:
    big = PackModel(with_cells(default_design, FAST_PATH_MAX_CELLS + 1))
    assert big._small is None
    assert PackModel(with_cells(default_design, FAST_PATH_MAX_CELLS))._small is not None


def test_pack_profile_runs_on_the_fast_path(spread_design: CellDesign) -> None:
    """run_profile of a pack steps the model: the same rows on both engines."""
    fast, ref = _pair(spread_design, 3)
    currents = np.tile([2.0, 0.0, -1.0, 4.0], 50)
    a = fast.run_profile(currents, 2.5)
    b = ref.run_profile(currents, 2.5)
    for name in ("t_s", "v_V", "ocv_V", "r0_ohm", "soc", "h", "temp_degC", "anode_potential_V"):
        _same(getattr(a, name), getattr(b, name), name)


# ----- the numpy routines the fast path replicates -----------------------------------


def test_pairwise_sum_is_numpys_sum() -> None:
    rng = np.random.default_rng(3)
    for n in [*range(1, 40), 64, 127, 128, 129, 200, 300, 1000]:
        for _ in range(30):
            a = rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 8, n)
            assert pairwise_sum(a.tolist()) == float(a.sum()), n
    specials = ([-0.0] * 9, [-0.0], [1.0, np.inf, 2.0], [np.inf, -np.inf], [1.0, np.nan])
    with np.errstate(invalid="ignore"):
        for special in specials:
            _same(pairwise_sum(list(special)), float(np.sum(special)), str(special))


def test_scalar_table_is_np_interp_and_slope(default_design: CellDesign) -> None:
    params = PackModel(default_design).params
    rng = np.random.default_rng(4)
    for table in (params.ocv, params.anode):
        scalar = ScalarTable(table)
        lo, hi = float(table.x[0]), float(table.x[-1])
        x = np.concatenate(
            (
                rng.uniform(lo - 0.2, hi + 0.2, 20_000),
                table.x,
                np.nextafter(table.x, np.inf),
                np.nextafter(table.x, -np.inf),
                [np.inf, -np.inf, -0.0],
            )
        )
        h = rng.uniform(-1.0, 1.0, x.size)
        mid_only = [scalar.value(v, None) for v in x.tolist()]
        assert np.array_equal(mid_only, table.lookup(x, None, grid=False))
        got = [scalar.value(v, hv) for v, hv in zip(x.tolist(), h.tolist(), strict=True)]
        assert np.array_equal(got, table.lookup(x, h, grid=False))
        got = [scalar.slope(v, hv) for v, hv in zip(x.tolist(), h.tolist(), strict=True)]
        assert np.array_equal(got, table.slope(x, h))
        assert np.isnan(scalar.value(float("nan"), 0.5))


def test_np_exp_of_a_float_is_the_same_as_of_an_array() -> None:
    """The fast path's premise: numpy's exp gives one value per argument, alone or in an
    array (math.exp differs in the last bit on a few percent of them: not used)."""
    rng = np.random.default_rng(5)
    x = np.concatenate((rng.uniform(-40.0, 5.0, 20_000), rng.uniform(-1e-3, 1e-3, 2000)))
    full = np.exp(x)
    assert [float(np.exp(v)) for v in x.tolist()] == full.tolist()
    for size in (1, 2, 3, 7, 17, 64):
        assert np.exp(x[:size].tolist()).tolist() == full[:size].tolist()


def test_clip_sign_and_max_are_numpys() -> None:
    special = [-0.0, 0.0, np.nan, -1.0, 2.0, 1.0, 0.5, -np.inf, np.inf, 1e-300, -1e-300]
    values = np.array(special)
    clipped = np.clip(values, 0.0, 1.0)
    got = np.array([_clip(v, 0.0, 1.0) for v in special])
    assert np.array_equal(got, clipped, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(clipped))
    signs = np.array([_sign(v) for v in special])
    assert np.array_equal(signs, np.sign(values), equal_nan=True)
    assert np.array_equal(np.signbit(signs), np.signbit(np.sign(values)))
    for seq in ([1.0, 3.0, 2.0], [1.0, np.nan, 5.0], [np.nan, 1.0], [-np.inf], [2.0, np.inf]):
        _same(np_max(list(seq)), float(np.max(seq)), str(seq))

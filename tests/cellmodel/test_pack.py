"""PackModel against independent solutions of the classical Thevenin model and more.

Current is positive on discharge throughout.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from cellmodel import CellDesign, PackModel, ProfileRun, load_cell
from cellmodel.pack import R_GAS_J_MOL_K, T_REF_K, with_cells

MV = 1e-3


def _mean_ocv(design: CellDesign, soc: np.ndarray | float) -> np.ndarray:
    """Hysteresis off: the OCV is the mean of the two branches (raw table, no extension)."""
    o = design.ocv
    return np.asarray(np.interp(soc, o.soc, 0.5 * (o.charge_V + o.discharge_V)))


def _mixed_profile(seed: int, total_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Random pulses, rests and charges with durations of 1-60 s."""
    rng = np.random.default_rng(seed)
    durations: list[float] = []
    currents: list[float] = []
    while sum(durations) < total_s:
        durations.append(float(rng.choice([1.0, 2.5, 7.0, 10.0, 30.0, 60.0])))
        currents.append(float(rng.choice([-2.0, -1.0, 0.0, 0.0, 1.0, 2.0, 4.0])))
    return np.asarray(durations), np.asarray(currents)


def _rk4_thevenin(
    design: CellDesign, soc0: float, durations: np.ndarray, currents: np.ndarray, h_s: float
) -> np.ndarray:
    """Independent fixed-step RK4 of the Thevenin ODEs with SOC-dependent R (25 degC).

    Returns the terminal voltage at the end of each interval (its current still flowing).
    """
    c = design.circuit
    q_as = design.capacity_Ah * 3600.0
    c1 = c.tau1_s / c.r1_ohm
    c2 = c.tau2_s / c.r2_ohm

    def shapes(soc: float) -> tuple[float, float]:
        x = min(max(soc, 0.0), 1.0)
        s0 = 1.0 + c.soc_curvature * (2 * x - 1) ** 2
        return s0, s0 + c.low_soc_rise * math.exp(-x / c.low_soc_width)

    def deriv(state: tuple[float, float, float], i: float) -> tuple[float, float, float]:
        soc, v1, v2 = state
        _, s12 = shapes(soc)
        r1, r2 = c.r1_ohm * s12, c.r2_ohm * s12
        return (-i / q_as, -v1 / (r1 * c1) - i / c1, -v2 / (r2 * c2) - i / c2)

    state = (soc0, 0.0, 0.0)
    out = []
    for dur, i in zip(durations, currents, strict=True):
        n = max(1, round(dur / h_s))
        h = dur / n
        for _ in range(n):
            k1 = deriv(state, i)
            k2 = deriv(tuple(s + 0.5 * h * k for s, k in zip(state, k1, strict=True)), i)  # type: ignore[arg-type]
            k3 = deriv(tuple(s + 0.5 * h * k for s, k in zip(state, k2, strict=True)), i)  # type: ignore[arg-type]
            k4 = deriv(tuple(s + h * k for s, k in zip(state, k3, strict=True)), i)  # type: ignore[arg-type]
            state = tuple(
                s + h / 6.0 * (a + 2 * b + 2 * cc + d)
                for s, a, b, cc, d in zip(state, k1, k2, k3, k4, strict=True)
            )  # type: ignore[assignment]
        soc, v1, v2 = state
        s0, _ = shapes(soc)
        out.append(float(_mean_ocv(design, soc)) - i * c.r0_ohm * s0 + v1 + v2)
    return np.asarray(out)


def _superposition(
    design: CellDesign, soc0: float, t_end: np.ndarray, durations: np.ndarray, currents: np.ndarray
) -> np.ndarray:
    """Linear Thevenin (constant R): sum of step responses, evaluated at interval ends."""
    c = design.circuit
    starts = np.concatenate(([0.0], np.cumsum(durations)[:-1]))
    d_i = np.diff(np.concatenate(([0.0], currents)))
    v = np.zeros_like(t_end)
    for r, tau in ((c.r1_ohm, c.tau1_s), (c.r2_ohm, c.tau2_s)):
        age = t_end[:, None] - starts[None, :]
        on = age > 0
        v -= r * np.sum(
            np.where(on, d_i[None, :] * (1 - np.exp(-np.where(on, age, 0) / tau)), 0), axis=1
        )
    charge_As = np.cumsum(currents * durations)
    soc = soc0 - charge_As / (3600.0 * design.capacity_Ah)
    return _mean_ocv(design, soc) - currents * c.r0_ohm + v


def test_matches_rk4_thevenin_over_long_mixed_profile(default_design: CellDesign) -> None:
    design = replace(
        default_design,
        circuit=replace(default_design.circuit, coulombic_efficiency=1.0, dUdT_V_K=0.0),
    )
    durations, currents = _mixed_profile(seed=7, total_s=1500.0)
    model = PackModel(design, isothermal=True, hysteresis=False, initial_soc=0.8)
    run = model.run_profile(currents, durations)
    ref = _rk4_thevenin(design, 0.8, durations, currents, h_s=0.05)
    assert np.max(np.abs(run.v_V[:, 0] - ref)) < 1 * MV
    # The same through step() with the same variable step lengths (1 s to 60 s).
    model2 = PackModel(design, isothermal=True, hysteresis=False, initial_soc=0.8)
    stepped = np.array([model2.step(i, d).v_V[0] for i, d in zip(currents, durations, strict=True)])
    assert np.max(np.abs(stepped - ref)) < 1 * MV


def test_matches_superposition_solution_for_linear_circuit(linear_design: CellDesign) -> None:
    durations, currents = _mixed_profile(seed=3, total_s=7200.0)
    model = PackModel(linear_design, isothermal=True, hysteresis=False, initial_soc=0.95)
    run = model.run_profile(currents, durations)
    ref = _superposition(linear_design, 0.95, np.cumsum(durations), durations, currents)
    assert np.max(np.abs(run.v_V[:, 0] - ref)) < 1e-6


@pytest.mark.parametrize("dt_s", [0.001, 1.0, 7.0, 60.0])
def test_constant_current_analytic(linear_design: CellDesign, dt_s: float) -> None:
    c = linear_design.circuit
    i = 2.0
    model = PackModel(linear_design, isothermal=True, hysteresis=False, initial_soc=0.9)
    n = 10 if dt_s < 0.01 else int(600 / dt_s)
    res = model.run_profile(np.full(n, i), dt_s)
    t = np.arange(1, n + 1) * dt_s
    soc = 0.9 - i * t / (3600 * linear_design.capacity_Ah)
    v = (
        _mean_ocv(linear_design, soc)
        - i * c.r0_ohm
        - i * c.r1_ohm * (1 - np.exp(-t / c.tau1_s))
        - i * c.r2_ohm * (1 - np.exp(-t / c.tau2_s))
    )
    assert np.max(np.abs(res.soc[:, 0] - soc)) < 1e-12
    assert np.max(np.abs(res.v_V[:, 0] - v)) < 1e-3 * MV


def test_rest_relaxation_and_pulse_analytic(linear_design: CellDesign) -> None:
    c = linear_design.circuit
    i, pulse_s = 4.0, 30.0
    model = PackModel(linear_design, isothermal=True, hysteresis=False, initial_soc=0.6)
    v_at_switch = model.terminal_voltage_V(i)[0]
    assert v_at_switch == pytest.approx(float(_mean_ocv(linear_design, 0.6)) - i * c.r0_ohm)
    for _ in range(30):
        model.step(i, 1.0)
    v1 = -i * c.r1_ohm * (1 - math.exp(-pulse_s / c.tau1_s))
    v2 = -i * c.r2_ohm * (1 - math.exp(-pulse_s / c.tau2_s))
    soc_end = 0.6 - i * pulse_s / (3600 * linear_design.capacity_Ah)
    ocv_end = float(_mean_ocv(linear_design, soc_end))
    assert model.v_V[0] == pytest.approx(ocv_end - i * c.r0_ohm + v1 + v2, abs=1e-3 * MV)
    # Rest: the R0 drop vanishes at once, then both RC voltages decay exponentially.
    for t in range(1, 601):
        model.step(0.0, 1.0)
        if t in (1, 10, 100, 600):
            expect = ocv_end + v1 * math.exp(-t / c.tau1_s) + v2 * math.exp(-t / c.tau2_s)
            assert model.v_V[0] == pytest.approx(expect, abs=1e-3 * MV)


def test_hysteresis_switches_branch_within_7_5_percent_soc(default_design: CellDesign) -> None:
    q = default_design.capacity_Ah
    model = PackModel(default_design, isothermal=True, initial_soc=0.5, initial_h=1.0)
    # Charge 7.5 % of capacity at 0.5C: h goes from +1 to near -1.
    n = round(0.075 * q * 3600 / (0.5 * q))
    model.run_profile(np.full(n, -0.5 * q), 1.0)
    assert model.h[0] < -0.89
    assert model.h[0] == pytest.approx(-1 + 2 * math.exp(-40 * 0.075 * 0.998), abs=1e-3)
    model.run_profile(np.full(n, 0.5 * q), 1.0)
    assert model.h[0] > 0.89
    # Rest does not move h: the gap does not vanish with rest.
    h_before = model.h[0]
    model.run_profile(np.zeros(3600), 1.0)
    assert model.h[0] == h_before
    # After the discharge and a long rest the OCV sits on the discharge branch.
    o = default_design.ocv
    assert abs(model.v_V[0] - np.interp(model.soc[0], o.soc, o.discharge_V)) < 0.02


def test_hysteresis_off_uses_branch_mean(default_design: CellDesign) -> None:
    model = PackModel(default_design, isothermal=True, hysteresis=False, initial_soc=0.5)
    assert model.h[0] == 0.0
    model.step(-2.0, 60.0)
    assert model.h[0] == 0.0
    fresh = PackModel(default_design, hysteresis=False, initial_soc=0.5)
    assert fresh.v_V[0] == pytest.approx(float(_mean_ocv(default_design, 0.5)))


def test_thermal_rise_matches_lumped_solution_for_constant_heat(
    default_design: CellDesign,
) -> None:
    c = replace(
        default_design.circuit,
        r1_ohm=1e-9,
        r2_ohm=1e-9,
        ea_r0_J_mol=0.0,
        ea_r1_J_mol=0.0,
        ea_r2_J_mol=0.0,
        soc_curvature=0.0,
        dUdT_V_K=0.0,
    )
    design = replace(default_design, circuit=c)
    i = 3.0
    model = PackModel(design, hysteresis=False, ambient_degC=20.0, initial_soc=1.0)
    run = model.run_profile(np.full(1800, i), 1.0)
    t = np.arange(1, 1801)
    heat = i * i * c.r0_ohm
    expect = 20.0 + heat / c.h_W_K * (1 - np.exp(-t * c.h_W_K / c.thermal_mass_J_K))
    assert np.max(np.abs(run.temp_degC[:, 0] - expect)) < 1e-6
    assert run.temp_degC[-1, 0] > 24.0


def test_isothermal_stays_at_ambient_and_entropy_sign(default_design: CellDesign) -> None:
    iso = PackModel(default_design, isothermal=True, ambient_degC=30.0, initial_soc=0.5)
    iso.run_profile(np.full(600, 2.0), 1.0)
    assert iso.temp_degC[0] == 30.0
    # dU/dT < 0: discharge releases reversible heat, charge absorbs it.
    dis = PackModel(default_design, initial_soc=0.5)
    chg = PackModel(default_design, initial_soc=0.5)
    dis.run_profile(np.full(300, 1.0), 1.0)
    chg.run_profile(np.full(300, -1.0), 1.0)
    assert dis.temp_degC[0] > chg.temp_degC[0]


def _closed_cycle_energy_J(model: PackModel, design: CellDesign, engine: str) -> tuple:
    """Discharge 1C for 30 min, charge 1C back, rest 20 h: (electrical energy in, heat to
    ambient), both in J and summed over the cells, by the trapezoid rule on 1 s rows."""
    q = design.capacity_Ah
    currents = np.concatenate((np.full(1800, q), np.full(1800, -q), np.zeros(20 * 3600)))
    v0, t0 = model.v_V.copy(), model.temp_degC.copy()
    if engine == "profile":
        run = model.run_profile(currents, 1.0)
        v, temp = run.v_V, run.temp_degC
    else:
        rows = [model.step(float(i), 1.0) for i in currents]
        v = np.array([r.v_V for r in rows])
        temp = np.array([r.temp_degC for r in rows])
    v = np.vstack((v0, v))
    temp = np.vstack((t0, temp))
    e_in = float(np.sum(-currents[:, None] * 0.5 * (v[:-1] + v[1:])))
    q_out = float(np.sum(design.circuit.h_W_K * (0.5 * (temp[:-1] + temp[1:]) - 25.0)))
    return e_in, q_out


@pytest.mark.parametrize(
    ("n_cells", "engine"), [(1, "profile"), (1, "step"), (3, "step"), (80, "step")]
)
def test_a_closed_cycle_turns_all_its_loss_into_heat(
    default_design: CellDesign, n_cells: int, engine: str
) -> None:
    """First law over a cycle that ends where it began (SOC 0.8 on the charge branch, RC
    relaxed, at ambient): the energy the cell took in left it as heat, hysteresis included.
    Without the hysteresis's loss about half the energy in goes nowhere."""
    c = replace(default_design.circuit, coulombic_efficiency=1.0, dUdT_V_K=0.0)
    design = with_cells(replace(default_design, circuit=c), n_cells)
    model = PackModel(design, initial_soc=0.8, initial_h=-1.0, ambient_degC=25.0)
    e_in, q_out = _closed_cycle_energy_J(model, design, engine)
    assert np.allclose(model.soc, 0.8, atol=1e-9) and np.allclose(model.h, -1.0, atol=1e-6)
    assert np.allclose(model.temp_degC, 25.0, atol=1e-3)
    # Per cell: the loop's area, 0.5 Q x the mean gap (0.19-0.36 V), plus the ohmic loss.
    assert 1000.0 * n_cells < e_in < 2500.0 * n_cells
    assert q_out == pytest.approx(e_in, rel=0.005)


def test_cold_raises_resistance_by_arrhenius(default_design: CellDesign) -> None:
    warm = PackModel(default_design, isothermal=True, ambient_degC=25.0, initial_soc=0.5)
    cold = PackModel(default_design, isothermal=True, ambient_degC=-10.0, initial_soc=0.5)
    drop_warm = warm.v_V[0] - warm.terminal_voltage_V(1.0)[0]
    drop_cold = cold.v_V[0] - cold.terminal_voltage_V(1.0)[0]
    expect = math.exp(17000 / R_GAS_J_MOL_K * (1 / 263.15 - 1 / T_REF_K))
    assert drop_cold / drop_warm == pytest.approx(expect, rel=1e-9)
    assert 2.4 < expect < 2.6


def test_coulombic_efficiency_on_charge_only(default_design: CellDesign) -> None:
    ce = default_design.circuit.coulombic_efficiency
    q = default_design.capacity_Ah
    m = PackModel(default_design, initial_soc=0.5)
    m.step(-1.0, 360.0)
    assert m.soc[0] == pytest.approx(0.5 + ce * 0.1 / q)
    m.step(1.0, 360.0)
    assert m.soc[0] == pytest.approx(0.5 + (ce - 1) * 0.1 / q)


def test_anode_utilization_and_potential(default_design: CellDesign) -> None:
    full = PackModel(default_design, initial_soc=1.0)
    empty = PackModel(default_design, initial_soc=0.0)
    assert full.anode_util_mAh_g[0] == pytest.approx(default_design.c_n_mAh_g, abs=0.5)
    assert empty.anode_util_mAh_g[0] == 0.0
    # Full and on the charge branch: Si at Li fraction 0.75 on lithiation, ~0.10 V.
    assert full.anode_potential_V[0] == pytest.approx(0.083 + (0.162 - 0.083) * 0.25, abs=1e-6)
    # Charging pulls the anode lower; an overcharge drives it toward the 50 mV rule.
    res = full.step(-2.0, 1.0)
    assert res.anode_potential_V[0] < full.anode_potential_V[0] + 1e-12
    over = PackModel(default_design, isothermal=True, initial_soc=1.0)
    over.run_profile(np.full(900, -2.0), 1.0)
    assert over.anode_util_mAh_g[0] > default_design.limits.window_top_mAh_g
    assert over.anode_potential_V[0] < 0.080


_RUN_COLUMNS = ("v_V", "ocv_V", "r0_ohm", "soc", "h", "temp_degC")


def _fast_and_stepped(
    design: CellDesign, currents: np.ndarray, durations: np.ndarray, kw: dict[str, Any]
) -> tuple[PackModel, ProfileRun, PackModel, dict[str, np.ndarray]]:
    fast = PackModel(design, initial_soc=0.7, **kw)
    run = fast.run_profile(currents, durations)
    slow = PackModel(design, initial_soc=0.7, **kw)
    rows: dict[str, list[float]] = {k: [] for k in (*_RUN_COLUMNS, "t_s", "pot", "util")}
    for i, d in zip(currents, durations, strict=True):
        res = slow.step(float(i), float(d))
        for k in _RUN_COLUMNS:
            rows[k].append(float(getattr(slow, k)[0]))
        rows["t_s"].append(res.t_s)
        rows["pot"].append(float(res.anode_potential_V[0]))
        rows["util"].append(float(res.anode_util_mAh_g[0]))
    return fast, run, slow, {k: np.asarray(v) for k, v in rows.items()}


# Steps of 0.5-60 s (both sides of the RC centre correction at 2 s), rests, charge (CE < 1).
_FAST_PATH_CASES = [
    pytest.param({"isothermal": True}, id="isothermal"),
    pytest.param({"isothermal": True, "hysteresis": False}, id="isothermal-no-hysteresis"),
    pytest.param({"isothermal": True, "ambient_degC": 0.0}, id="isothermal-cold"),
    pytest.param({}, id="thermal"),
    pytest.param({"ambient_degC": 45.0, "hysteresis": False}, id="thermal-hot-no-hysteresis"),
]


@pytest.mark.parametrize("kw", _FAST_PATH_CASES)
def test_run_profile_fast_path_equals_step(default_design: CellDesign, kw: dict[str, Any]) -> None:
    """The single-cell engine is PackModel.step, operation for operation.

    Isothermal: bit for bit. With the thermal feedback its Arrhenius and RC factors
    come from math.exp in a scalar loop, numpy's SIMD exp may differ in the last bit:
    SOC, hysteresis, temperature and OCV stay bit-exact, R0 and the terminal voltage
    within one or two units in the last place (the anode potential takes half of the
    voltage's).
    """
    durations, currents = _mixed_profile(seed=11, total_s=4000.0)
    durations = np.concatenate((durations, [0.5, 0.5, 1.5, 60.0]))
    currents = np.concatenate((currents, [3.0, 0.0, -2.0, 0.0]))
    fast, run, slow, ref = _fast_and_stepped(default_design, currents, durations, kw)
    assert np.array_equal(run.t_s, ref["t_s"])
    assert np.array_equal(run.anode_util_mAh_g[:, 0], ref["util"])
    for name in ("soc", "h", "temp_degC", "ocv_V"):
        assert np.array_equal(getattr(run, name)[:, 0], ref[name]), name
    got = {"v_V": run.v_V[:, 0], "r0_ohm": run.r0_ohm[:, 0], "pot": run.anode_potential_V[:, 0]}
    if kw.get("isothermal"):
        for name, values in got.items():
            assert np.array_equal(values, ref[name]), name
    else:
        # R0 carries the last-bit difference of its Arrhenius factor (up to 2 ulp).
        assert np.all(np.abs(got["r0_ohm"] - ref["r0_ohm"]) <= 2 * np.spacing(ref["r0_ohm"]))
        assert np.all(np.abs(got["v_V"] - ref["v_V"]) <= np.spacing(np.abs(ref["v_V"])))
        assert np.all(np.abs(got["pot"] - ref["pot"]) <= np.spacing(np.abs(ref["v_V"])))
    # The model ends in the state the steps reach, ready to go on.
    end_fast, end_slow = fast.snapshot(), slow.snapshot()
    for name in ("soc", "h", "temp_degC", "ocv_V", "t_s", "current_A", "cell_current_A"):
        assert np.array_equal(getattr(end_fast, name), getattr(end_slow, name)), name
    assert fast.step(1.0, 5.0).soc[0] == slow.step(1.0, 5.0).soc[0]


def test_run_profile_of_no_steps_changes_nothing(default_design: CellDesign) -> None:
    model = PackModel(default_design, initial_soc=0.4)
    before = model.snapshot()
    run = model.run_profile(np.empty(0), 1.0)
    assert run.v_V.shape == (0, 1)
    after = model.snapshot()
    assert all(np.array_equal(getattr(before, k), getattr(after, k)) for k in vars(before))


def test_pack_spread_seeded_and_visible() -> None:
    design = load_cell("sisn-lco-2ah-4s")
    a, b = PackModel(design), PackModel(design)
    assert np.array_equal(a.capacity_Ah, b.capacity_Ah)
    assert np.array_equal(a.soc, b.soc)
    assert np.ptp(a.capacity_Ah) > 0.005 and np.ptp(a.soc) > 0.001
    assert a.soc.max() == pytest.approx(1.0)
    other = PackModel(design, seed=design.pack.seed + 1)
    assert not np.array_equal(other.capacity_Ah, a.capacity_Ah)
    big = PackModel(with_cells(design, 4000))
    rel = big.capacity_Ah / design.capacity_Ah - 1
    assert np.std(rel) == pytest.approx(design.pack.capacity_spread, rel=0.1)
    res = a.run_profile(np.full(1800, 2.0), 1.0)
    assert np.ptp(res.v_V[-1]) > 0.005
    assert res.pack_v_V[-1] == pytest.approx(res.v_V[-1].sum())
    # Packs go through the vectorized path; it equals step().
    c = PackModel(design)
    last = c.result()
    for _ in range(1800):
        last = c.step(2.0, 1.0)
    assert np.allclose(last.v_V, res.v_V[-1], atol=1e-12)


def test_bleed_drains_only_its_cell() -> None:
    design = load_cell("sisn-lco-2ah-4s")
    model = PackModel(design, initial_soc=np.full(4, 0.8))
    bleed = np.array([0.0, 0.1, 0.0, 0.0])
    res = model.result()
    for _ in range(3600):
        res = model.step(0.0, 1.0, bleed_A=bleed)
    assert res.cell_current_A[1] == 0.1
    assert model.soc[1] == pytest.approx(0.8 - 0.1 / model.capacity_Ah[1], rel=1e-9)
    assert np.all(model.soc[[0, 2, 3]] == 0.8)
    assert model.h[1] > 0.5 and model.h[0] == model.h[2]


@pytest.mark.parametrize("hysteresis", [True, False])
def test_cv_current_holds_highest_cell_exactly(hysteresis: bool) -> None:
    design = load_cell("sisn-lco-2ah-4s")
    model = PackModel(design, initial_soc=0.7, hysteresis=hysteresis)
    while model.v_V.max() < 4.2:
        model.step(-2.0, 1.0)
    currents = []
    for dt in (1.0, 0.5, 10.0, 1.0, 60.0):
        i = model.cv_current_A(4.2, dt)
        model.step(i, dt)
        currents.append(i)
        assert model.v_V.max() == pytest.approx(4.2, abs=1e-6)
    assert all(i < 0 for i in currents)
    assert abs(currents[-1]) < abs(currents[0])


def test_cv_current_pack_target() -> None:
    design = load_cell("sisn-lco-2ah-4s")
    model = PackModel(design, initial_soc=0.9)
    target = model.pack_v_V + 0.2
    i = model.cv_current_A(target, 5.0, pack=True)
    model.step(i, 5.0)
    assert model.pack_v_V == pytest.approx(target, abs=1e-6)


def test_set_soc_and_ambient(default_design: CellDesign) -> None:
    model = PackModel(default_design, isothermal=True)
    model.set_soc(0.3)
    assert model.soc[0] == 0.3
    model.set_ambient(-5.0)
    assert model.temp_degC[0] == -5.0
    snap = model.snapshot()
    model.step(1.0, 100.0)
    model.restore(snap)
    assert model.soc[0] == 0.3 and model.t_s == 0.0


def test_faded_cell_loses_capacity_not_anode_mass() -> None:
    """Lithium-inventory loss: less charge between the same OCV limits, less lithium in
    the anode at full charge (retention x C_N), more resistance."""
    fresh = load_cell("sisn-lco-2ah")
    aged = load_cell("sisn-lco-2ah-aged")
    assert aged.aging.capacity_retention == 0.85 and fresh.aging.capacity_retention == 1.0
    m_fresh = PackModel(fresh, initial_soc=1.0, isothermal=True)
    m_aged = PackModel(aged, initial_soc=1.0, isothermal=True)
    assert m_aged.capacity_Ah[0] == pytest.approx(0.85 * m_fresh.capacity_Ah[0])
    assert m_aged.anode_mass_g[0] == pytest.approx(m_fresh.anode_mass_g[0])
    assert m_aged.anode_util_mAh_g[0] == pytest.approx(0.85 * fresh.c_n_mAh_g, rel=1e-9)
    # the same 1 A draw from full moves the faded cell's SOC 1/0.85 times as far
    r_fresh = m_fresh.step(1.0, 1.0)
    r_aged = m_aged.step(1.0, 1.0)
    for _ in range(599):
        r_fresh = m_fresh.step(1.0, 1.0)
        r_aged = m_aged.step(1.0, 1.0)
    assert (1 - r_aged.soc[0]) == pytest.approx((1 - r_fresh.soc[0]) / 0.85, rel=1e-6)
    # and its larger resistance drops the terminal voltage further under the same current
    assert r_aged.v_V[0] < r_fresh.v_V[0]

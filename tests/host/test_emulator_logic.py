"""The loop's per-step logic without I/O: gating, bleed, drive steps and expectations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cellmodel import load_cell
from cellmodel.experiment import parse_step
from cellmodel.pack import PackModel
from host.emulator.expectations import ExpectationChecker
from host.emulator.loop import timing_problem
from host.emulator.plant import Plant, bleed_currents, gate_current, start_cell_soc
from host.emulator.run import resolve_designs
from host.scenarios import load_scenario
from host.scenarios.steps import CHARGER_GIVE_UP_S, DriveRun, Observation, parse_expectation
from host.sensors import Sensors, SensorSpec

REPO = Path(__file__).resolve().parents[2]


def test_gating_follows_switches() -> None:
    assert gate_current(2.0, chg_on=True, dsg_on=False) == 0.0
    assert gate_current(-2.0, chg_on=True, dsg_on=False) == -2.0
    assert gate_current(-2.0, chg_on=False, dsg_on=True) == 0.0
    assert gate_current(2.0, chg_on=False, dsg_on=True) == 2.0


def test_bleed_uses_cell_voltage_over_resistance() -> None:
    v = np.array([4.0, 3.3, 3.96])
    bleed = bleed_currents(v, 0b101, 33.0)
    assert bleed is not None
    np.testing.assert_allclose(bleed, [4.0 / 33, 0.0, 3.96 / 33])
    assert bleed_currents(v, 0, 33.0) is None


def test_plant_gates_with_latest_decision_and_bleeds() -> None:
    design = load_cell("sisn-lco-2ah-4s")
    model = PackModel(design, initial_soc=0.5)
    plant = Plant(model, Sensors(SensorSpec.ideal(), model.n_cells, 1, seed=1), 33.0)
    step = plant.step(1.0, 1.0)  # switches open until the firmware answers
    assert step.applied_A == 0.0 and step.reading.current_mA == 0
    plant.set_gates(chg_on=True, dsg_on=True, balance_bits=0b0001)
    soc0 = step.truth.soc.copy()
    step = plant.step(1.0, 10.0)
    assert step.applied_A == 1.0
    assert step.reading.current_mA == 1000  # the shunt does not see the bleed
    drop = soc0 - step.truth.soc
    assert drop[0] > drop[1]  # cell 1 also bleeds


def test_charge_step_ends_at_voltage_and_hold_at_current() -> None:
    design = load_cell()
    model = PackModel(design, initial_soc=0.9, isothermal=True)
    run = DriveRun(parse_step("Charge at 1C until 4.2 V"), design.capacity_Ah, 5.0)
    while not run.done:
        dt = run.next_dt_s()
        d = run.limit_demand(run.ctrl.demand_current_A(model, dt))
        r = model.step(d, dt)
        run.after_sample(dt, d, d, r.v_V)
    assert "voltage" in run.end_reason
    assert model.v_V.max() < 4.2 + 0.02
    hold = DriveRun(parse_step("Hold at 4.2 V until C/20"), design.capacity_Ah, 5.0)
    while not hold.done:
        dt = hold.next_dt_s()
        d = hold.limit_demand(hold.ctrl.demand_current_A(model, dt))
        r = model.step(d, dt)
        hold.after_sample(dt, d, d, r.v_V)
        assert r.v_V.max() < 4.2 + 1e-4
    assert "current" in hold.end_reason


def test_blocked_step_gives_up() -> None:
    design = load_cell()
    model = PackModel(design, initial_soc=0.5)
    run = DriveRun(parse_step("Charge at 0.5C for 1 hour"), design.capacity_Ah, 1.0)
    t = 0.0
    while not run.done:
        d = run.limit_demand(run.ctrl.demand_current_A(model, 1.0))
        r = model.step(0.0, 1.0)  # CHG off: nothing flows
        run.after_sample(1.0, d, 0.0, r.v_V)
        t += 1.0
    assert run.end_reason == "blocked by the BMS"
    assert t == CHARGER_GIVE_UP_S


def test_a_hold_under_a_limit_that_dips_to_zero_is_no_taper() -> None:
    # The charger's CV loop asks for the current; the BMS's CCL may hold it back. A CCL at 0
    # for one sample in the middle of CV is no taper: the hold goes on and ends at its own
    # C/20. A CCL the BMS keeps at 0 ends the hold as blocked, after the charger's give-up.
    design = load_cell()
    for dips in ({3}, set(range(3, 1000))):
        model = PackModel(design, initial_soc=0.97, isothermal=True)
        hold = DriveRun(parse_step("Hold at 4.2 V until C/20"), design.capacity_Ah, 1.0)
        n, d = 0, 0.0
        while not hold.done:
            dt = hold.next_dt_s()
            d = hold.limit_demand(hold.ctrl.demand_current_A(model, dt))
            applied = 0.0 if n in dips else d
            r = model.step(applied, dt)
            hold.after_sample(dt, d, applied, r.v_V)
            n += 1
        if len(dips) == 1:
            assert "current" in hold.end_reason and n > 10, (hold.end_reason, n)
            assert abs(d) <= 0.05 * design.capacity_Ah
        else:
            assert hold.end_reason == "blocked by the BMS", hold.end_reason
            assert n == 3 + CHARGER_GIVE_UP_S


def obs(t: float, **kw: object) -> Observation:
    base: dict[str, object] = dict(
        t_s=t,
        chg_on=True,
        dsg_on=True,
        faults=0,
        soc_error_pct=0.5,
        soc_rmse_pct=0.4,
        capacity_error_pct=None,
    )
    base.update(kw)
    return Observation(**base)  # type: ignore[arg-type]


def exp(text: str):  # noqa: ANN201
    step = parse_expectation(text)
    assert step is not None
    return step


def test_expectations_immediate_and_within() -> None:
    c = ExpectationChecker()
    assert c.add(0, exp("Expect CHG on"), obs(10)).passed is True
    assert c.add(1, exp("Expect DSG off"), obs(10)).passed is False
    pending = c.add(2, exp("Expect DSG off within 2 s"), obs(10))
    late = c.add(3, exp("Expect fault UT_CHG within 2 s"), obs(10))
    assert pending.passed is None
    c.observe(obs(11, dsg_on=False))
    assert pending.passed is True
    assert late.passed is None
    c.observe(obs(13))
    assert late.passed is False
    c.add(4, exp("Expect fault UT_CHG within 60 s"), obs(13))
    c.finish(20)
    assert c.results[-1].passed is False and "ended" in c.results[-1].detail
    assert not c.all_passed


def test_expectations_on_faults_and_errors() -> None:
    c = ExpectationChecker()
    assert c.add(0, exp("Expect fault UT_CHG"), obs(1, faults=1 << 6)).passed
    assert c.add(1, exp("Expect no fault UT_CHG"), obs(1, faults=1 << 6)).passed is False
    assert c.add(2, exp("Expect no faults"), obs(1)).passed
    assert c.add(3, exp("Expect SOC error below 2%"), obs(1, soc_error_pct=1.9)).passed
    assert c.add(4, exp("Expect SOC RMS error below 0.3%"), obs(1)).passed is False
    assert c.add(5, exp("Expect capacity error below 3%"), obs(1)).passed is False
    assert c.add(6, exp("Expect capacity error below 3%"), obs(1, capacity_error_pct=-2.5)).passed


def test_the_charger_and_load_keep_to_the_bms_limits() -> None:
    """A CAN charger or inverter honours CCL/DCL: "Charge at 1C" is "at most 1C"."""
    design = load_cell()
    sensors = Sensors(SensorSpec.ideal(), 1, 1, seed=1)
    plant = Plant(PackModel(design, initial_soc=0.5), sensors, 33.0)
    plant.set_gates(True, True, 0, ccl_A=0.7, dcl_A=1.5)
    step = plant.step(-2.0, 1.0)
    assert step.applied_A == -0.7 and step.limited and step.reading.current_mA == -700
    step = plant.step(3.0, 1.0)
    assert step.applied_A == 1.5 and step.limited
    step = plant.step(1.0, 1.0)
    assert step.applied_A == 1.0 and not step.limited  # inside the limit: as asked
    plant.set_gates(False, True, 0, ccl_A=0.7, dcl_A=1.5)
    step = plant.step(-2.0, 1.0)
    assert step.applied_A == 0.0 and not step.limited  # the switch, not the limit, stops it
    deaf = Plant(PackModel(design, initial_soc=0.5), sensors, 33.0, honour_limits=False)
    deaf.set_gates(True, True, 0, ccl_A=0.7, dcl_A=1.5)
    assert deaf.step(-2.0, 1.0).applied_A == -2.0  # a charger that ignores the BMS


def test_a_true_start_holds_the_plants_own_cell_socs() -> None:
    """The state file of a true start holds each cell's SOC as the plant starts it: a pack's
    cells spread about the scenario's SOC (the cell file's soc_spread), each its own."""
    scenario = load_scenario(REPO / "examples" / "robustness" / "pack-4s.toml")
    truth = resolve_designs(scenario).truth
    cell_soc = start_cell_soc(scenario, truth)
    plant = Plant.for_scenario(scenario, truth, 1)
    np.testing.assert_array_equal(cell_soc, plant.measure().truth.soc)
    assert len(set(cell_soc)) == 4 and abs(np.mean(cell_soc) - scenario.initial.soc) < 0.03


def test_a_scenarios_cell_path_is_read_from_its_folder_with_or_without_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the docs and a campaign have it: `cell = "mine"` is the file next to the
    scenario, wherever sisnbms was started from (not a file of that name in the working
    folder, nor none)."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "mine").write_text('extends = "sisn-lco-2ah"\n[cell]\nname = "mine"\n')
    (folder / "s.toml").write_text('cell = "mine"\nsteps = ["Rest for 1 minute"]\n')
    monkeypatch.chdir(tmp_path)
    assert resolve_designs(load_scenario(folder / "s.toml")).truth.name == "mine"


def test_a_board_timed_for_faster_samples_than_the_scenarios_is_named() -> None:
    """A flashed board keeps the timing of its board file: the firmware counts at most
    max_dt_ms per sample and, in real time, opens both switches link_timeout_ms after the
    last one. The values are the firmware's for a board sampling every second."""
    one_second = {"max_dt_ms": 5000, "link_timeout_ms": 3000}
    assert timing_problem(2000, one_second, realtime=True) is None
    assert timing_problem(5000, one_second, realtime=False) is None  # lockstep: no watchdog
    gap = timing_problem(8000, one_second, realtime=False)
    assert gap is not None and "max_dt_ms" in gap and "sample_period_ms = 8000" in gap
    watchdog = timing_problem(4000, one_second, realtime=True)
    assert watchdog is not None and "link_timeout_ms" in watchdog
    # a configuration that does not say has the firmware's defaults
    assert timing_problem(8000, {}, realtime=False) is not None

"""The model's guard rails as an API the emulator can use (cellmodel.guards)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cellmodel import InputError, PackModel, load_cell
from cellmodel.experiment import parse_experiment
from cellmodel.guards import SOC_MARGIN
from cellmodel.simulation import run_experiment


def test_current_is_checked_before_it_flows() -> None:
    design = load_cell("sisn-lco-2ah-4s")
    model = PackModel(design, initial_soc=0.5)
    bound = design.limits.current_abuse_max_C * design.capacity_Ah
    assert model.current_event(0.99 * bound) is None
    ev = model.current_event(-1.01 * bound)
    assert ev is not None and ev.kind == "current" and ev.cell is None
    assert ev.value == pytest.approx(1.01 * bound) and ev.limit == pytest.approx(bound)
    bleed = np.array([0.0, 0.0, 0.02 * bound, 0.0])  # one cell's bleed tips it over
    ev = model.current_event(0.99 * bound, bleed)
    assert ev is not None and ev.cell == 2 and ev.as_dict()["cell"] == 3
    assert model.current_event(float("nan")) is not None


def test_state_events_name_the_cell_and_the_limit() -> None:
    design = load_cell("sisn-lco-2ah-4s")
    model = PackModel(design, initial_soc=0.5)
    assert model.state_event() is None
    model.set_soc(np.array([0.5, 1.0 + SOC_MARGIN + 1e-6, 0.5, 0.5]))
    ev = model.state_event()
    assert ev is not None and ev.kind == "soc_high" and ev.cell == 1 and ev.unit == "%"
    assert "cell 2 SOC above the usable range" in ev.message
    model.set_soc(0.5)
    model.temp_degC = np.array([25.0, 25.0, 25.0, design.limits.temp_abuse_max_degC + 0.1])
    ev = model.state_event()
    assert ev is not None and ev.kind == "temperature" and ev.cell == 3


def test_the_model_runs_below_empty_to_the_anodes_empty_point(tmp_path: Path) -> None:
    """A cell held at its 2.75 V cut-off under a tapering current (a load kept to a BMS's
    DCL) reaches SOC -5.2 % on the default cell: still a state the model describes. Its
    anode holds no lithium at -0.05 / 0.70 = -7.14 %; beyond that the run stops. A cell
    whose anode is empty at SOC 0 keeps the 5 % margin of the OCV tables' extension."""
    design = load_cell("sisn-lco-2ah")
    model = PackModel(design, initial_soc=0.5)
    model.set_soc(-0.055)
    assert model.state_event() is None
    model.set_soc(-0.0715)
    ev = model.state_event()
    assert ev is not None and ev.kind == "soc_low" and ev.limit == pytest.approx(-100 / 14)
    cell = tmp_path / "c.toml"
    cell.write_text(
        'extends = "sisn-lco-2ah"\n[anode_potential]\n'
        "li_fraction = [0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95]\n"
        "li_fraction_empty = 0.0\nli_fraction_full = 0.75\n"
    )
    edge = PackModel(load_cell(cell), initial_soc=0.5)
    edge.set_soc(-0.049)
    assert edge.state_event() is None
    edge.set_soc(-0.051)
    ev = edge.state_event()
    assert ev is not None and ev.kind == "soc_low" and ev.limit == pytest.approx(-SOC_MARGIN * 100)


def test_the_voltage_collapses_before_the_anode_is_empty() -> None:
    """Without hysteresis the default cell's OCV is the branches' mean, which the tables'
    linear extension left at 2.81 V at the anode's empty point: a discharge to 2.75 V
    never reached its cut-off and ran the anode empty (the guard stopped it at -7.14 %).
    With the anode's last rise the cut-off comes first, the hold at it tapers off and the
    cell rests below SOC 0 but short of the empty point."""
    design = load_cell("sisn-lco-2ah")
    model = PackModel(design, initial_soc=0.0, hysteresis=False, isothermal=True)
    steps = ["Discharge at C/10 until 2.75 V", "Hold at 2.75 V until C/200", "Rest for 1 hour"]
    res = run_experiment(model, parse_experiment(steps))
    assert res.event is None, res.event
    assert model.guards.soc_min < float(np.min(res.soc[:, 0])) < -0.05
    assert "voltage reached 2.75 V" in res.step_reasons[0]


def test_both_branches_collapse_at_the_empty_point() -> None:
    """Above the knee (lithium fraction 0.01, SOC -4/70) the OCV is the end segment
    carried on; at the empty point both branches lie below the abuse limit, so even a
    load that ignores the BMS meets the voltage guard first."""
    design = load_cell("sisn-lco-2ah")
    table = PackModel(design).params.ocv
    soc, v_c, v_d = design.ocv.soc, design.ocv.charge_V, design.ocv.discharge_V
    knee = -4 / 70
    for h, branch in ((-1.0, v_c), (1.0, v_d)):
        straight = branch[0] + (branch[1] - branch[0]) / soc[1] * knee
        assert float(table.value(knee, h)) == pytest.approx(straight, abs=1e-12)
        assert float(table.value(-0.05 / 0.70, h)) < design.limits.v_abuse_min_V
        above = np.linspace(knee, 0.0, 9)
        assert np.all(np.diff(table.value(above, h)) > 0)  # no step at the knee or SOC 0
    # the anode's own potential climbs with it: at its empty point past its whole
    # delithiation table by more than half the rise
    anode = PackModel(design).params.anode
    ap = design.anode_potential
    assert float(anode.value(0.0, 1.0)) > ap.delithiation_V.max() + ap.empty_rise_V / 2


def test_guard_limits_come_from_the_cell_file(tmp_path: Path) -> None:
    cell = tmp_path / "c.toml"
    cell.write_text(
        'extends = "sisn-lco-2ah"\n[limits]\n'
        "temp_abuse_max_degC = 70.0\ncurrent_abuse_max_C = 5.0\n"
    )
    model = PackModel(load_cell(cell))
    assert model.guards.temp_max_degC == 70.0
    assert model.guards.current_max_A == pytest.approx(5.0 * model.design.capacity_Ah)
    cell.write_text('extends = "sisn-lco-2ah"\n[limits]\ntemp_abuse_max_degC = 50.0\n')
    with pytest.raises(InputError) as info:
        load_cell(cell)
    assert info.value.field == "limits.temp_abuse_max_degC"

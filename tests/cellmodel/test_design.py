"""Derived design quantities against the worked example of sisn-cell.md section 1."""

from __future__ import annotations

import pytest

from cellmodel import CellDesign, PackModel
from cellmodel.design import dc_resistance_ohm, derived


def test_default_cell_matches_worked_example(default_design: CellDesign) -> None:
    d = derived(default_design)
    assert d["anode_areal_mAh_cm2"] == pytest.approx(6.0, abs=0.01)
    assert d["cathode_areal_mAh_cm2"] == pytest.approx(6.0, abs=0.01)
    assert d["capacity_Ah"] == pytest.approx(2.0, abs=0.005)
    assert d["energy_Wh"] == pytest.approx(7.0, abs=0.05)
    assert d["mean_discharge_V"] == pytest.approx(3.48, abs=0.005)
    assert d["anode_mass_g"] == pytest.approx(1.20, abs=0.005)
    assert d["anode_utilization_at_full_mAh_g"] == pytest.approx(1667, abs=1)
    assert d["volumetric_ratio"] == pytest.approx(4.1, abs=0.01)
    assert d["cn_dn_mAh_cm3"] == pytest.approx(2000, abs=1)
    assert d["np_ratio"] == pytest.approx(1.0, abs=0.01)


def test_design_fields_other_parts_rely_on(default_design: CellDesign) -> None:
    d = default_design
    assert d.name == "sisn-lco-2ah"
    assert d.n_series == 1
    assert d.capacity_Ah == pytest.approx(2.0, abs=0.005)
    assert d.anode_mass_g == pytest.approx(1.2, abs=0.005)
    assert d.c_n_mAh_g == 1667.0
    lim = d.limits
    assert (lim.v_max_V, lim.v_min_V, lim.v_abuse_max_V, lim.v_abuse_min_V) == (
        4.20,
        2.75,
        4.25,
        2.50,
    )
    assert lim.anode_potential_min_V == 0.050
    assert lim.window_top_mAh_g == 1667.0
    assert lim.cv_cutoff_C == 0.05
    assert d.circuit.r0_ohm == 0.025
    assert d.circuit.hysteresis_gamma == 40.0
    assert d.ocv.soc[0] == 0 and d.ocv.soc[-1] == 1
    assert d.ocv.charge_V[-1] == 4.2
    assert d.ocv.discharge_V[0] == 2.914


@pytest.mark.parametrize("soc", [0.05, 0.5, 0.95])
def test_dc_resistance_is_the_models_steady_state_resistance(
    default_design: CellDesign, soc: float
) -> None:
    """A small constant current held until the RC pairs settle: (OCV - V) / I."""
    design = default_design
    current_A = 0.002  # SOC moves by 0.03 % over the run: R is taken at the start SOC
    model = PackModel(design, initial_soc=soc, isothermal=True, hysteresis=False)
    res = model.step(current_A, 10.0)
    for _ in range(199):
        res = model.step(current_A, 10.0)
    r_model = (float(res.ocv_V[0]) - float(res.v_V[0])) / current_A
    assert r_model == pytest.approx(dc_resistance_ohm(design, soc), rel=0.01)

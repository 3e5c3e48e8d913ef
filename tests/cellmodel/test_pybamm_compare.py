"""The cell model against PyBaMM's Thevenin model with the same parameters (extra 'pybamm').

Requirement: with hysteresis off, isothermal, at a 1 s period, the terminal voltages
agree within 1 mV at every row of every step (the firmware reads cells to 1 mV). A step
that ends on a voltage ends within one period of PyBaMM's exact crossing (we check at
the end of each period); a hold that ends on its current within 1 % of its length
(the tail current decays slowly, so its crossing time is sensitive to the state the
hold starts from, and our current over a period is its mean, not an instant's).
"""

from __future__ import annotations

import json

import pytest

from cellmodel import load_cell
from cellmodel.experiment import parse_experiment
from host.cli.main import main

pytest.importorskip("pybamm")

from cellmodel.pybamm_compare import compare_with_pybamm  # noqa: E402

STEPS = [
    "Discharge at 1C until 3.0 V",
    "Rest for 10 minutes",
    "Charge at 0.5C for 30 minutes",
    "Hold at 4.0 V until C/20",
    "Discharge at 5 W for 10 minutes",
    "Discharge at 2 Ohm for 10 minutes",
]


@pytest.mark.parametrize(("cell", "ambient"), [("sisn-lco-2ah", 25.0), ("sisn-lco-2ah-aged", 10.0)])
def test_voltages_agree_within_1_mV(cell: str, ambient: float) -> None:
    comp = compare_with_pybamm(
        load_cell(cell), parse_experiment(STEPS), initial_soc=0.9, ambient_degC=ambient
    )
    assert [s.text for s in comp.steps] == STEPS
    for s in comp.steps:
        assert s.max_dv_mV <= 1.0, s
        if s.text.startswith("Hold"):
            assert abs(s.end_s - s.pybamm_end_s) <= 0.01 * s.pybamm_end_s, s
        else:
            assert -1e-6 <= s.end_s - s.pybamm_end_s <= 1.0, s


def test_simulate_reports_the_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--initial-soc", "0.8", "--json", "--compare-pybamm", "--experiment"]
    assert main([*argv, "Discharge at 1C for 5 minutes", "Rest for 5 minutes"]) == 0
    pb = json.loads(capsys.readouterr().out)["pybamm"]
    assert pb["max_dv_mV"] <= 1.0 and len(pb["steps"]) == 2
    assert main([*argv, "Rest for 1 h at 10oC"]) == 2


@pytest.mark.parametrize(
    ("initial_soc", "steps"),
    [
        (1.0, ["Discharge at 1C for 5 minutes"]),  # the default --initial-soc
        (0.0, ["Charge at 1C for 5 minutes"]),
        (0.05, ["Discharge at 0.5C until 2.75 V"]),  # on past SOC 0, as our cell does
    ],
)
def test_the_comparison_runs_from_full_or_empty_and_past_either_end(
    initial_soc: float, steps: list[str]
) -> None:
    """PyBaMM's ECM refuses to start at its SoC 0 or 1 and stops where it leaves 0..1 (a
    traceback at `sisnbms simulate --compare-pybamm`'s default SOC of 1.0); mapped onto our
    tables' span, it runs where ours does and agrees."""
    comp = compare_with_pybamm(load_cell(), parse_experiment(steps), initial_soc=initial_soc)
    (s,) = comp.steps
    assert s.max_dv_mV <= 1.0, s
    assert -1e-6 <= s.end_s - s.pybamm_end_s <= 1.0, s

"""Cross-check against PyBaMM's Thevenin model (optional: `pip install 'sisnbms[pybamm]'`).

PyBaMM's equivalent-circuit model with two RC pairs gets this cell's parameters:
the OCV as the branch mean (hysteresis off), R0, R1, R2 with the same SOC shapes
and the Arrhenius factors at the ambient temperature (both isothermal), C_j =
tau_j / R_j at the reference (so tau_j follows R_j as in cellmodel), the
capacity with its aging. PyBaMM's ECM has no coulombic efficiency, so ours is
set to 1 for the comparison. Both run the same steps; the result is the
difference of the terminal voltages at our rows, step by step in step-relative
time (a step that ends on a voltage ends at our period grid, PyBaMM's exactly,
so later steps would otherwise be compared shifted).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cellmodel.design import CellDesign
from cellmodel.errors import InputError
from cellmodel.experiment import Experiment, Step
from cellmodel.pack import PackModel
from cellmodel.simulation import run_experiment


@dataclass(frozen=True)
class StepComparison:
    text: str
    end_s: float  # step length here
    pybamm_end_s: float  # and in PyBaMM
    max_dv_mV: float  # over our rows within both steps
    rms_dv_mV: float


@dataclass(frozen=True)
class Comparison:
    pybamm_version: str
    steps: list[StepComparison]

    @property
    def max_dv_mV(self) -> float:
        return max(s.max_dv_mV for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": "PyBaMM Thevenin, 2 RC pairs, isothermal, hysteresis off, CE 1",
            "pybamm_version": self.pybamm_version,
            "max_dv_mV": self.max_dv_mV,
            "steps": [vars(s) for s in self.steps],
        }


def _import_pybamm() -> Any:
    try:
        import pybamm  # pyright: ignore[reportMissingImports]
    except ImportError:
        raise InputError(
            "command line", "--compare-pybamm", "needs PyBaMM: pip install 'sisnbms[pybamm]'"
        ) from None
    return pybamm


def _parameter_values(pb: Any, model: PackModel, initial_soc: float) -> Any:
    p = model.params
    c = model.design.circuit
    amb = model.ambient_degC
    a0, a1, a2 = p.arrhenius_at(amb)
    x, mid = p.ocv.x, p.ocv.mid
    r0, r1, r2 = float(p.r0_ohm[0]), float(p.r1_ohm[0]), float(p.r2_ohm[0])
    # PyBaMM's ECM ends a run where its SoC leaves 0..1 (and refuses to start at 0 or 1);
    # ours runs on across the OCV table's whole span, from the anode's empty point to past
    # full. So PyBaMM's SoC is ours mapped onto that span, its capacity the span's charge.
    lo, span = float(x[0]), float(x[-1] - x[0])

    def ours(sto: Any) -> Any:
        return lo + span * sto

    def clipped(sto: Any) -> Any:
        return pb.maximum(pb.minimum(ours(sto), 1.0), 0.0)

    def shape0(sto: Any) -> Any:
        y = 2 * clipped(sto) - 1
        return 1 + c.soc_curvature * y * y

    def shape12(sto: Any) -> Any:
        return shape0(sto) + c.low_soc_rise * pb.exp(-clipped(sto) / c.low_soc_width)

    pv = pb.equivalent_circuit.Thevenin(options={"number of rc elements": 2})
    values = pv.default_parameter_values
    shift = c.dUdT_V_K * (amb - 25.0)  # our OCV's entropic shift off 25 degC
    values.update(
        {
            "Initial SoC": (initial_soc - lo) / span,
            "Cell capacity [A.h]": float(p.capacity_Ah[0]) * span,
            "Nominal cell capacity [A.h]": model.design.capacity_Ah,
            "Ambient temperature [K]": amb + 273.15,
            "Initial temperature [K]": amb + 273.15,
            # Isothermal: masses so large that no heat moves the temperature.
            "Cell thermal mass [J/K]": 1e15,
            "Jig thermal mass [J/K]": 1e15,
            "Upper voltage cut-off [V]": 6.0,
            "Lower voltage cut-off [V]": 0.5,
            "Open-circuit voltage [V]": lambda sto: (
                pb.Interpolant(x, mid, ours(sto), "OCV") + shift
            ),
            "R0 [Ohm]": lambda T, i, sto: r0 * shape0(sto) * a0,
            "R1 [Ohm]": lambda T, i, sto: r1 * shape12(sto) * a1,
            "C1 [F]": lambda T, i, soc: c.tau1_s / r1,
            "R2 [Ohm]": lambda T, i, sto: r2 * shape12(sto) * a2,
            "C2 [F]": lambda T, i, soc: c.tau2_s / r2,
            "Element-1 initial overpotential [V]": 0.0,
            "Element-2 initial overpotential [V]": 0.0,
            "Entropic change [V/K]": lambda ocv, T: 0.0 * ocv,
        },
        check_already_exists=False,
    )
    return values


def _pybamm_step(pb: Any, step: Step, capacity_Ah: float, period_s: float) -> Any:
    if step.kind == "run" or step.ambient_degC is not None:
        raise InputError(
            "--compare-pybamm",
            "steps",
            f"{step.text!r}: Run steps and step temperatures are not compared",
        )
    kw: dict[str, Any] = {"period": step.period_s or period_s, "duration": step.duration_s}
    term = [f"{step.voltage_cutoff_V} V"] if step.voltage_cutoff_V is not None else []
    cut = step.current_cutoff_A(capacity_Ah)
    term += [f"{cut} A"] if cut is not None else []
    if term:
        kw["termination"] = term
    if step.kind == "rest":
        return pb.step.rest(**kw)
    assert step.drive is not None
    if step.kind == "hold":
        return pb.step.voltage(step.drive, **kw)
    sign = -1.0 if step.kind == "charge" else 1.0
    make = {
        "A": pb.step.current,
        "C": pb.step.c_rate,
        "W": pb.step.power,
        "Ohm": pb.step.resistance,
    }[step.drive_unit or "A"]
    return make(sign * step.drive if step.drive_unit != "Ohm" else step.drive, **kw)


def compare_with_pybamm(
    design: CellDesign,
    experiment: Experiment,
    *,
    initial_soc: float,
    ambient_degC: float = 25.0,
    period_s: float = 1.0,
) -> Comparison:
    """Run the steps here and in PyBaMM on one cell of the design; the voltage differences."""
    pb = _import_pybamm()
    cell = replace(
        design,
        n_series=1,
        circuit=replace(design.circuit, coulombic_efficiency=1.0),
    )
    ours = PackModel(
        cell, isothermal=True, hysteresis=False, ambient_degC=ambient_degC, initial_soc=initial_soc
    )
    values = _parameter_values(pb, ours, initial_soc)
    # C-rates (and C/20 cut-offs) refer to the nominal capacity, as in our runner and
    # in PyBaMM's c_rate steps ("Nominal cell capacity [A.h]").
    pb_steps = [_pybamm_step(pb, s, design.capacity_Ah, period_s) for s in experiment.steps]
    sim = pb.Simulation(
        pb.equivalent_circuit.Thevenin(options={"number of rc elements": 2}),
        experiment=pb.Experiment(pb_steps),
        parameter_values=values,
    )
    sol = sim.solve()
    res = run_experiment(ours, Experiment.of_steps(experiment.steps), period_s=period_s)
    out = []
    for i, pb_cycle in enumerate(sol.cycles[: len(experiment.steps)]):
        rows = np.flatnonzero(res.step_index == i)
        if rows.size == 0:
            break
        tp = pb_cycle["Time [s]"].entries
        vp = pb_cycle["Voltage [V]"].entries
        rel = res.t_s[rows] - res.t_s[rows[0] - 1]
        both = rel <= tp[-1] - tp[0] + 1e-9
        dv = res.v_V[rows[both], 0] - np.interp(rel[both], tp - tp[0], vp)
        out.append(
            StepComparison(
                text=experiment.steps[i].text,
                end_s=float(rel[-1]),
                pybamm_end_s=float(tp[-1] - tp[0]),
                max_dv_mV=float(np.max(np.abs(dv), initial=0.0) * 1e3),
                rms_dv_mV=float(np.sqrt(np.mean(dv * dv)) * 1e3) if dv.size else 0.0,
            )
        )
    return Comparison(pybamm_version=str(pb.__version__), steps=out)

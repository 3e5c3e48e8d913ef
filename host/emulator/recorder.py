"""What a run records per sample: the score, the expectations and the log, from one place.

The loop hands each sample's PlantStep (the truth after the step and the reading
the firmware got), the gates the plant now applies and the firmware's reply.
The recorder keeps the firmware's latest reply (its beliefs), so a sample
without a reply (link down, lost frame) is logged and scored against the last
estimate the host has. Current is positive on discharge.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cellmodel.design import CellDesign
from host.emulator.expectations import ExpectationChecker
from host.emulator.plant import Gates, PlantStep
from host.estimate_scoring import Availability, EstimateQuality, SampleTruth
from host.protocol.codec import State
from host.report.log import RunLog
from host.scenarios.steps import Expectation, Observation
from host.scoring import CellLimits, Scorer, soc_error_pct


class Recorder:
    def __init__(
        self,
        design: CellDesign,
        *,
        nameplate_Ah: float,
        whole_run: Sequence[tuple[int, Expectation]] = (),
    ) -> None:
        """`design`: the simulated cell (its limits are the safety limits); `nameplate_Ah`: the
        capacity C-rates refer to; `whole_run`: expectations judged over the whole run."""
        limits = CellLimits.from_design(design)
        self.scorer = Scorer(limits)
        self.quality = EstimateQuality(nameplate_Ah, limits.v_max_V, design.limits.cv_cutoff_C)
        self.availability = Availability(
            limits.v_min_V, limits.discharge_temp_min_degC, limits.discharge_temp_max_degC
        )
        self.checker = ExpectationChecker(whole_run)
        self.log = RunLog(design.n_series)
        self.last_reply: State | None = None
        self.last_obs: Observation | None = None

    def expect(self, index: int, step: Expectation) -> None:
        """An expectation reached in the scenario: judged now or pending (see its `within_s`)."""
        self.checker.add(index, step, self.last_obs)

    def reply(self, t_s: float, reply: State, ps: PlantStep, capacity_true_Ah: float) -> None:
        """A reply that is not a sample's (the state read when the link comes back)."""
        self.last_reply = reply
        self._observe(t_s, reply, ps, capacity_true_Ah)

    def sample(
        self,
        t_s: float,
        place: tuple[int, int, float],
        ps: PlantStep,
        gates: Gates,
        reply: State | None,
        *,
        link_up: bool,
        capacity_true_Ah: float,
    ) -> None:
        """One sample: place (step index, cycle, ambient degC), ps the plant's, gates after
        the reply, reply None when none came."""
        if reply is not None:
            self.last_reply = reply
        last = self.last_reply
        truth = ps.truth
        soc_true = float(np.mean(truth.soc))
        sample = SampleTruth(
            t_s, ps.dt_s, ps.demand_A, ps.applied_A, truth.soc, truth.v_V, truth.temp_degC
        )
        self.availability.add(sample, ps.gates.dsg_on, ps.limited)
        if last is not None:
            self.quality.add(sample, soc_error_pct(last.soc_pct, soc_true), last.soc_unc_pct)
            self.scorer.add(
                t_s,
                current_A=ps.applied_A,
                cell_v_V=truth.v_V,
                soc_true=soc_true,
                soc_est_pct=last.soc_pct,
                cell_temp_degC=truth.temp_degC,
                anode_util_mAh_g=truth.anode_util_mAh_g,
                anode_potential_V=truth.anode_potential_V,
                chg_on=gates.chg_on,
                dsg_on=gates.dsg_on,
            )
            if reply is not None:
                self._observe(t_s, reply, ps, capacity_true_Ah)
        self._log(t_s, place, ps, gates, last, link_up and reply is not None)

    def _observe(self, t_s: float, reply: State, ps: PlantStep, capacity_true_Ah: float) -> None:
        cap_err = None
        if reply.capacity_mAh:
            true_mAh = capacity_true_Ah * 1000.0
            cap_err = (reply.capacity_mAh - true_mAh) / true_mAh * 100.0
        obs = Observation(
            t_s=t_s,
            chg_on=reply.chg_on,
            dsg_on=reply.dsg_on,
            faults=reply.fault_bits,
            soc_error_pct=soc_error_pct(reply.soc_pct, float(np.mean(ps.truth.soc))),
            soc_rmse_pct=self.scorer.soc_rmse_pct,
            capacity_error_pct=cap_err,
            rested=self.quality.rested,
        )
        self.last_obs = obs
        self.checker.observe(obs)

    def _log(
        self,
        t_s: float,
        place: tuple[int, int, float],
        ps: PlantStep,
        gates: Gates,
        st: State | None,
        link_ok: bool,
    ) -> None:
        """One row of the log, in host.report.log.COLUMNS order. place: (step, cycle, ambient)."""
        truth = ps.truth
        nan = float("nan")
        step, cycle, ambient_degC = place
        self.log.append(
            (
                t_s,
                step,
                ps.demand_A,
                ps.applied_A,
                truth.pack_v_V,
                float(np.mean(truth.soc)),
                float(np.min(truth.soc)),
                float(np.max(truth.temp_degC)),
                float(np.max(truth.anode_util_mAh_g)),
                float(np.min(truth.anode_potential_V)),
                float(np.mean(truth.h)),
                ps.reading.current_mA,
                st.soc_pct if st else nan,
                st.soc_unc_pct if st else nan,
                st.capacity_mAh if st else 0,
                st.anode_util_mAh_g if st else nan,
                st.current_mA if st else 0,
                gates.chg_on,
                gates.dsg_on,
                st.fault_bits if st else 0,
                st.latched_bits if st else 0,
                st.warning_bits if st else 0,
                gates.balance_bits,
                link_ok,
                cycle,
                ambient_degC,
            ),
            truth.v_V,
        )

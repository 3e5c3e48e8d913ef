"""Check a scenario's expectation steps against the firmware's replies (pure, no I/O).

An expectation without "within" is judged on the latest reply when the scenario
reaches it. One with "within T" passes at the first reply inside T seconds of
simulated time that meets it and fails at the first reply after T without it
(or at the end of the run).
"""

from __future__ import annotations

from dataclasses import dataclass

from host.scenarios.steps import ExpectStep, fault_bits


@dataclass(frozen=True)
class Observation:
    """What the expectations look at: the firmware's latest reply and the score so far."""

    t_s: float
    chg_on: bool
    dsg_on: bool
    faults: int
    soc_error_pct: float
    soc_rmse_pct: float
    capacity_error_pct: float | None


@dataclass
class ExpectationResult:
    index: int  # step index in the scenario
    text: str
    passed: bool | None  # None while pending
    t_start_s: float
    t_judged_s: float | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "step": self.index,
            "text": self.text,
            "passed": bool(self.passed),
            "t_s": self.t_judged_s,
            "detail": self.detail,
        }


def _judge(step: ExpectStep, obs: Observation) -> tuple[bool, str]:
    if step.kind == "switch":
        state = obs.chg_on if step.switch == "CHG" else obs.dsg_on
        return state == step.on, f"{step.switch} {'on' if state else 'off'}"
    if step.kind in ("fault", "no_fault"):
        active = bool(obs.faults & (1 << fault_bits()[step.fault]))
        want = step.kind == "fault"
        return active == want, f"faults 0x{obs.faults:x}"
    if step.kind == "no_faults":
        return obs.faults == 0, f"faults 0x{obs.faults:x}"
    if step.kind == "soc_error":
        return obs.soc_error_pct < step.limit_pct, f"SOC error {obs.soc_error_pct:.2f} %"
    if step.kind == "soc_rmse":
        return obs.soc_rmse_pct < step.limit_pct, f"SOC RMS error {obs.soc_rmse_pct:.2f} %"
    err = obs.capacity_error_pct
    if err is None:
        return False, "no capacity estimate"
    return abs(err) < step.limit_pct, f"capacity error {err:+.2f} %"


class ExpectationChecker:
    def __init__(self) -> None:
        self.results: list[ExpectationResult] = []
        self._pending: list[tuple[ExpectStep, ExpectationResult]] = []

    def add(self, index: int, step: ExpectStep, latest: Observation | None) -> ExpectationResult:
        """Register an expectation when the scenario reaches it; judge it now if possible."""
        t0 = latest.t_s if latest else 0.0
        result = ExpectationResult(index, step.text, None, t0)
        self.results.append(result)
        if latest is None:
            if step.within_s is None:
                result.passed, result.t_judged_s, result.detail = False, t0, "no reply yet"
            else:
                self._pending.append((step, result))
            return result
        ok, detail = _judge(step, latest)
        if ok or step.within_s is None:
            result.passed, result.t_judged_s, result.detail = ok, latest.t_s, detail
        else:
            self._pending.append((step, result))
        return result

    def observe(self, obs: Observation) -> None:
        """A new reply: settle pending 'within' expectations."""
        if not self._pending:
            return
        still: list[tuple[ExpectStep, ExpectationResult]] = []
        for step, result in self._pending:
            ok, detail = _judge(step, obs)
            deadline = result.t_start_s + (step.within_s or 0.0)
            if ok and obs.t_s <= deadline + 1e-9:
                result.passed, result.t_judged_s = True, obs.t_s
                result.detail = f"{detail} after {obs.t_s - result.t_start_s:.3g} s"
            elif obs.t_s > deadline + 1e-9:
                result.passed, result.t_judged_s = False, obs.t_s
                result.detail = f"{detail} at {obs.t_s - result.t_start_s:.3g} s"
            else:
                still.append((step, result))
        self._pending = still

    def finish(self, t_s: float) -> None:
        """End of run: whatever is still pending did not happen in time."""
        for _, result in self._pending:
            result.passed, result.t_judged_s = False, t_s
            result.detail = "run ended before it was met"
        self._pending = []

    @property
    def all_passed(self) -> bool:
        return all(r.passed for r in self.results)

"""Track a run's expectation steps against the firmware's replies (pure, no I/O).

Each expectation judges an observation itself (host.scenarios.steps.expectations);
this module only keeps which are pending and when they were settled.

An expectation without "within" is judged on the latest reply when the scenario
reaches it. One with "within T" passes at the first reply inside T seconds of
simulated time that meets it and fails at the first reply after T without it
(or at the end of the run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from host.scenarios.steps import Expectation, Observation


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


@dataclass
class _WholeRun:
    """A 'throughout' or 'after the first rest' expectation: it fails at the first reply in
    its window that does not meet it and passes at the end if none did."""

    step: Expectation
    result: ExpectationResult
    replies: int = 0
    first_t_s: float | None = None


class ExpectationChecker:
    def __init__(self, whole_run: Sequence[tuple[int, Expectation]] = ()) -> None:
        """`whole_run`: the scenario's (index, expectation) judged over a window of the whole
        run; they watch every reply from the start, wherever they stand in the steps."""
        self.results: list[ExpectationResult] = []
        self._pending: list[tuple[Expectation, ExpectationResult]] = []
        self._whole: dict[int, _WholeRun] = {}
        for index, step in whole_run:
            result = ExpectationResult(index, step.text, None, 0.0)
            self.results.append(result)
            self._whole[index] = _WholeRun(step, result)

    def add(self, index: int, step: Expectation, latest: Observation | None) -> ExpectationResult:
        """Register an expectation when the scenario reaches it; judge it now if possible."""
        if index in self._whole:
            return self._whole[index].result  # watching since the start
        t0 = latest.t_s if latest else 0.0
        result = ExpectationResult(index, step.text, None, t0)
        self.results.append(result)
        if latest is None:
            if step.within_s is None:
                result.passed, result.t_judged_s, result.detail = False, t0, "no reply yet"
            else:
                self._pending.append((step, result))
            return result
        ok, detail = step.judge(latest)
        if ok or step.within_s is None:
            result.passed, result.t_judged_s, result.detail = ok, latest.t_s, detail
        else:
            self._pending.append((step, result))
        return result

    def observe(self, obs: Observation) -> None:
        """A new reply: settle pending 'within' expectations, check the whole-run ones."""
        for watch in self._whole.values():
            _check_whole_run(watch, obs)
        if not self._pending:
            return
        still: list[tuple[Expectation, ExpectationResult]] = []
        for step, result in self._pending:
            ok, detail = step.judge(obs)
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
        for watch in self._whole.values():
            result = watch.result
            if result.passed is not None:
                continue
            result.t_judged_s = t_s
            if watch.replies == 0:
                result.passed = False
                result.detail = "its window never opened (no reply in it)"
            else:
                result.passed = True
                result.detail = f"held over {watch.replies} replies from t={watch.first_t_s:.0f} s"
        self.results.sort(key=lambda r: r.index)

    @property
    def all_passed(self) -> bool:
        return all(r.passed for r in self.results)


def _check_whole_run(watch: _WholeRun, obs: Observation) -> None:
    result = watch.result
    if result.passed is not None:
        return  # already failed
    if watch.step.window == "after_first_rest" and not obs.rested:
        return
    ok, detail = watch.step.judge(obs)
    if watch.first_t_s is None:
        watch.first_t_s = obs.t_s
    watch.replies += 1
    if not ok:
        result.passed, result.t_judged_s = False, obs.t_s
        result.detail = f"{detail} at t={obs.t_s:.0f} s"

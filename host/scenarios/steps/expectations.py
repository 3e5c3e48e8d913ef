"""Expectation steps: what the firmware's replies must show.

    Expect DSG off within 2 s          Expect CHG on
    Expect fault UT_CHG within 10 s    Expect no fault OV
    Expect no faults                   Expect SOC error below 2%
    Expect SOC RMS error below 1%      Expect capacity error below 3%

Each class parses the body after "Expect" (and before an optional "within T").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cellmodel.quantities import DURATION_S, SIGNED_DURATION, SIGNED_NUMBER, Range, seconds
from host.protocol.faults import FAULT_BITS
from host.scenarios.steps.base import Expectation, Observation

# "within 0 s" is the first reply after the step; at most a step's longest duration.
WITHIN_S = Range(0.0, DURATION_S.hi, "s", note=DURATION_S.note)
_WITHIN = re.compile(rf"\s+within\s+{SIGNED_DURATION}\s*$", re.IGNORECASE)
_WHOLE_RUN = re.compile(r"\s+(throughout|after the first rest)\s*$", re.IGNORECASE)
_LIMIT = rf"(?:below|under|<) {SIGNED_NUMBER}\s*%"
EXAMPLES = (
    "'Expect DSG off within 2 s', 'Expect fault UT_CHG', 'Expect no faults', "
    "'Expect SOC error below 2%', 'Expect SOC RMS error below 1%', "
    "'Expect capacity error below 3%', 'Expect SOC error below 3% throughout', "
    "'Expect SOC error below 3% after the first rest'"
)


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def split_expectation(text: str) -> tuple[str, float | None, str] | None:
    """(body after "Expect", within_s, window) or None when the text is not an expectation.

    window: "latest" (judged on the latest reply; with within_s, on the replies up to that
    long after), "throughout" (every reply of the run) or "after_first_rest" (every reply
    after the run's first 30-minute rest).
    """
    stripped = text.strip().rstrip(".")
    if not stripped.lower().startswith("expect "):
        return None
    within_s: float | None = None
    window = "latest"
    m = _WHOLE_RUN.search(stripped)
    if m:
        window = "throughout" if m.group(1).lower() == "throughout" else "after_first_rest"
        stripped = stripped[: m.start()]
    m = _WITHIN.search(stripped)
    if m:
        if window != "latest":
            raise ValueError(f"'within' and '{window.replace('_', ' ')}' cannot be combined")
        within_s = seconds(m.group(1), m.group(2))
        if not WITHIN_S.contains(within_s):  # one range in both words (it read "(0, ...]")
            raise ValueError(f"'within' {WITHIN_S.outside(within_s)}")
        stripped = stripped[: m.start()]
    return stripped[len("expect ") :].strip(), within_s, window


def _fault_name(name: str) -> str:
    upper = name.upper()
    if upper not in FAULT_BITS:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULT_BITS))}")
    return upper


def _limit_pct(m: re.Match[str], group: int) -> float:
    value = float(m.group(group))
    if not 0 < value <= 100:
        raise ValueError(f"the limit must be > 0 % and <= 100 %, got {value:g} %")
    return value


@dataclass(frozen=True)
class ExpectSwitch(Expectation):
    text: str
    switch: str  # "CHG" | "DSG"
    on: bool
    PATTERN = _rx(r"(chg|dsg) (on|off)")

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> ExpectSwitch:
        return cls(text, m.group(1).upper(), m.group(2).lower() == "on")

    def judge(self, obs: Observation) -> tuple[bool, str]:
        state = obs.chg_on if self.switch == "CHG" else obs.dsg_on
        return state == self.on, f"{self.switch} {'on' if state else 'off'}"


@dataclass(frozen=True)
class ExpectFault(Expectation):
    text: str
    fault: str
    PATTERN = _rx(r"fault (\w+)")

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> ExpectFault:
        return cls(text, _fault_name(m.group(1)))

    def judge(self, obs: Observation) -> tuple[bool, str]:
        return bool(obs.faults & (1 << FAULT_BITS[self.fault])), f"faults 0x{obs.faults:x}"


@dataclass(frozen=True)
class ExpectNoFault(Expectation):
    text: str
    fault: str
    PATTERN = _rx(r"no fault (\w+)")

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> ExpectNoFault:
        return cls(text, _fault_name(m.group(1)))

    def judge(self, obs: Observation) -> tuple[bool, str]:
        return not obs.faults & (1 << FAULT_BITS[self.fault]), f"faults 0x{obs.faults:x}"


@dataclass(frozen=True)
class ExpectNoFaults(Expectation):
    text: str
    PATTERN = _rx(r"no faults")

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> ExpectNoFaults:
        return cls(text)

    def judge(self, obs: Observation) -> tuple[bool, str]:
        return obs.faults == 0, f"faults 0x{obs.faults:x}"


@dataclass(frozen=True)
class ExpectSocError(Expectation):
    """The SOC error of the latest reply (percent of capacity)."""

    text: str
    limit_pct: float
    PATTERN = _rx(rf"soc error {_LIMIT}")

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> ExpectSocError:
        return cls(text, _limit_pct(m, 1))

    def judge(self, obs: Observation) -> tuple[bool, str]:
        return obs.soc_error_pct < self.limit_pct, f"SOC error {obs.soc_error_pct:.2f} %"


@dataclass(frozen=True)
class ExpectSocRmse(Expectation):
    """The RMS SOC error over the run so far."""

    text: str
    limit_pct: float
    PATTERN = _rx(rf"soc rms error {_LIMIT}")

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> ExpectSocRmse:
        return cls(text, _limit_pct(m, 1))

    def judge(self, obs: Observation) -> tuple[bool, str]:
        return obs.soc_rmse_pct < self.limit_pct, f"SOC RMS error {obs.soc_rmse_pct:.2f} %"


@dataclass(frozen=True)
class ExpectCapacityError(Expectation):
    """The firmware's capacity estimate against the pack's true (smallest cell) capacity."""

    text: str
    limit_pct: float
    PATTERN = _rx(rf"capacity error {_LIMIT}")

    @classmethod
    def from_match(cls, text: str, m: re.Match[str]) -> ExpectCapacityError:
        return cls(text, _limit_pct(m, 1))

    def judge(self, obs: Observation) -> tuple[bool, str]:
        err = obs.capacity_error_pct
        if err is None:
            return False, "no capacity estimate"
        return abs(err) < self.limit_pct, f"capacity error {err:+.2f} %"

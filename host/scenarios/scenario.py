"""Scenario files: TOML with the cell, sensor model, seed, initial state and a list of steps.

    name = "cold-charge"
    description = "Charging below 0 degC must be refused."
    cell = "sisn-lco-2ah"          # optional; `--cell` overrides: the simulated cell (truth)
    bms_cell = "sisn-lco-2ah"      # optional; `--bms-cell` overrides: the design the BMS is
                                   # configured for (belief); default: the cell's nominal design
    seed = 7
    sample_period_s = 1.0
    ambient_degC = 25.0
    bleed_resistance_ohm = 33.0    # per-cell balancing resistor
    max_duration_s = 36000         # optional cap on simulated time
    honour_bms_limits = true       # the charger and load keep to the BMS's CCL and DCL
    steps = ["Set ambient -10 degC", "Rest for 2 hours", "Charge at 0.5C for 10 minutes",
             "Expect CHG off within 5 s", "Expect fault UT_CHG"]   # before any [table]

    [initial]
    soc = 0.5                      # true SOC of every cell (pack spread added on top)
    branch = "discharge"           # hysteresis branch the cells rest on: charge | discharge
    temp_degC = 25.0               # default: ambient
    state_file = true              # firmware starts with a state file holding the true SOC
    firmware_soc = 0.8             # optional: the state file claims this SOC instead (wrong SOC)
    # firmware_soc_error = -0.06  # instead of firmware_soc: the true SOC plus this (a little stale)
    firmware_branch = "charge"     # optional: and this branch (a stale file: what the BMS last saw)

    [mismatch]                     # the simulated cell against the BMS's design (see mismatch.py)
    hysteresis_rate_factor = 0.5

    [sensors]                      # host.sensors.SensorSpec fields; `ideal = true` zeroes errors
    current_offset_mA = 3.0

Relative `Run PROFILE.csv` paths are read from the scenario file's folder.

Bad files raise InputError naming the file, the field (or step index) and the reason.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellmodel.errors import InputError, unknown_key
from cellmodel.experiment import cycle_table
from cellmodel.files import TOML_CAP, check_input_file, read_text
from host.firmware_config import SAMPLE_PERIOD_MAX_MS
from host.scenarios.mismatch import Mismatch, parse_mismatch
from host.scenarios.steps import DriveStep, ScenarioStep, parse_scenario_step
from host.sensors import SensorSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # pyright: ignore[reportMissingImports]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# A scenario is a test, not a life's work: bounds the steps a repeated cycle expands into.
MAX_SCENARIO_STEPS = 100_000
# A scenario's seed: 32 bits, as a cell file's [pack] seed.
MAX_SEED = 2**32 - 1
LIBRARY_DIR = Path(__file__).resolve().parent / "library"
DEFAULT_SCENARIO = "full-cycle"

_TOP_KEYS = {
    "name",
    "description",
    "cell",
    "seed",
    "sample_period_s",
    "ambient_degC",
    "bleed_resistance_ohm",
    "max_duration_s",
    "isothermal",
    "hysteresis",
    "initial",
    "sensors",
    "steps",
    "bms_cell",
    "mismatch",
    "honour_bms_limits",
}
_INITIAL_KEYS = {
    "soc",
    "branch",
    "temp_degC",
    "state_file",
    "firmware_soc",
    "firmware_soc_error",
    "firmware_branch",
}


@dataclass(frozen=True)
class InitialState:
    soc: float = 0.5
    branch: str = "discharge"  # "charge" (h = -1) or "discharge" (h = +1)
    temp_degC: float | None = None  # None: ambient
    state_file: bool = True
    firmware_soc: float | None = None  # the state file's (possibly wrong) SOC; None: the true one
    # The branch the state file says the cells were last on; None: the true one. With
    # firmware_soc it makes a stale file: what the BMS last saw, not what is true now.
    firmware_branch: str | None = None
    # The state file holds each cell's true SOC plus this: a pack charged (negative) or
    # discharged (positive) by that much while the BMS was off, too little for its boot check
    # to tell. 0 with firmware_soc.
    firmware_soc_error: float = 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    source: str
    description: str = ""
    cell: str | None = None
    seed: int = 1
    sample_period_s: float = 1.0
    ambient_degC: float = 25.0
    bleed_resistance_ohm: float = 33.0
    max_duration_s: float = 48 * 3600.0
    isothermal: bool = False
    hysteresis: bool = True
    # The charger and the load keep to the BMS's current limits (CCL, DCL) as a CAN charger
    # or an inverter does; false: they ask for what the step says and only the switches stop it.
    honour_bms_limits: bool = True
    bms_cell: str | None = None  # the design the BMS is configured for; None: the cell's nominal
    mismatch: Mismatch = field(default_factory=Mismatch)
    initial: InitialState = field(default_factory=InitialState)
    sensors: SensorSpec = field(default_factory=SensorSpec)
    steps: tuple[ScenarioStep, ...] = ()
    # Where each step came from in the file (a repeated table's steps share one), and its
    # cycle number from 1 (a new one for each repetition of a {steps, repeat} table).
    step_fields: tuple[str, ...] = ()
    step_cycles: tuple[int, ...] = ()
    base_dir: Path = field(default_factory=Path.cwd)

    @property
    def file(self) -> Path:
        """The scenario file: relative paths in it are read from its folder."""
        return self.base_dir / Path(self.source).name

    def field_of(self, index: int) -> str:
        """The file's field of step `index` (after repeats are expanded)."""
        return self.step_fields[index] if index < len(self.step_fields) else f"steps[{index}]"

    def cycle_of(self, index: int) -> int:
        return self.step_cycles[index] if index < len(self.step_cycles) else 1


def _number(
    data: dict[str, Any], key: str, source: str, default: float, *, lo: float, hi: float, name: str
) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(source, name, f"must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise InputError(source, name, f"{value} outside {lo}..{hi}")
    return float(value)


def _sample_period_s(data: dict[str, Any], source: str) -> float:
    """Whole milliseconds, with one upper bound: the firmware's, with its reason."""
    period = _number(
        data, "sample_period_s", source, 1.0, lo=0.01, hi=math.inf, name="sample_period_s"
    )
    if period * 1000 > SAMPLE_PERIOD_MAX_MS:
        raise InputError(
            source,
            "sample_period_s",
            f"{period:g} s: the firmware counts at most {SAMPLE_PERIOD_MAX_MS / 1000:g} s per "
            "sample (max_dt_ms); samples further apart would each be a gap in its count",
        )
    if round(period * 1000) != period * 1000:
        raise InputError(source, "sample_period_s", "must be a whole number of milliseconds")
    return period


def _bool(data: dict[str, Any], key: str, source: str, default: bool, name: str) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise InputError(source, name, f"must be true or false, got {value!r}")
    return value


def _initial(data: Any, source: str) -> InitialState:
    if data is None:
        return InitialState()
    if not isinstance(data, dict):
        raise InputError(source, "initial", "must be a table")
    for key in data:
        if key not in _INITIAL_KEYS:
            raise InputError(source, f"initial.{key}", unknown_key(key, sorted(_INITIAL_KEYS)))
    soc = _number(data, "soc", source, 0.5, lo=0.0, hi=1.0, name="initial.soc")
    branch = data.get("branch", "discharge")
    if branch not in ("charge", "discharge"):
        raise InputError(
            source, "initial.branch", f"must be 'charge' or 'discharge', got {branch!r}"
        )
    temp = None
    if "temp_degC" in data:
        temp = _number(data, "temp_degC", source, 25.0, lo=-40, hi=80, name="initial.temp_degC")
    fw_soc = None
    if "firmware_soc" in data:
        fw_soc = _number(data, "firmware_soc", source, 0.5, lo=0, hi=1, name="initial.firmware_soc")
    fw_error = 0.0
    if "firmware_soc_error" in data:
        if fw_soc is not None:
            raise InputError(
                source, "initial.firmware_soc_error", "give firmware_soc or this, not both"
            )
        fw_error = _number(
            data, "firmware_soc_error", source, 0.0, lo=-1, hi=1, name="initial.firmware_soc_error"
        )
    state_file = _bool(data, "state_file", source, True, "initial.state_file")
    fw_branch = data.get("firmware_branch")
    if fw_branch is not None and fw_branch not in ("charge", "discharge"):
        raise InputError(
            source,
            "initial.firmware_branch",
            f"must be 'charge' or 'discharge', got {fw_branch!r}",
        )
    for key in ("firmware_soc", "firmware_soc_error", "firmware_branch"):
        if key in data and not state_file:
            raise InputError(source, f"initial.{key}", "needs state_file = true")
    return InitialState(soc, branch, temp, state_file, fw_soc, fw_branch, fw_error)


def _top_keys_in_tables(data: dict[str, Any], source: str) -> None:
    """A top-level key written after a [table] is that table's in TOML (`steps` below
    [initial] is initial.steps): refused as a key of the table it landed in, saying why, before
    the top level reports it missing. No table has a key of the top level's name."""
    for table, values in data.items():
        if not isinstance(values, dict):
            continue
        for key in values:
            if key in _TOP_KEYS:
                raise InputError(
                    source,
                    f"{table}.{key}",
                    f"not a key of [{table}]: {key!r} is a top-level key, and in TOML a key "
                    f"after a [table] header belongs to that table; write it before [{table}]",
                )


def parse_scenario(data: dict[str, Any], source: str, base_dir: Path | None = None) -> Scenario:
    """Validate a scenario table (from TOML) and parse its steps."""
    for key in data:
        if key not in _TOP_KEYS:
            raise InputError(source, key, unknown_key(key, sorted(_TOP_KEYS)))
    _top_keys_in_tables(data, source)
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", Path(source).stem.removesuffix(".toml")).lstrip("._-")
    name = data.get("name", stem[:64] or "scenario")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        # The name becomes the output files' stem: no path separators, no "..".
        raise InputError(
            source,
            "name",
            f"must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit, "
            f"got {name!r}",
        )
    description = data.get("description", "")
    if not isinstance(description, str):
        raise InputError(source, "description", "must be text")
    cell = data.get("cell")
    if cell is not None and (not isinstance(cell, str) or not cell):
        raise InputError(source, "cell", "must be a cell preset name or file path")
    bms_cell = data.get("bms_cell")
    if bms_cell is not None and (not isinstance(bms_cell, str) or not bms_cell):
        raise InputError(source, "bms_cell", "must be a cell preset name or file path")
    seed = data.get("seed", 1)
    # As a cell file's [pack] seed: 32 bits. A larger one ran, and then a campaign's table
    # (Parquet, 64-bit integers) could not hold it: a traceback after all its runs.
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InputError(source, "seed", f"must be an integer 0..{MAX_SEED:,}, got {seed!r}")
    period = _sample_period_s(data, source)
    ambient = _number(data, "ambient_degC", source, 25.0, lo=-40, hi=80, name="ambient_degC")
    bleed = _number(
        data, "bleed_resistance_ohm", source, 33.0, lo=1.0, hi=1e6, name="bleed_resistance_ohm"
    )
    max_dur = _number(
        data, "max_duration_s", source, 48 * 3600.0, lo=1.0, hi=30 * 86400.0, name="max_duration_s"
    )
    sensors_data = data.get("sensors", {})
    if not isinstance(sensors_data, dict):
        raise InputError(source, "sensors", "must be a table")
    sensors = SensorSpec.from_mapping(sensors_data, source)
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise InputError(source, "steps", "must be a non-empty list of step texts")
    expanded = expand_steps(raw_steps, source)
    steps = tuple(parse_scenario_step(text, source, field) for field, _, text in expanded)
    if not any(isinstance(s, DriveStep) for s in steps):
        raise InputError(
            source, "steps", "needs at least one experiment step (Charge/Discharge/Rest...)"
        )
    return Scenario(
        name=name,
        source=source,
        description=description,
        cell=cell,
        seed=seed,
        sample_period_s=period,
        ambient_degC=ambient,
        bleed_resistance_ohm=bleed,
        max_duration_s=max_dur,
        isothermal=_bool(data, "isothermal", source, False, "isothermal"),
        hysteresis=_bool(data, "hysteresis", source, True, "hysteresis"),
        honour_bms_limits=_bool(data, "honour_bms_limits", source, True, "honour_bms_limits"),
        bms_cell=bms_cell,
        mismatch=parse_mismatch(data.get("mismatch"), source, seed),
        initial=_initial(data.get("initial"), source),
        sensors=sensors,
        steps=steps,
        step_fields=tuple(field for field, _, _ in expanded),
        step_cycles=tuple(cycle for _, cycle, _ in expanded),
        base_dir=base_dir or Path.cwd(),
    )


def expand_steps(raw: list[Any], source: str) -> list[tuple[str, int, Any]]:
    """(field, cycle, text) for every step: a text is one step of the current cycle; a table
    {steps = [...], repeat = N} is N cycles of its steps (PyBaMM's `[(...)] * N`)."""
    out: list[tuple[str, int, Any]] = []
    cycle, fresh = 1, True  # fresh: the current cycle has no step yet
    for i, entry in enumerate(raw):
        where = f"steps[{i}]"
        if not isinstance(entry, dict):
            out.append((where, cycle, entry))
            fresh = False
            continue
        texts, repeat = cycle_table(entry, source, where)
        if len(out) + repeat * len(texts) > MAX_SCENARIO_STEPS:
            raise InputError(
                source, where, f"more than {MAX_SCENARIO_STEPS:,} steps after repeating"
            )
        for _ in range(repeat):
            if not fresh:
                cycle += 1
            out += [(f"{where}.steps[{k}]", cycle, text) for k, text in enumerate(texts)]
            fresh = False
        cycle, fresh = cycle + 1, True  # what follows a repeated table is a cycle of its own
    return out


def library_names() -> list[str]:
    """Names of the built-in scenarios (host/scenarios/library/*.toml)."""
    return sorted(p.stem for p in LIBRARY_DIR.glob("*.toml"))


def load_scenario(name_or_path: str | Path | None = None) -> Scenario:
    """A built-in scenario by name, or a TOML file by path (default: the full cycle)."""
    text = str(name_or_path) if name_or_path else DEFAULT_SCENARIO
    path = Path(text)
    if not (path.suffix == ".toml" or path.exists()):
        path = LIBRARY_DIR / f"{text}.toml"
        if not path.is_file():
            raise InputError(
                "--scenario",
                text,
                f"no such scenario file or built-in; built-ins: {', '.join(library_names())}",
            )
    if not path.exists():
        raise InputError("--scenario", text, "no such file")
    check_input_file(path, "--scenario", text, TOML_CAP)  # a folder, a FIFO: refused unread
    source = str(path)
    text = read_text(path, source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(source, "toml", f"not valid TOML: {exc}") from None
    return parse_scenario(data, source, base_dir=path.parent)

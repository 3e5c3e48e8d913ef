"""A campaign expanded into runs: each combination of a group's scenarios and axis values.

Each run is plain data (RunPlan): its scenario as TOML text with the files it reads
(host.campaign.bundle), the run options, and a stable id, the hash of all of that:
the same combination gives the same id on any machine, and a changed scenario file
a new one. Every run is checked here as `sisnbms emulate` checks a run before it starts
(host.emulator.run.check_run: the scenario, its cells, the firmware's configuration, its
steps against them), before anything runs or is written, so a bad axis value is a bad
campaign file (exit 2) naming the axis or variant value that made the run bad.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from cellmodel.errors import InputError
from cellmodel.files import read_once, read_text
from host.campaign.bundle import CELL_KEYS, Bundle, absolute_cell, absolute_steps
from host.campaign.spec import RUN_OPTIONS, AxisValue, CampaignSpec, Group, ScenarioRef
from host.micropython.resolve import UNIX64_TARGET
from host.scenarios import Scenario, parse_scenario

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # pyright: ignore[reportMissingImports]

SCENARIO_FILE = "scenario.toml"
ID_CHARS = 12  # hex digits of the sha256: 48 bits, no collision in millions of runs


@dataclass(frozen=True)
class RunPlan:
    """One run: what it is (group, scenario, axis value labels) and what it needs."""

    run_id: str
    group: str
    scenario: str  # the scenario's label in the campaign
    name: str  # the scenario's own name (its output files' stem)
    seed: int
    axes: dict[str, str]  # axis name -> value label
    scenario_toml: str
    files: dict[str, str]  # files/NAME -> text
    options: dict[str, str]  # run_scenario keyword arguments (RUN_OPTIONS)

    @property
    def label(self) -> str:
        parts = [f"scenario={self.scenario}"] + [f"{k}={v}" for k, v in self.axes.items()]
        return " ".join(parts)

    def payload(self, timeout_s: float) -> dict[str, Any]:
        """What a worker gets (host.campaign.execute.execute_run): plain data only."""
        return {
            "run_id": self.run_id,
            "scenario_toml": self.scenario_toml,
            "files": dict(self.files),
            "options": dict(self.options),
            "timeout_s": float(timeout_s),
        }

    def reproduce(self, run_dir: Path) -> str:
        """The command that runs this combination again, alone, writing its log and plot."""
        cmd = [
            "sisnbms",
            "emulate",
            "--scenario",
            str(run_dir / SCENARIO_FILE),
            "--out",
            str(run_dir),
        ]
        for key, value in self.options.items():
            cmd += [f"--{key.replace('_', '-')}", value]
        return shlex.join(cmd)


def expand(spec: CampaignSpec) -> list[RunPlan]:
    """Every run of the campaign, in a stable order, each checked as a run is before it
    starts; InputError for the first that is not (naming the campaign file, the axis or
    variant value that made it so, the check's reason and the run)."""
    with read_once():  # the runs read a few cell and board files, each checked once
        return _expanded(spec)


def _expanded(spec: CampaignSpec) -> list[RunPlan]:
    plans: list[RunPlan] = []
    seen: dict[str, str] = {}
    for group in spec.groups:
        for ref in group.scenarios:
            base = _scenario_data(ref, spec.source)
            for combo in _combinations(group):
                plan = _plan(spec, group, ref, base, combo)
                if plan.run_id in seen:
                    raise InputError(
                        spec.source,
                        "axes",
                        f"{plan.label} is the same run as {seen[plan.run_id]}",
                    )
                seen[plan.run_id] = plan.label
                plans.append(plan)
    return plans


def _scenario_data(ref: ScenarioRef, source: str) -> dict[str, Any]:
    text = read_text(ref.path, source, f"scenario {ref.label}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # named as read_text names the file's other faults: the campaign, then the scenario
        raise InputError(
            source, f"scenario {ref.label}", f"{ref.path}: not valid TOML: {exc}"
        ) from None
    # The name the scenario gets from its file name (as the scenario parser makes it), kept
    # when the copy is scenario.toml.
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", ref.path.stem).lstrip("._-")
    data.setdefault("name", stem[:64] or "scenario")
    # Its profiles once per scenario; its cells in each run, once merged (_run_scenario).
    return absolute_steps(data, ref.path.parent, str(ref.path))


# A run's axis values: (axis name, value) for each of its group's axes.
Combination = tuple[tuple[str, AxisValue], ...]


def _combinations(group: Group) -> Iterator[Combination]:
    names = [axis.name for axis in group.axes]
    for values in itertools.product(*(axis.values for axis in group.axes)):
        yield tuple(zip(names, values, strict=True))


def _plan(
    spec: CampaignSpec, group: Group, ref: ScenarioRef, base: dict[str, Any], combo: Combination
) -> RunPlan:
    labels = {name: value.label for name, value in combo}
    try:
        data, options = _run_scenario(spec, ref, base, combo)
        scenario = _checked(data, ref, options)
    except InputError as exc:
        raise _refused(exc, spec, group, ref, base, combo) from None
    where = " ".join([f"scenario={ref.label}"] + [f"{k}={v}" for k, v in labels.items()])
    bundle = Bundle(f"{spec.source} [{where}]")
    packed = bundle.pack(data)
    files = dict(sorted(bundle.files.items()))
    return RunPlan(
        run_id=run_id(packed, files, options),
        group=group.name,
        scenario=ref.label,
        name=scenario.name,
        seed=scenario.seed,
        axes=labels,
        scenario_toml=_toml(packed, spec.name, ref.label, labels),
        files=files,
        options=options,
    )


def _run_scenario(
    spec: CampaignSpec, ref: ScenarioRef, base: dict[str, Any], combo: Combination
) -> tuple[dict[str, Any], dict[str, str]]:
    """The run's scenario table (the scenario's, with the combination's settings merged in)
    and its run options (RUN_OPTIONS)."""
    source = str(ref.path)
    data = dict(base)
    options: dict[str, str] = {}
    cells_beside: dict[str, Path] = dict.fromkeys(CELL_KEYS, ref.path)  # who wrote each cell
    for _, value in combo:
        scenario_settings = {k: v for k, v in value.settings.items() if k not in RUN_OPTIONS}
        options.update({k: v for k, v in value.settings.items() if k in RUN_OPTIONS})
        nested = _nest(scenario_settings, source)
        data = _merge(data, absolute_steps(nested, spec.base_dir, source), source, "")
        cells_beside.update(dict.fromkeys(nested.keys() & set(CELL_KEYS), spec.file))
    # The cells once merged, each from the folder of the file that wrote it (the scenario's,
    # or the campaign file's for an axis value): only those the run uses are read (an axis
    # that sets every run's cell leaves the scenario's own unread, as --cell does), and one
    # that is missing is refused as any bad run is (_refused), named as written.
    for key, beside in cells_beside.items():
        if key in data:
            data[key] = absolute_cell(data[key], beside, source, key)
    return data, options


def _checked(data: dict[str, Any], ref: ScenarioRef, options: dict[str, str]) -> Scenario:
    """The run's scenario, parsed and checked as `sisnbms emulate` checks a run before it
    starts; InputError names the scenario file (or the cell or profile file) at fault."""
    # Imported here: a Dask worker imports this module (execute does) and needs no emulator.
    from host.emulator.run import check_run

    scenario = parse_scenario(data, str(ref.path), base_dir=ref.path.parent)
    check_run(scenario, target=options.get("target", UNIX64_TARGET))
    return scenario


def _refused(
    exc: InputError,
    spec: CampaignSpec,
    group: Group,
    ref: ScenarioRef,
    base: dict[str, Any],
    combo: Combination,
) -> InputError:
    """A run that does not check, as bad input of the campaign file: its field is the first
    axis or variant value without which the run checks (else the scenario's entry: the
    scenario fails on its own, or only a combination does), its reason the check's, then
    which run."""
    field, detail = ref.field, str(exc)
    for i, (_, value) in enumerate(combo):
        if not value.settings:  # a baseline changes nothing
            continue
        try:
            data, options = _run_scenario(spec, ref, base, combo[:i] + combo[i + 1 :])
            _checked(data, ref, options)
        except InputError:
            continue
        field = value.field
        if exc.source == str(ref.path):  # the value, not the scenario file, is at fault
            detail = f"{exc.field}: {exc.reason}"
        break
    run = [f"group={group.name}"] if len(spec.groups) > 1 else []
    run += [f"scenario={ref.label}"] + [f"{name}={value.label}" for name, value in combo]
    return InputError(spec.source, field, f"{detail} (run {' '.join(run)})")


def run_id(scenario: dict[str, Any], files: dict[str, str], options: dict[str, str]) -> str:
    """The hash of everything the run depends on besides sisnbms itself."""
    blob = json.dumps(
        {"scenario": scenario, "files": files, "options": options},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:ID_CHARS]


def _nest(settings: dict[str, Any], source: str) -> dict[str, Any]:
    """{"initial.soc": 0.5} -> {"initial": {"soc": 0.5}}."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(source, key, "sets both a value and a key inside it")
        node[last] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any], source: str, prefix: str) -> dict[str, Any]:
    """`over` merged into a copy of `base`, key by key inside tables."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict):
            inner = out.get(key, {})
            if not isinstance(inner, dict):
                raise InputError(source, f"{prefix}{key}", "the scenario has a value, not a table")
            out[key] = _merge(inner, value, source, f"{prefix}{key}.")
        else:
            out[key] = value
    return out


def _toml(data: dict[str, Any], campaign: str, scenario: str, labels: dict[str, str]) -> str:
    header = [f"# sisnbms campaign {campaign}: scenario {scenario}"]
    header += [f"#   {name} = {label}" for name, label in labels.items()]
    # A newline in a label would end the comment.
    header = [line.replace("\r", " ").replace("\n", " ") for line in header]
    return "\n".join(header) + "\n" + tomli_w.dumps(data)

"""Campaign files: which scenarios to run and which axes to cross them with.

    name = "robustness"                  # optional; default: the file's stem
    description = "what it shows"
    timeout_s = 1800                     # per run; a run past it is a failed row
    scenarios = ["full-cycle", "robustness/*.toml"]
                                         # built-in names (or name patterns: "*" is all of
                                         # them) and TOML paths or globs, from this file's folder

    [axes]                               # each a list of values; every axis is crossed
    seed = [1, 2, 3]                     # with every other and with the scenarios
    mismatch.hysteresis_rate_factor = [0.5, 2.0]
    target = ["unix-64", "unix-32"]      # a run option, not a scenario key (see RUN_OPTIONS)

    [variants.start]                     # an axis whose values are named sets of settings:
    exact = {}                           # one factor (or several) at a time
    stale = { initial = { firmware_soc = 0.9, firmware_branch = "charge" } }
    none = { "initial.state_file" = false }

    [[group]]                            # optional: several sub-campaigns, each with its own
    name = "window"                      # scenarios and axes; the top-level axes and
    scenarios = ["robustness/full-cycles.toml"]    # variants cross into every group (then
    axes = { cell = ["robustness/cells/window-1500.toml"] }   # no top-level `scenarios`)

A setting's key is a dotted path into the scenario file (`seed`, `ambient_degC`,
`mismatch.capacity_factor`, `sensors.current_bias_mA`, `initial.state_file`,
`cell`, ...) or a run option. When the campaign is expanded every run is checked as
`sisnbms emulate` checks it before it starts (host.emulator.run.check_run: the scenario,
its cells, the firmware's configuration, its steps against them); file paths in axis
values are read from this file's folder.

A full cross product is several axes; one-factor-at-a-time variations are one
variants axis whose entries each change one thing (an empty table is the
baseline). Bad files raise InputError naming the file, the field and the reason.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cellmodel.errors import InputError, unknown_key
from cellmodel.files import check_input_file, expand_home, read_text
from host.micropython.resolve import RUN_TARGETS
from host.scenarios import LIBRARY_DIR, library_names

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # pyright: ignore[reportMissingImports]


def _interpreter(value: Any, base_dir: Path) -> str:
    """A MicroPython binary: a path from the campaign file's folder, made absolute."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a path, got {value!r}")
    path = expand_home(value)
    path = path if path.is_absolute() else base_dir / path
    if not path.is_file():
        raise ValueError(f"no such file {value!r}")
    return str(path.resolve())


def _target(value: Any, base_dir: Path) -> str:
    """A virtual board's MicroPython target (host.micropython.resolve.RUN_TARGETS)."""
    if value not in RUN_TARGETS:
        raise ValueError(f"unknown target {value!r}; known: {', '.join(RUN_TARGETS)}")
    return str(value)


# Keys that are not scenario keys but options of the run (run_scenario's keyword
# arguments, and `sisnbms emulate` flags in the reproduce command), each with its
# check: the interpreter running the firmware, or the target it is built for.
RUN_OPTIONS: dict[str, Callable[[Any, Path], str]] = {
    "micropython": _interpreter,
    "target": _target,
}
DEFAULT_TIMEOUT_S = 1800.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TOP_KEYS = {"name", "description", "timeout_s", "scenarios", "axes", "variants", "group"}
_GROUP_KEYS = {"name", "scenarios", "axes", "variants"}
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class ScenarioRef:
    """One scenario of a campaign: its label (the entry as written, or the matched
    file relative to the campaign's folder), its TOML file, and the campaign file's field
    that names it (`group[1].scenarios[0]`)."""

    label: str
    path: Path
    field: str = "scenarios"


@dataclass(frozen=True)
class AxisValue:
    """One value of an axis: its label, the settings it makes (dotted key -> value), and the
    campaign file's field that wrote it (`axes.seed[2]`, `group[1].variants.start.stale`)."""

    label: str
    settings: dict[str, Any]
    field: str = "axes"


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[AxisValue, ...]


@dataclass(frozen=True)
class Group:
    name: str
    scenarios: tuple[ScenarioRef, ...]
    axes: tuple[Axis, ...]  # the campaign's shared axes first, then the group's own


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    source: str
    base_dir: Path
    description: str
    timeout_s: float
    groups: tuple[Group, ...]

    @property
    def file(self) -> Path:
        """The campaign file, absolute: its folder is where axis values' paths are read."""
        return self.base_dir / Path(self.source).name

    @property
    def axis_names(self) -> list[str]:
        """Every axis of every group, in first-seen order."""
        names: dict[str, None] = {}
        for group in self.groups:
            names.update((axis.name, None) for axis in group.axes)
        return list(names)


def load_spec(path: str | Path) -> CampaignSpec:
    """Read and check a campaign file; InputError names the file, the field and the reason."""
    path = Path(path)
    source = str(path)
    text = read_text(path, source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(source, "toml", f"not valid TOML: {exc}") from None
    return parse_spec(data, source, path.resolve().parent)


def on_target(spec: CampaignSpec, target: str) -> CampaignSpec:
    """Every run of `spec` on the virtual board `target` (`campaign --target`): one more
    axis, `target`, of that one value, so the runs' ids, rows and reproduce commands say
    it. A file that sets the target (or its interpreter) itself is bad input: which of the
    two would win is not for the user to guess."""
    try:
        value = _target(target, spec.base_dir)
    except ValueError as exc:
        raise InputError("--target", target, str(exc)) from None
    axis = Axis("target", (AxisValue(value, {"target": value}, "--target"),))
    groups = []
    for group in spec.groups:
        keys = {k for a in group.axes for v in a.values for k in v.settings}
        if keys & RUN_OPTIONS.keys():
            raise InputError(
                "--target",
                target,
                f"{spec.source} group {group.name!r} sets its own "
                f"{sorted(keys & RUN_OPTIONS.keys())[0]}",
            )
        groups.append(replace(group, axes=(*group.axes, axis)))
    return replace(spec, groups=tuple(groups))


def parse_spec(data: dict[str, Any], source: str, base_dir: Path) -> CampaignSpec:
    """A campaign table (from TOML) checked and resolved against `base_dir`."""
    _known_keys(data, _TOP_KEYS, source, "")
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", Path(source).stem).lstrip("._-")
    name = data.get("name", stem[:64] or "campaign")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(
            source, "name", f"must be 1-64 letters, digits, '.', '_' or '-', got {name!r}"
        )
    description = data.get("description", "")
    if not isinstance(description, str):
        raise InputError(source, "description", "must be text")
    timeout_s = data.get("timeout_s", DEFAULT_TIMEOUT_S)
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, (int, float))
        or not math.isfinite(timeout_s)
        or not 1 <= timeout_s <= 7 * 86400
    ):
        raise InputError(
            source, "timeout_s", f"must be a number of seconds in 1..604800, got {timeout_s!r}"
        )
    shared = _axes(data, source, base_dir, "")
    groups = _groups(data, source, base_dir, shared)
    return CampaignSpec(name, source, base_dir, description, float(timeout_s), groups)


def _groups(
    data: dict[str, Any], source: str, base_dir: Path, shared: list[Axis]
) -> tuple[Group, ...]:
    raw = data.get("group")
    if raw is None:
        if "scenarios" not in data:
            raise InputError(source, "scenarios", "missing: name the scenarios to run")
        scenarios = _scenarios(data["scenarios"], source, base_dir, "scenarios")
        return (Group("main", scenarios, tuple(shared)),)
    if "scenarios" in data:
        raise InputError(source, "scenarios", "with [[group]] tables, each group names its own")
    if not isinstance(raw, list) or not raw or not all(isinstance(g, dict) for g in raw):
        raise InputError(source, "group", "must be one or more [[group]] tables")
    groups: list[Group] = []
    for i, table in enumerate(raw):
        where = f"group[{i}]."
        _known_keys(table, _GROUP_KEYS, source, where)
        name = table.get("name", f"group-{i + 1}")
        if not isinstance(name, str) or not name or name in (g.name for g in groups):
            raise InputError(source, f"{where}name", f"must be a unique text, got {name!r}")
        if "scenarios" not in table:
            raise InputError(source, f"{where}scenarios", "missing: name the scenarios to run")
        scenarios = _scenarios(table["scenarios"], source, base_dir, f"{where}scenarios")
        own = _axes(table, source, base_dir, where)
        clash = {a.name for a in own} & {a.name for a in shared}
        if clash:
            raise InputError(
                source, f"{where}axes", f"axis {sorted(clash)[0]!r} is already a shared axis"
            )
        _check_disjoint(shared + own, source, where)
        groups.append(Group(name, scenarios, tuple(shared + own)))
    return tuple(groups)


def _known_keys(data: dict[str, Any], known: set[str], source: str, where: str) -> None:
    for key in data:
        if key not in known:
            raise InputError(source, f"{where}{key}", unknown_key(key, sorted(known)))


def _scenarios(raw: Any, source: str, base_dir: Path, field: str) -> tuple[ScenarioRef, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) and s for s in raw):
        raise InputError(source, field, "must be a non-empty list of scenario names or files")
    refs: list[ScenarioRef] = []
    for i, entry in enumerate(raw):
        for ref in _match_scenarios(entry, source, base_dir, f"{field}[{i}]"):
            if ref.path in (r.path for r in refs):
                raise InputError(source, f"{field}[{i}]", f"{ref.label} is already listed")
            refs.append(ref)
    return tuple(refs)


def _match_scenarios(entry: str, source: str, base_dir: Path, field: str) -> list[ScenarioRef]:
    """A built-in name (pattern) when the entry has no '/' and no '.toml', else file paths."""
    if "/" not in entry and not entry.endswith(".toml"):
        names = fnmatch.filter(library_names(), entry)
        if not names:
            raise InputError(
                source,
                field,
                f"no built-in scenario matches {entry!r}; built-ins: {', '.join(library_names())}",
            )
        return [ScenarioRef(n, LIBRARY_DIR / f"{n}.toml", field) for n in names]
    pattern = entry if Path(entry).is_absolute() else str(base_dir / entry)
    if _GLOB.search(entry):
        paths = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
        if not paths:
            raise InputError(source, field, f"no file matches {entry!r} (from {base_dir})")
    else:
        paths = [Path(pattern)]
        if paths[0].exists():  # a folder, a device, a FIFO: there, but not a file to read
            check_input_file(paths[0], source, field)
        else:
            raise InputError(source, field, f"no such scenario file {entry!r} (from {base_dir})")
    return [ScenarioRef(_label(p, base_dir), p.resolve(), field) for p in paths]


def _label(path: Path, base_dir: Path) -> str:
    try:
        return path.resolve().relative_to(base_dir).as_posix()
    except ValueError:
        return str(path)


def _axes(table: dict[str, Any], source: str, base_dir: Path, where: str) -> list[Axis]:
    axes: list[Axis] = []
    raw_axes = table.get("axes", {})
    if not isinstance(raw_axes, dict):
        raise InputError(source, f"{where}axes", "must be a table of lists")
    for name, values in _flatten(raw_axes, source, f"{where}axes", leaf=list).items():
        field = f"{where}axes.{name}"
        if not values:
            raise InputError(source, field, "must list at least one value")
        axes.append(Axis(name, _plain_values(name, values, source, field, base_dir)))
    raw_variants = table.get("variants", {})
    if not isinstance(raw_variants, dict):
        raise InputError(source, f"{where}variants", "must be a table of [variants.NAME] tables")
    for name, entries in raw_variants.items():
        field = f"{where}variants.{name}"
        if name in (a.name for a in axes):
            raise InputError(source, field, f"{name!r} is also an axis")
        if not isinstance(entries, dict) or not entries:
            raise InputError(source, field, "must be a table of named settings tables")
        values = []
        for label, settings in entries.items():
            if not isinstance(settings, dict):
                raise InputError(source, f"{field}.{label}", "must be a table of settings")
            # Its own name: `where` is the table's prefix, still needed by the next variants
            # table and by the disjointness check (it ran on as "variants.x.avariants.y.b").
            entry = f"{field}.{label}"
            flat = _flatten(settings, source, entry, leaf=None)
            values.append(AxisValue(label, _resolved(flat, source, entry, base_dir), entry))
        axes.append(Axis(name, tuple(values)))
    _check_disjoint(axes, source, where)
    return axes


def _flatten(
    table: dict[str, Any], source: str, field: str, *, leaf: type | None
) -> dict[str, Any]:
    """Nested tables as dotted keys. With leaf=list every leaf must be a list (axis values)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            for sub, v in _flatten(value, source, f"{field}.{key}", leaf=leaf).items():
                flat[f"{key}.{sub}"] = v
        elif leaf is not None and not isinstance(value, leaf):
            raise InputError(source, f"{field}.{key}", f"must be a list of values, got {value!r}")
        else:
            flat[key] = value
    return flat


def _plain_values(
    name: str, values: list[Any], source: str, field: str, base_dir: Path
) -> tuple[AxisValue, ...]:
    out: list[AxisValue] = []
    for i, value in enumerate(values):
        if isinstance(value, dict):
            raise InputError(
                source, f"{field}[{i}]", "a table is not a value here; use [variants.NAME]"
            )
        settings = _resolved({name: value}, source, f"{field}[{i}]", base_dir)
        label = value if isinstance(value, str) else json.dumps(value)
        if label in (v.label for v in out):
            raise InputError(source, f"{field}[{i}]", f"{label} is listed twice")
        out.append(AxisValue(label, settings, f"{field}[{i}]"))
    return tuple(out)


def _resolved(settings: dict[str, Any], source: str, field: str, base_dir: Path) -> dict[str, Any]:
    """Run options checked and their paths made absolute; scenario keys are checked later,
    by the scenario parser, once merged into each scenario."""
    out = dict(settings)
    for key, check in RUN_OPTIONS.items():
        if key in out:
            try:
                out[key] = check(out[key], base_dir)
            except ValueError as exc:
                raise InputError(source, field, f"{key}: {exc}") from None
    return out


def _check_disjoint(axes: list[Axis], source: str, where: str) -> None:
    """Two axes setting the same key would make the later one win silently."""
    owner: dict[str, str] = {}
    for axis in axes:
        for key in {k for v in axis.values for k in v.settings}:
            if key in owner and owner[key] != axis.name:
                raise InputError(
                    source,
                    f"{where}axes",
                    f"axes {owner[key]!r} and {axis.name!r} both set {key!r}",
                )
            owner[key] = axis.name

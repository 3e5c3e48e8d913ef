"""Load and validate cell files (TOML) into CellDesign.

A cell file is a preset name (cellmodel/cells/NAME.toml) or a path. A file may
start from another with a top-level `extends = "NAME_OR_PATH"` and override
any field; sections merge key by key. Without a `[cell] name` of its own, such a
file is named after its file name (my-cell.toml: "my-cell"). Every field is checked for presence,
type and range, and unknown keys are errors: all of them raise
InputError(file, "section.field", reason).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cellmodel.design import (
    Aging,
    Anode,
    AnodePotentialTables,
    Cathode,
    CellDesign,
    Circuit,
    Limits,
    OcvTables,
    Pack,
)
from cellmodel.errors import InputError, unknown_key
from cellmodel.files import TOML_CAP, check_input_file, expand_home, loaded_once, read_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # pyright: ignore[reportMissingImports]

CELLS_DIR = Path(__file__).resolve().parent / "cells"
DEFAULT_CELL = "sisn-lco-2ah"
# The claims cap the anode window; limits.window_top_mAh_g may never exceed it.
WINDOW_CEILING_mAh_g = 2200.0
_MAX_EXTENDS_DEPTH = 8

_Check = Callable[[Any], str | None]


def _num(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> _Check:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"must be a number, got {type(v).__name__} {v!r}"
        if not math.isfinite(v):
            return f"must be finite, got {v!r}"
        below = v <= lo if lo_open else v < lo
        above = v >= hi if hi_open else v > hi
        if below or above:
            lb = "(" if lo_open else "["
            rb = ")" if hi_open else "]"
            return f"{v!r} is out of range {lb}{lo:g}, {hi:g}{rb}"
        return None

    return check


def _int(lo: int, hi: int) -> _Check:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return f"must be an integer, got {type(v).__name__} {v!r}"
        if not lo <= v <= hi:
            return f"{v!r} is out of range [{lo}, {hi}]"
        return None

    return check


def _str(v: Any) -> str | None:
    if not isinstance(v, str) or not v.strip():
        return f"must be a non-empty string, got {v!r}"
    return None


def _cell_name(v: Any) -> str | None:
    """A name every result, summary line and report table shows: one line, at most 64
    characters (a scenario's and a campaign's limit); a newline split the printed summary."""
    problem = _str(v)
    if problem:
        return problem
    if len(v) > 64 or not v.isprintable():
        shown = repr(v) if len(v) <= 80 else f"{v[:60]!r}... ({len(v)} characters)"
        return f"must be one line of at most 64 printable characters, got {shown}"
    return None


def _any_str(v: Any) -> str | None:
    return None if isinstance(v, str) else f"must be a string, got {v!r}"


def _str_list(v: Any) -> str | None:
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        return f"must be a list of non-empty strings (may be empty), got {v!r}"
    return None


def _float_list(lo: float, hi: float) -> _Check:
    def check(v: Any) -> str | None:
        if not isinstance(v, list) or len(v) < 2:
            return f"must be a list of at least 2 numbers, got {v!r}"
        for i, x in enumerate(v):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                return f"item {i} must be a finite number, got {x!r}"
            if not lo <= x <= hi:
                return f"item {i} = {x!r} is out of range [{lo:g}, {hi:g}]"
        return None

    return check


def _composition(v: Any) -> str | None:
    if not isinstance(v, dict) or not v:
        return "must be a table of element = mass fraction, e.g. { Si = 0.8, Sn = 0.2 }"
    for k, x in v.items():
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x <= 1:
            return f"fraction of {k} must be a number in (0, 1], got {x!r}"
    total = sum(float(x) for x in v.values())
    if abs(total - 1.0) > 1e-6:
        return f"mass fractions must sum to 1, got {total:g}"
    return None


_REQ = object()  # marks a field with no default

# section -> field -> (check, default)
# Sizes, capacities, rates, resistances and time constants have plausible physical lower
# bounds, not just "above 0": a 1e-300 value passed the schema and broke everything derived
# from it (a 300-digit firmware key, divisions overflowing). The floors sit far below any
# real cell (README, "Cell files"): 0.1 cm2, 0.01 um particles, 1 um layers, 0.1 g/cm3,
# 10 mAh/g, C/1000, 10 uohm R0 (1 uohm R1, R2), 10 ms time constants.
_SCHEMA: dict[str, dict[str, tuple[_Check, Any]]] = {
    "cell": {
        "name": (_cell_name, _REQ),
        "description": (_any_str, ""),
        "n_series": (_int(1, 100_000), _REQ),
        "facing_area_cm2": (_num(0.1, 1e6), _REQ),
    },
    "anode": {
        "particle_diameter_um": (_num(0.01, 1000), _REQ),
        "composition": (_composition, _REQ),
        "capacity_mAh_g": (_num(10, 4200), _REQ),
        "density_g_cm3": (_num(0.1, 10), _REQ),
        "thickness_um": (_num(1, 5000), _REQ),
        "binder": (_str_list, _REQ),
        "conductive_additive": (_str_list, _REQ),
        "collector_material": (_str, _REQ),
        "collector_thickness_um": (_num(1, 1000), _REQ),
    },
    "cathode": {
        "material": (_str, _REQ),
        "capacity_mAh_g": (_num(10, 1000), _REQ),
        "density_g_cm3": (_num(0.1, 10), _REQ),
        "thickness_um": (_num(1, 5000), _REQ),
        "collector_material": (_str, _REQ),
        "collector_thickness_um": (_num(1, 1000), _REQ),
    },
    "ocv": {
        "soc": (_float_list(0, 1), _REQ),
        "charge_V": (_float_list(0.5, 6.0), _REQ),
        "discharge_V": (_float_list(0.5, 6.0), _REQ),
    },
    "anode_potential": {
        "li_fraction": (_float_list(0, 1), _REQ),
        "lithiation_V": (_float_list(0, 3), _REQ),
        "delithiation_V": (_float_list(0, 3), _REQ),
        "li_fraction_empty": (_num(0, 1), _REQ),
        "li_fraction_full": (_num(0, 1), _REQ),
        "empty_knee_li_fraction": (_num(1e-4, 1), 0.01),
        "empty_rise_V": (_num(0.001, 5), 1.0),
    },
    "limits": {
        "v_max_V": (_num(0.5, 6), _REQ),
        "v_min_V": (_num(0.5, 6), _REQ),
        "v_abuse_max_V": (_num(0.5, 6), _REQ),
        "v_abuse_min_V": (_num(0.5, 6), _REQ),
        "anode_potential_min_V": (_num(0, 1), _REQ),
        "window_top_mAh_g": (_num(1, WINDOW_CEILING_mAh_g), None),
        "charge_temp_min_degC": (_num(-60, 100), _REQ),
        "charge_temp_max_degC": (_num(-60, 100), _REQ),
        "discharge_temp_min_degC": (_num(-60, 100), _REQ),
        "discharge_temp_max_degC": (_num(-60, 100), _REQ),
        "cv_cutoff_C": (_num(0.001, 10), _REQ),
        "max_charge_C": (_num(0.001, 100), _REQ),
        "max_discharge_C": (_num(0.001, 100), _REQ),
        "temp_abuse_max_degC": (_num(0, 150), 80.0),
        "current_abuse_max_C": (_num(0.001, 1000), 20.0),
    },
    "circuit": {
        "r0_ohm": (_num(1e-5, 100), _REQ),
        "r1_ohm": (_num(1e-6, 100), _REQ),
        "tau1_s": (_num(0.01, 1e6), _REQ),
        "r2_ohm": (_num(1e-6, 100), _REQ),
        "tau2_s": (_num(0.01, 1e6), _REQ),
        "ea_r0_J_mol": (_num(0, 200_000), _REQ),
        "ea_r1_J_mol": (_num(0, 200_000), _REQ),
        "ea_r2_J_mol": (_num(0, 200_000), _REQ),
        "soc_curvature": (_num(0, 10), 0.2),
        "low_soc_rise": (_num(0, 100), 1.0),
        "low_soc_width": (_num(0.001, 1), 0.08),
        "dUdT_V_K": (_num(-0.01, 0.01), _REQ),
        "hysteresis_gamma": (_num(0, 10_000), _REQ),
        "coulombic_efficiency": (_num(0.5, 1), _REQ),
        "anode_polarization_share": (_num(0, 1), 0.5),
        "thermal_mass_J_K": (_num(0.01, 1e9), _REQ),
        "h_W_K": (_num(1e-4, 1e6), _REQ),
    },
    "pack": {
        "capacity_spread": (_num(0, 0.5), 0.0),
        "resistance_spread": (_num(0, 0.5), 0.0),
        "soc_spread": (_num(0, 0.5), 0.0),
        "seed": (_int(0, 2**32 - 1), 0),
    },
    "aging": {
        "capacity_retention": (_num(0.3, 1.0), 1.0),
        "resistance_growth": (_num(1.0, 10.0), 1.0),
    },
}
_OPTIONAL_SECTIONS = {"pack", "aging"}


def list_cells() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in CELLS_DIR.glob("*.toml"))


def resolve_cell(
    name_or_path: str | Path,
    beside: Path | None = None,
    source: str | None = None,
    field: str = "cell",
) -> Path:
    """The file a preset name or path names. beside: the file whose folder a relative path
    is read from (a scenario, a campaign file, a cell file that extends another); None: the
    working folder, as on the command line. source and field: where the reference was read
    (a scenario file and its key, a cell file's `extends`; a command-line option and the
    value given, as for --scenario: `--cell: nosuch: no such preset or cell file`), so a
    missing cell is reported there; by default the reference itself. A path that is there
    but is no regular file (a folder, a FIFO, a device) is refused for that, unread
    (files.check_input_file), not reported missing."""
    text = str(name_or_path)
    src = text if source is None else source
    if not text.strip():
        raise InputError(
            "cell" if source is None else source,
            field,
            f"must name a preset or a cell file, got {text!r} (presets: {', '.join(list_cells())})",
        )
    preset = CELLS_DIR / f"{text}.toml"
    if "/" not in text and "\\" not in text and not text.endswith(".toml") and preset.is_file():
        return preset
    path = expand_home(text)
    relative = not path.is_absolute()
    if beside is not None and relative:
        path = beside.parent / path
    try:
        path.stat()
    except FileNotFoundError:
        # Where it was looked for, as the user wrote it: "next to" the file that names it,
        # never the absolute path that file's folder made of it (the user wrote a name).
        looked = f" next to {beside.name}" if beside is not None and relative else ""
        # The field is the value itself when an option named it: not said twice.
        if field == text:
            what = "no such preset or cell file"
        else:
            what = f"no preset named {text!r} and no such file"
        raise InputError(
            src, field, f"{what}{looked} (presets: {', '.join(list_cells())})"
        ) from None
    except OSError:
        pass  # no permission, a loop of links, ...: check_input_file says which
    return check_input_file(path, src, field, TOML_CAP)


def _read_toml(path: Path) -> dict[str, Any]:
    text = read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), "toml", f"not valid TOML: {exc}") from exc


def _merged(path: Path, depth: int = 0) -> dict[str, Any]:
    """The file's tables over those of the file it extends. A file that extends another
    without a `[cell] name` of its own is named after its file, never after its base: a
    result must not call a modified cell by the preset's name."""
    data = _read_toml(path)
    base_ref = data.pop("extends", None)
    if base_ref is None:
        return data
    own = data.get("cell", {})
    if isinstance(own, dict) and "name" not in own:  # (not a table: validation says so)
        data["cell"] = {**own, "name": path.stem[:64]}
    if not isinstance(base_ref, str):
        raise InputError(
            str(path), "extends", f"must name a preset or a cell file, got {base_ref!r}"
        )
    if depth >= _MAX_EXTENDS_DEPTH:
        raise InputError(str(path), "extends", "chain too deep (a cycle?)")
    base = _merged(resolve_cell(base_ref, path, str(path), "extends"), depth + 1)
    for section, values in data.items():
        if isinstance(values, dict) and isinstance(base.get(section), dict):
            base[section] = {**base[section], **values}
        else:
            base[section] = values
    return base


def _validated(src: str, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for section in data:
        if section not in _SCHEMA:
            raise InputError(
                src,
                section,
                unknown_key(section, [*_SCHEMA, "extends"], "section or key"),
            )
    for section, fields in _SCHEMA.items():
        values = data.get(section)
        if values is None:
            if section not in _OPTIONAL_SECTIONS:
                raise InputError(src, section, "missing section")
            values = {}
        if not isinstance(values, dict):
            raise InputError(src, section, "must be a table ([section])")
        for key in values:
            if key not in fields:
                raise InputError(src, f"{section}.{key}", unknown_key(key, fields))
        sec: dict[str, Any] = {}
        for key, (check, default) in fields.items():
            where = f"{section}.{key}"
            if key not in values:
                if default is _REQ:
                    raise InputError(src, where, "missing required field")
                sec[key] = default
                continue
            problem = check(values[key])
            if problem:
                raise InputError(src, where, problem)
            sec[key] = values[key]
        out[section] = sec
    return out


def _table(src: str, where: str, values: list[float], strictly_increasing: bool) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if strictly_increasing and np.any(np.diff(arr) <= 0):
        raise InputError(src, where, "must be strictly increasing")
    return arr


def _cross_checks(src: str, v: dict[str, dict[str, Any]]) -> None:
    ocv = v["ocv"]
    n = len(ocv["soc"])
    for key in ("charge_V", "discharge_V"):
        if len(ocv[key]) != n:
            raise InputError(src, f"ocv.{key}", f"has {len(ocv[key])} items, ocv.soc has {n}")
    if ocv["soc"][0] != 0 or ocv["soc"][-1] != 1:
        raise InputError(src, "ocv.soc", "must run from 0 to 1")
    if any(c < d for c, d in zip(ocv["charge_V"], ocv["discharge_V"], strict=True)):
        raise InputError(src, "ocv.charge_V", "charge branch must not lie below discharge branch")
    for key in ("charge_V", "discharge_V"):
        if np.any(np.diff(ocv[key]) <= 0):
            raise InputError(src, f"ocv.{key}", "must increase strictly with SOC")
    ap = v["anode_potential"]
    m = len(ap["li_fraction"])
    for key in ("lithiation_V", "delithiation_V"):
        if len(ap[key]) != m:
            raise InputError(
                src, f"anode_potential.{key}", f"has {len(ap[key])} items, li_fraction has {m}"
            )
    if ap["li_fraction_full"] <= ap["li_fraction_empty"]:
        raise InputError(src, "anode_potential.li_fraction_full", "must exceed li_fraction_empty")
    # Silicon's potential vs Li falls as it takes lithium, and lithiating runs below
    # delithiating (the hysteresis): a table against either reads plating margins backwards.
    for key in ("lithiation_V", "delithiation_V"):
        if np.any(np.diff(ap[key]) >= 0):
            raise InputError(
                src, f"anode_potential.{key}", "must decrease strictly as li_fraction rises"
            )
    if any(a > b for a, b in zip(ap["lithiation_V"], ap["delithiation_V"], strict=True)):
        raise InputError(
            src, "anode_potential.lithiation_V", "lithiation branch must not lie above delithiation"
        )
    lim = v["limits"]
    order = [
        ("v_abuse_min_V", "v_min_V"),
        ("v_min_V", "v_max_V"),
        ("v_max_V", "v_abuse_max_V"),
        ("charge_temp_min_degC", "charge_temp_max_degC"),
        ("discharge_temp_min_degC", "discharge_temp_max_degC"),
        ("charge_temp_max_degC", "temp_abuse_max_degC"),
        ("discharge_temp_max_degC", "temp_abuse_max_degC"),
        ("max_charge_C", "current_abuse_max_C"),
        ("max_discharge_C", "current_abuse_max_C"),
    ]
    for lo, hi in order:
        if not lim[lo] < lim[hi]:
            raise InputError(src, f"limits.{hi}", f"must exceed limits.{lo} ({lim[lo]:g})")
    top = lim["window_top_mAh_g"]
    if top is not None and top > v["anode"]["capacity_mAh_g"] * 1.5:
        raise InputError(
            src, "limits.window_top_mAh_g", "more than 1.5 x anode.capacity_mAh_g: a typo?"
        )


def design_from_dict(data: dict[str, Any], source: str) -> CellDesign:
    """Validate a parsed cell file (sections as dicts) and build the design."""
    v = _validated(source, data)
    _cross_checks(source, v)
    c, a, k, o, ap, lim, cir, p, ag = (
        v["cell"],
        v["anode"],
        v["cathode"],
        v["ocv"],
        v["anode_potential"],
        v["limits"],
        v["circuit"],
        v["pack"],
        v["aging"],
    )
    limits = dict(lim)
    if limits["window_top_mAh_g"] is None:
        limits["window_top_mAh_g"] = min(float(a["capacity_mAh_g"]), WINDOW_CEILING_mAh_g)
    v["limits"] = limits
    return CellDesign(
        name=c["name"],
        source=source,
        description=c["description"],
        n_series=c["n_series"],
        facing_area_cm2=float(c["facing_area_cm2"]),
        anode=Anode(
            particle_diameter_um=float(a["particle_diameter_um"]),
            composition={str(e): float(x) for e, x in a["composition"].items()},
            capacity_mAh_g=float(a["capacity_mAh_g"]),
            density_g_cm3=float(a["density_g_cm3"]),
            thickness_um=float(a["thickness_um"]),
            binder=tuple(a["binder"]),
            conductive_additive=tuple(a["conductive_additive"]),
            collector_material=a["collector_material"],
            collector_thickness_um=float(a["collector_thickness_um"]),
        ),
        cathode=Cathode(
            material=k["material"],
            capacity_mAh_g=float(k["capacity_mAh_g"]),
            density_g_cm3=float(k["density_g_cm3"]),
            thickness_um=float(k["thickness_um"]),
            collector_material=k["collector_material"],
            collector_thickness_um=float(k["collector_thickness_um"]),
        ),
        ocv=OcvTables(
            soc=_table(source, "ocv.soc", o["soc"], True),
            charge_V=_table(source, "ocv.charge_V", o["charge_V"], False),
            discharge_V=_table(source, "ocv.discharge_V", o["discharge_V"], False),
        ),
        anode_potential=AnodePotentialTables(
            li_fraction=_table(source, "anode_potential.li_fraction", ap["li_fraction"], True),
            lithiation_V=_table(source, "anode_potential.lithiation_V", ap["lithiation_V"], False),
            delithiation_V=_table(
                source, "anode_potential.delithiation_V", ap["delithiation_V"], False
            ),
            li_fraction_empty=float(ap["li_fraction_empty"]),
            li_fraction_full=float(ap["li_fraction_full"]),
            empty_knee_li_fraction=float(ap["empty_knee_li_fraction"]),
            empty_rise_V=float(ap["empty_rise_V"]),
        ),
        limits=Limits(**{key: float(val) for key, val in limits.items()}),
        circuit=Circuit(**{key: float(val) for key, val in cir.items()}),
        pack=Pack(
            capacity_spread=float(p["capacity_spread"]),
            resistance_spread=float(p["resistance_spread"]),
            soc_spread=float(p["soc_spread"]),
            seed=int(p["seed"]),
        ),
        aging=Aging(
            capacity_retention=float(ag["capacity_retention"]),
            resistance_growth=float(ag["resistance_growth"]),
        ),
    )


@loaded_once
def load_cell(
    name_or_path: str | Path = DEFAULT_CELL,
    source: str | None = None,
    field: str = "cell",
    beside: Path | None = None,
) -> CellDesign:
    """A preset name from cellmodel/cells/ or a path to a cell TOML file (relative to the
    folder of `beside` when given, else to the working folder). source and field: where the
    name was read, named when it names no cell (resolve_cell)."""
    path = resolve_cell(name_or_path, beside, source, field)
    return design_from_dict(_merged(path), str(path))

"""Loading cell files: presets, extends, and every kind of bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cellmodel import DEFAULT_CELL, InputError, list_cells, load_cell
from cellmodel.cellfile import CELLS_DIR
from cellmodel.files import read_once

DEFAULT_TEXT = (CELLS_DIR / f"{DEFAULT_CELL}.toml").read_text()


def _write(tmp_path: Path, text: str, name: str = "cell.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _edit(pattern: str, replacement: str) -> str:
    text, count = re.subn(pattern, replacement, DEFAULT_TEXT, count=1, flags=re.MULTILINE)
    assert count == 1, pattern
    return text


def _error(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load_cell(path)
    assert info.value.source == str(path)
    return info.value


def test_presets_listed_and_loadable() -> None:
    names = list_cells()
    assert DEFAULT_CELL in names and "sisn-lco-2ah-4s" in names
    for name in names:
        design = load_cell(name)
        assert design.name == name


def test_pack_preset_extends_default() -> None:
    pack = load_cell("sisn-lco-2ah-4s")
    base = load_cell(DEFAULT_CELL)
    assert pack.n_series == 4
    assert pack.pack.capacity_spread > 0 and pack.pack.soc_spread > 0
    assert pack.capacity_Ah == base.capacity_Ah
    assert pack.circuit == base.circuit


def test_load_by_path_and_extends_with_override(tmp_path: Path) -> None:
    path = _write(
        tmp_path, 'extends = "sisn-lco-2ah"\n[cell]\nname = "mine"\n[anode]\nthickness_um = 40.0\n'
    )
    design = load_cell(path)
    assert design.name == "mine"
    assert design.anode.thickness_um == 40.0
    assert design.anode.capacity_mAh_g == 1667.0
    assert design.source == str(path)


def test_within_read_once_a_cell_file_is_loaded_once(tmp_path: Path) -> None:
    """read_once (a campaign's checks of its runs) keeps what a file loaded as; outside it,
    every load reads the file again."""
    path = _write(tmp_path, 'extends = "sisn-lco-2ah"\n[anode]\nthickness_um = 40.0\n')
    with read_once():
        first = load_cell(path)
        path.write_text('extends = "sisn-lco-2ah"\n[anode]\nthickness_um = 41.0\n')
        assert load_cell(path) is first
    assert load_cell(path).anode.thickness_um == 41.0


def test_window_top_defaults_to_c_n(tmp_path: Path) -> None:
    design = load_cell(_write(tmp_path, _edit(r"^window_top_mAh_g.*\n", "")))
    assert design.limits.window_top_mAh_g == design.c_n_mAh_g


@pytest.mark.parametrize(
    ("pattern", "replacement", "field", "reason"),
    [
        (r"^thickness_um = 30.0.*$", "", "anode.thickness_um", "missing required field"),
        (r"^thickness_um = 30.0", 'thickness_um = "thirty"', "anode.thickness_um", "number"),
        (r"^thickness_um = 30.0", "thickness_um = -3", "anode.thickness_um", "out of range"),
        (r"^n_series = 1", "n_series = 1.5", "cell.n_series", "integer"),
        (r"^n_series = 1", "n_series = true", "cell.n_series", "integer"),
        (r"^binder = .*$", 'binder = "PVA"', "anode.binder", "list"),
        (r"^r0_ohm = .*$", "r0_ohm = 0.025\nr3_ohm = 0.1", "circuit.r3_ohm", "unknown key"),
        (r"^\[pack\]", "[packing]", "packing", "unknown section"),
        (
            r"^\[pack\]",
            "[aging]\ncapacity_retention = 1.1\n[pack]",
            "aging.capacity_retention",
            "out of range",
        ),
        (
            r"^composition = .*$",
            "composition = { Si = 0.8, Sn = 0.3 }",
            "anode.composition",
            "sum to 1",
        ),
        (
            r"^window_top_mAh_g = .*$",
            "window_top_mAh_g = 2300.0",
            "limits.window_top_mAh_g",
            "out of range",
        ),
        (r"^v_min_V = .*$", "v_min_V = 4.3", "limits.v_max_V", "must exceed"),
        (
            r"^empty_rise_V = .*$",
            "empty_rise_V = 0.0",
            "anode_potential.empty_rise_V",
            "out of range",
        ),
        (r"^charge_V    = .*$", "charge_V = [3.2, 3.3]", "ocv.charge_V", "items"),
        (  # silicon's potential rising as it takes lithium: the plating margin read backwards
            r"^lithiation_V   = .*$",
            "lithiation_V = [0.059, 0.083, 0.162, 0.221, 0.282, 0.376, 0.532]",
            "anode_potential.lithiation_V",
            "decrease strictly",
        ),
        (
            r"^lithiation_V   = .*$",
            "lithiation_V = [0.941, 0.737, 0.608, 0.475, 0.372, 0.278, 0.205]",
            "anode_potential.lithiation_V",
            "above delithiation",
        ),
        (
            r"^coulombic_efficiency = .*$",
            "coulombic_efficiency = 1.2",
            "circuit.coulombic_efficiency",
            "out of range",
        ),
        # Printed in every summary line and report table: one line, a scenario name's length.
        (r'^name = "sisn-lco-2ah"$', r'name = "a\\nb"', "cell.name", "one line"),
        (r'^name = "sisn-lco-2ah"$', f'name = "{"x" * 65}"', "cell.name", "at most 64"),
    ],
)
def test_bad_fields_name_file_and_field(
    tmp_path: Path, pattern: str, replacement: str, field: str, reason: str
) -> None:
    err = _error(_write(tmp_path, _edit(pattern, replacement)))
    assert err.field == field
    assert reason in err.reason
    assert str(err).startswith(f"{tmp_path / 'cell.toml'}: {field}: ")


def test_a_file_named_at_length_is_named_by_its_first_64_characters(tmp_path: Path) -> None:
    path = tmp_path / f"{'y' * 80}.toml"
    path.write_text('extends = "sisn-lco-2ah"\n')
    assert load_cell(path).name == "y" * 64


def test_missing_section(tmp_path: Path) -> None:
    start = DEFAULT_TEXT.index("[circuit]")
    end = DEFAULT_TEXT.index("[pack]")
    err = _error(_write(tmp_path, DEFAULT_TEXT[:start] + DEFAULT_TEXT[end:]))
    assert err.field == "circuit" and "missing section" in err.reason


def test_not_toml(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, "[cell\nname = 3"))
    assert err.field == "toml"


def test_unknown_name() -> None:
    with pytest.raises(InputError) as info:
        load_cell("no-such-cell")
    assert "sisn-lco-2ah" in info.value.reason


def test_extends_cycle(tmp_path: Path) -> None:
    _write(tmp_path, 'extends = "b.toml"\n', "a.toml")
    _write(tmp_path, 'extends = "a.toml"\n', "b.toml")
    with pytest.raises(InputError) as info:
        load_cell(tmp_path / "a.toml")
    assert info.value.field == "extends"


def test_a_file_extending_a_preset_without_a_name_is_named_after_its_file(
    tmp_path: Path,
) -> None:
    """A modified cell never reports the preset's name (issue 12): results name the file."""
    thick = _write(
        tmp_path, 'extends = "sisn-lco-2ah"\n[anode]\nthickness_um = 40.0\n', "thick.toml"
    )
    design = load_cell(thick)
    assert design.name == "thick" and design.source == str(thick)
    assert design.anode.thickness_um == 40.0
    # Its own [cell] table without a name keeps the rest of the table.
    hot = _write(tmp_path, 'extends = "thick.toml"\n[cell]\ndescription = "hot"\n', "hot.toml")
    assert (load_cell(hot).name, load_cell(hot).description) == ("hot", "hot")
    named = _write(tmp_path, 'extends = "thick.toml"\n[cell]\nname = "mine"\n', "named.toml")
    assert load_cell(named).name == "mine"

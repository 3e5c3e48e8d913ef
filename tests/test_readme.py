"""The README stays true: its scenario example loads, its commands exist, its presets load."""

from __future__ import annotations

import re
from pathlib import Path

from cellmodel import list_cells, load_cell
from host.cli.main import SUBCOMMANDS, build_parser
from host.scenarios import library_names, load_scenario

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_scenario_example_is_a_valid_scenario(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", README, re.S)
    assert block, "the README shows a scenario file"
    path = tmp_path / "example.toml"
    path.write_text(block.group(1))
    scenario = load_scenario(str(path))
    assert scenario.name == "my-test" and len(scenario.steps) == 11


def test_every_command_in_the_table_exists() -> None:
    named = set(re.findall(r"^\| `sisnbms (\w+)", README, re.M))
    assert named == set(SUBCOMMANDS)
    build_parser()  # every subcommand module imports and registers


def test_named_presets_and_scenarios_exist() -> None:
    for name in re.findall(r"`(sisn-lco-[\w-]+)`", README):
        load_cell(name)
    assert set(re.findall(r"`(sisn-lco-[\w-]+)`", README)) >= set(list_cells())
    listed = README.split("Built-in scenarios", 1)[1].split("\n\n", 1)[0]
    for name in library_names():
        assert f"`{name}`" in listed, name

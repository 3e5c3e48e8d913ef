"""The reference docs stay equal to the code: every CLI option (docs/cli.md), every scenario
key and step kind (docs/scenarios.md), the pytest plugin's options and fixtures (README),
and the configuration's size (docs/internals.md)."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from pathlib import Path

import pytest

from host.cli.main import SUBCOMMANDS, build_parser
from host.scenarios import load_scenario
from host.scenarios.mismatch import RANGES
from host.scenarios.scenario import _INITIAL_KEYS, _TOP_KEYS
from host.scenarios.steps import EXPECTATIONS, FAULT_STEPS, parse_scenario_step
from host.sensors import SensorSpec

DOCS = Path(__file__).resolve().parent.parent / "docs"
README = (DOCS.parent / "README.md").read_text(encoding="utf-8")
CLI_MD = (DOCS / "cli.md").read_text(encoding="utf-8")
SCENARIOS_MD = (DOCS / "scenarios.md").read_text(encoding="utf-8")
COMMON = {"--json", "-v", "--verbose", "-h", "--help"}


def section(text: str, heading: str) -> str:
    """The text under a heading (any level) up to the next heading of that level or higher."""
    m = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    assert m, f"no section {heading!r}"
    level = len(m.group(1))
    rest = text[m.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def first_column(text: str) -> list[str]:
    """The backticked entries of a table's first column."""
    return re.findall(r"^\| `([^`]+)`", text, re.M)


def commands() -> dict[str, argparse.ArgumentParser]:
    """Each command's parser by its name as typed ("micropython build" included)."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for action in subs:
            for name, sub in action.choices.items():
                walk(sub, f"{prefix} {name}".strip())
        if not subs:
            out[prefix] = parser

    walk(build_parser(), "")
    return out


def options(parser: argparse.ArgumentParser) -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        found |= (
            set(action.option_strings) if action.option_strings else {str(action.metavar or "")}
        )
    return found - COMMON


@pytest.mark.parametrize("command", sorted(commands()))
def test_cli_md_lists_every_option_of_every_command(command: str) -> None:
    documented: set[str] = set()
    for entry in first_column(section(CLI_MD, f"sisnbms {command}")):
        documented |= set(entry.split("/"))
    assert documented == options(commands()[command])


def test_cli_md_has_every_command_and_the_common_options() -> None:
    assert {c.split()[0] for c in commands()} == set(SUBCOMMANDS)
    common = {o for e in first_column(section(CLI_MD, "Common options")) for o in e.split("/")}
    assert common >= COMMON | {"--version"}


def test_readme_points_to_the_references() -> None:
    for page in ("docs/cli.md", "docs/scenarios.md", "docs/reliability.md"):
        assert page in README, page
    named = set(re.findall(r"^\| `sisnbms (\w+)", README, re.M))
    assert named == set(SUBCOMMANDS)


def _keys(heading: str) -> set[str]:
    return set(first_column(section(SCENARIOS_MD, heading)))


def test_scenario_keys_documented_are_the_keys_read() -> None:
    assert _keys("Top-level keys") == _TOP_KEYS
    assert _keys("`[initial]`: where the run starts") == _INITIAL_KEYS
    assert _keys("`[mismatch]`: the simulated cell against the BMS's design") == set(RANGES)
    sensors = {f.name for f in fields(SensorSpec)} | {"ideal"}
    assert _keys("`[sensors]`: the measurement chain") == sensors


def test_every_step_kind_is_documented_by_an_example_that_parses() -> None:
    headings = (
        "Fault steps (they act at once)",
        "Expectations (they judge the firmware's replies)",
    )
    examples = [
        text
        for heading in headings
        for entry in first_column(section(SCENARIOS_MD, heading))
        for text in re.split(r"`, `", entry)
    ]
    kinds = {type(parse_scenario_step(text, "docs/scenarios.md", "step")) for text in examples}
    assert kinds == set(FAULT_STEPS) | set(EXPECTATIONS)


def test_the_scenario_example_loads(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", SCENARIOS_MD, re.S)
    assert block
    path = tmp_path / "example.toml"
    path.write_text(block.group(1))
    scenario = load_scenario(str(path))
    assert scenario.name == "cold-charge" and len(scenario.steps) == 5 + 2 * 3


def test_readme_documents_the_pytest_plugin() -> None:
    from host import pytest_plugin

    plugin = section(README, "Your own HIL tests with pytest")
    parser_options = re.findall(r'"(--bms-[a-z-]+)"', Path(pytest_plugin.__file__).read_text())
    assert parser_options and all(f"`{o}" in plugin for o in parser_options)
    fixtures = ("bms", "bms_board", "bms_port", "bms_cell", "cell_model", "run_bms_scenario")
    for name in fixtures:
        assert f"`{name}`" in plugin, name
        assert callable(getattr(pytest_plugin, name))
    assert "pytest-asyncio" in plugin


def test_documented_config_size_is_the_configuration_made() -> None:
    """docs/internals.md states the default CONFIG's size; it is what build_config makes."""
    from cellmodel import load_cell
    from host.boards import load_board
    from host.firmware_config import build_config
    from host.protocol.codec import encode_json

    size = len(encode_json(build_config(load_cell(), load_board("virtual"))))
    internals = (DOCS / "internals.md").read_text(encoding="utf-8")
    m = re.search(r"CONFIG reply is about ([\d.]+) KB", internals)
    assert m and float(m.group(1)) == round(size / 1000, 1)


def test_the_input_size_caps_documented_are_the_caps_checked() -> None:
    """docs/cli.md's "Input file sizes" names each kind's cap as cellmodel.files has it."""
    from cellmodel.files import PROFILE_CAP, TOML_CAP

    rows = section(CLI_MD, "Input file sizes").splitlines()
    toml_row = next(r for r in rows if r.startswith("| cell, board, scenario and campaign"))
    profile_row = next(r for r in rows if r.startswith("| profiles"))
    assert toml_row.split("|")[2].strip() == TOML_CAP.describe()
    assert profile_row.split("|")[2].strip() == PROFILE_CAP.describe()

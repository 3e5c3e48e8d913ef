"""Scenarios: TOML files of experiment, fault and expectation steps, and the built-in library."""

from host.scenarios.scenario import (
    DEFAULT_SCENARIO,
    LIBRARY_DIR,
    InitialState,
    Scenario,
    library_names,
    load_scenario,
    parse_scenario,
)
from host.scenarios.steps import DriveStep, Expectation, ScenarioStep

__all__ = [
    "DEFAULT_SCENARIO",
    "LIBRARY_DIR",
    "DriveStep",
    "Expectation",
    "InitialState",
    "Scenario",
    "ScenarioStep",
    "library_names",
    "load_scenario",
    "parse_scenario",
]

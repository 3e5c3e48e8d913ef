"""Profile CSV loading and its errors (with line numbers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cellmodel import InputError
from cellmodel.profile import load_profile


def test_load_with_comments(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text("# current positive on discharge\ntime_s,current_A\n0,1\n1.5,-2.0\n\n3,0\n")
    prof = load_profile(p)
    assert list(prof.t_s) == [0.0, 1.5, 3.0]
    assert list(prof.current_A) == [1.0, -2.0, 0.0]


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("t,i\n0,1\n1,1\n", "line 1", "header"),
        ("time_s,current_A\n0,1e6\n1,0\n", "line 2", "outside [-1000, 1000] A"),
        ("time_s,current_A\n0,1\n1e12,0\n", "rows", "spans 1e+12 s"),
        ("time_s,current_A\n0,1\ninf,0\n", "line 3", "finite"),
        ("Time [s],Voltage [V]\n0,3.7\n1,3.7\n", "line 1", "current"),
        ("time_s,current_A\n0,1\n1,abc\n", "line 3", "not a number"),
        ("time_s,current_A\n0,1\n1,1,1\n", "line 3", "expected 2 values"),
        ("time_s,current_A\n0,1\n2,1\n2,0\n", "line 4", "does not rise"),
        ("time_s,current_A\n0,nan\n1,1\n", "line 2", "finite"),
        ("time_s,current_A\n0,1\n", "rows", "at least 2"),
        ("", "line 1", "empty"),
        # a column named twice: which one is meant cannot be told
        ("time_s,current_A,current_A\n0,1,5\n1,1,5\n", "line 1", "current column 2 times"),
        ("time_s,current_A,Current [A]\n0,1,5\n1,1,5\n", "line 1", "(current_A, Current [A])"),
        ("time_s,Time [s],current_A\n0,0,1\n1,9,1\n", "line 1", "time column 2 times"),
    ],
)
def test_bad_profiles(tmp_path: Path, text: str, field: str, words: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(InputError) as info:
        load_profile(p)
    assert info.value.source == str(p)
    assert info.value.field == field
    assert words in info.value.reason


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_profile(tmp_path / "none.csv")
    assert info.value.field == "file"


@pytest.mark.parametrize(
    ("text", "currents"),
    [
        ("time_s,current_A\n0,1.5\n10,-2\n", [1.5, -2.0]),
        ("Time [s],Current [A]\n0,1.5\n10,-2\n", [1.5, -2.0]),  # PyBaMM: discharge positive
        # BDF: positive on charge, and a log (row k's current flowed up to t_k)
        ("Test Time / s,Voltage / V,Current / A\n0,3.7,-1.5\n10,3.6,2\n", [-2.0, -2.0]),
        ("# Based on the US06 drive cycle,\n# time [s],current [A]\n0,1.5\n10,-2\n", [1.5, -2.0]),
    ],
)
def test_headers_of_ours_pybamm_and_bdf(tmp_path: Path, text: str, currents: list[float]) -> None:
    p = tmp_path / "p.csv"
    p.write_text(text)
    prof = load_profile(p)
    assert list(prof.t_s) == [0.0, 10.0]
    assert list(prof.current_A) == currents


@pytest.mark.parametrize("period_s", [1.0, 60.0])
def test_a_written_bdf_file_replays_the_run(tmp_path: Path, period_s: float) -> None:
    """Run a written log as a profile from the same start: the same cell, row for row (a
    row's current is the one that flowed up to it; read as holding from it, the replay
    ran a period late: SOC 100 % at 60 s where the run had 98.33 %)."""
    from cellmodel import PackModel, load_cell
    from cellmodel.experiment import parse_experiment
    from cellmodel.simulation import run_experiment

    steps = [
        "Discharge at 1C for 30 minutes",
        "Rest for 10 minutes",
        "Charge at 0.5C until 4.2 V",
        "Hold at 4.2 V until C/20",
    ]
    res = run_experiment(
        PackModel(load_cell(), initial_soc=0.9), parse_experiment(steps), period_s=period_s
    )
    path = res.write(tmp_path / "run.bdf.csv", start_unix_s=0.0)[0]
    replay = run_experiment(
        PackModel(load_cell(), initial_soc=0.9),
        parse_experiment([f"Run {path}"]),
        period_s=period_s,
    )
    assert np.array_equal(replay.t_s, res.t_s)
    assert np.max(np.abs(replay.soc - res.soc)) < 1e-9
    assert np.max(np.abs(replay.v_V - res.v_V)) < 1e-9


def test_power_and_voltage_profiles(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text("Test Time / s,Power / W\n0,0\n1,-5\n2,5\n")
    # BDF power: positive on charge, and each row's flowed up to it
    assert list(load_profile(p, "W").values) == [5.0, -5.0, -5.0]
    p.write_text("time_s,voltage_V\n0,3.7\n1,4.1\n")
    assert list(load_profile(p, "V").values) == [3.7, 4.1]
    with pytest.raises(ValueError, match="voltage profile"):
        _ = load_profile(p, "V").current_A
    p.write_text("time_s,voltage_V\n0,3.7\n1,40\n")
    with pytest.raises(InputError, match="voltage 40 V"):
        load_profile(p, "V")


def test_not_utf8_or_a_folder(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_bytes(b"time_s,current_A\n0,1\n\xff,2\n")
    with pytest.raises(InputError) as info:
        load_profile(p)
    assert info.value.field == "file" and "not UTF-8" in info.value.reason
    with pytest.raises(InputError) as info:
        load_profile(tmp_path)
    assert info.value.field == "file"

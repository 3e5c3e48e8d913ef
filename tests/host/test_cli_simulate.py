"""`sisnbms simulate` in-process: experiments, profiles, pack files, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cellmodel import bdf
from host.cli.main import main


def test_experiment_json_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.bdf.csv"
    code = main(
        [
            "simulate",
            "--experiment",
            "Discharge at 1C until 2.75 V",
            "Rest for 30 minutes",
            "Charge at 0.5C until 4.2 V",
            "Hold at 4.2 V until C/20",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    for key in (
        "duration_s",
        "discharged_Ah",
        "min_cell_voltage_V",
        "max_cell_voltage_V",
        "final_soc",
        "outputs",
    ):
        assert key in summary
    assert summary["discharged_Ah"] == pytest.approx(2.0, rel=0.05)
    assert summary["outputs"] == [str(out)]
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0][bdf.TIME] == "0"
    assert {bdf.VOLTAGE, bdf.CURRENT, bdf.TEMPERATURE, bdf.SOC, bdf.ANODE_UTIL} <= set(rows[0])
    assert float(rows[-1][bdf.TIME]) == pytest.approx(summary["duration_s"])


def test_pack_profile_isothermal_no_hysteresis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prof = tmp_path / "p.csv"
    prof.write_text("time_s,current_A\n0,2\n60,0\n120,-1\n180,0\n")
    out = tmp_path / "pack.bdf.csv"
    code = main(
        [
            "simulate",
            "--cell",
            "sisn-lco-2ah-4s",
            "--profile",
            str(prof),
            "--out",
            str(out),
            "--isothermal",
            "--no-hysteresis",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "wrote" in text
    assert len(list(tmp_path.glob("pack.cell*.bdf.csv"))) == 4
    cell = bdf.read_bdf(tmp_path / "pack.cell2.bdf.csv")
    assert list(cell[bdf.TIME]) == [0, 60, 120, 180]
    assert list(cell[bdf.CURRENT]) == [2, 0, -1, 0]
    assert set(cell[bdf.TEMPERATURE]) == {25.0}
    assert set(cell[bdf.HYSTERESIS]) == {0.0}


def test_bad_experiment_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--experiment", "Rest for 1 s", "Discharge at 1Q until 3 V"]) == 2
    err = capsys.readouterr().err
    assert "step 2" in err and "column 14" in err and "^" in err


def test_bad_profile_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prof = tmp_path / "p.csv"
    prof.write_text("time_s,current_A\n0,1\n5,x\n")
    assert main(["simulate", "--profile", str(prof), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["field"] == "line 3" and out["source"] == str(prof)


def test_bad_cell_and_option_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cell = tmp_path / "c.toml"
    cell.write_text('extends = "sisn-lco-2ah"\n[circuit]\nr9_ohm = 1.0\n')
    assert main(["simulate", "--cell", str(cell), "--experiment", "Rest for 1 s"]) == 2
    assert "circuit.r9_ohm" in capsys.readouterr().err
    assert main(["simulate", "--initial-soc", "1.5", "--experiment", "Rest for 1 s"]) == 2

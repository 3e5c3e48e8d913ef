"""`sisnbms simulate` in-process: experiments, profiles, pack files, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
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
    assert {bdf.VOLTAGE, bdf.CURRENT, bdf.SURFACE_T1, bdf.SOC, bdf.ANODE_UTIL} <= set(rows[0])
    assert float(rows[-1][bdf.TIME]) == pytest.approx(summary["duration_s"])
    # BDF's sign: the 1C discharge is negative in the file, the charge positive.
    assert float(rows[10][bdf.CURRENT]) == pytest.approx(-summary["discharged_Ah"], rel=0.05)
    assert float(rows[-1][bdf.CURRENT]) > 0
    assert summary["event"] is None and summary["cycles"] == 4


def test_pack_profile_isothermal_no_hysteresis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prof = tmp_path / "p.csv"
    prof.write_text("Time [s],Current [A]\n0,2\n60,0\n120,-1\n180,0\n")
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
    # Sampled every second (the default --period) within the profile's rows.
    assert list(cell[bdf.TIME]) == list(range(181))
    assert list(cell[bdf.CURRENT][[0, 59, 60, 119, 120, 179, 180]]) == [-2, -2, 0, 0, 1, 1, 0]
    assert set(cell[bdf.SURFACE_T1]) == {25.0}
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
    cell.write_bytes(b'extends = "sisn-lco-2ah"\n# \xff\xfe\n')
    assert main(["simulate", "--cell", str(cell), "--experiment", "Rest for 1 s"]) == 2
    assert "not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--period", "1e-9"], "--period"),
        (["--period", "inf"], "--period"),
        (["--period", "nan"], "--period"),
        (["--ambient", "nan"], "--ambient"),
        (["--ambient", "1e6"], "--ambient"),
        # negative numbers in forms argparse alone takes for an unknown option
        (["--ambient", "-1e3"], "--ambient"),
        (["--period", "-inf"], "--period"),
        (["--initial-soc", "-.5"], "--initial-soc"),
        (["--cycles", "0"], "--cycles"),
        (["--termination", "80 parsecs"], "--termination"),
        (["--out", "{tmp}/notes.txt"], "--out"),
        (["--out", "{tmp}/run.csv"], "--out"),
        (["--out", "{tmp}"], "--out"),
        (["--out", "{tmp}/run.bdf.csv/x.bdf.csv"], "--out"),
    ],
)
def test_implausible_options_exit_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], field: str
) -> None:
    (tmp_path / "run.bdf.csv").write_text("keep")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out_arg = [] if "--out" in args else ["--out", str(tmp_path / "new.bdf.csv")]
    argv = ["simulate", "--experiment", "Rest for 1 s", "--json", *out_arg, *args]
    assert main(argv) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["field"] == field
    # Nothing written, nothing overwritten.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.bdf.csv"]
    assert (tmp_path / "run.bdf.csv").read_text() == "keep"


@pytest.mark.parametrize("text", ["-1e1", "-10.", "-1E+1", "-10"])
def test_a_negative_option_value_in_any_float_form(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--ambient -1e1` is -10 degC, not a missing value: as float() reads the text."""
    out = tmp_path / "cold.bdf.csv"
    argv = ["simulate", "--experiment", "Rest for 2 s", "--ambient", text, "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    with out.open() as f:
        ambient = {float(row[bdf.AMBIENT]) for row in csv.DictReader(f)}
    assert ambient == {-10.0}


def test_bounded_durations_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--experiment", "Rest for 100000000 hours"]) == 2
    assert "duration" in capsys.readouterr().err
    assert main(["simulate", "--experiment", "Rest for 300 days", "--period", "0.01"]) == 2
    assert "longer period" in capsys.readouterr().err


def test_guard_rail_stops_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hold.bdf.csv"
    argv = ["simulate", "--initial-soc", "0.5", "--experiment", "Hold at 1V for 20 seconds"]
    assert main([*argv, "--out", str(out), "--json"]) == 1
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["event"]["kind"] == "current"
    assert "sanity bound" in captured.err
    assert out.exists()  # what ran before the event is written


def test_cycles_and_termination(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--initial-soc", "1", "--period", "10", "--json", "--experiment"]
    argv += ["Discharge at 1C until 2.75 V", "Charge at 0.5C until 4.2 V", "--cycles", "5"]
    assert main([*argv, "--termination", "98% capacity"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cycles"] == 2 and "capacity" in summary["stopped"]


def test_parquet_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyarrow")
    out = tmp_path / "run.bdf.parquet"
    assert main(["simulate", "--experiment", "Discharge at 1C for 60 s", "--out", str(out)]) == 0
    cols = bdf.read_bdf(out)
    assert len(cols[bdf.TIME]) == 61 and np.allclose(cols[bdf.CURRENT][1:], -1.998, atol=1e-3)


def test_design_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`sisnbms design | head`: the reader goes away; no traceback, no error."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "r, w = os.pipe()\n"
        "os.close(r)\n"  # the reader has gone before anything is written
        "os.dup2(w, 1)\n"
        "from host.cli.main import main\n"
        "sys.exit(main(['design']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_pack_outputs_are_written_all_or_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails midway (disk full on the third file) leaves none of the run's
    files, nor a temporary one, and names --out, not a temporary file."""
    real = bdf.write_bdf
    calls: list[Path] = []

    def failing(path: Path, *args: object, **kwargs: object) -> Path:
        calls.append(Path(path))
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bdf, "write_bdf", failing)
    out = tmp_path / "p.bdf.csv"
    argv = ["simulate", "--cell", "sisn-lco-2ah-4s", "--experiment", "Rest for 10 seconds"]
    assert main([*argv, "--out", str(out), "--json"]) == 2
    error = json.loads(capsys.readouterr().out)
    assert error["field"] == "--out" and "No space left" in error["reason"]
    assert str(out) in error["reason"] and ".tmp" not in error["error"]
    assert len(calls) == 3 and list(tmp_path.iterdir()) == []

"""`sisnbms design` in-process: table, JSON, violated claims and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host.cli.main import main


def test_table_shows_all_claims(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["design"]) == 0
    out = capsys.readouterr().out
    assert "sisn-lco-2ah" in out
    for n in range(1, 14):
        assert f"\n  {n:>5}  satisfied" in out
    assert "13 satisfied, 0 violated" in out


def test_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["design", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cell"] == "sisn-lco-2ah"
    assert set(data["claims"]) == {str(n) for n in range(1, 14)}
    assert all(c["status"] == "satisfied" for c in data["claims"].values())
    assert data["derived"]["capacity_Ah"] == pytest.approx(2.0, abs=0.005)
    assert data["derived"]["volumetric_ratio"] == pytest.approx(4.1, abs=0.01)


def test_ratio_nine_reported_violated_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cell = tmp_path / "ratio9.toml"
    # C_N x D_N = 2000.4; C_P x D_P = 2000.4 / 9 with D_P 3.3.
    cell.write_text(
        'extends = "sisn-lco-2ah"\n[cell]\nname = "ratio9"\n'
        f"[cathode]\ncapacity_mAh_g = {2000.4 / 9 / 3.3!r}\n"
    )
    assert main(["design", "--cell", str(cell), "--json"]) == 0
    claims = json.loads(capsys.readouterr().out)["claims"]
    assert claims["5"]["status"] == "violated"
    assert "9 <= 8: NO" in claims["5"]["detail"]
    assert claims["9"]["status"] == "not_applicable"


def test_bad_file_exit_2_names_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cell = tmp_path / "bad.toml"
    cell.write_text('extends = "sisn-lco-2ah"\n[anode]\nthickness_um = "thick"\n')
    assert main(["design", "--cell", str(cell)]) == 2
    err = capsys.readouterr().err
    assert str(cell) in err and "anode.thickness_um" in err
    assert main(["design", "--cell", str(cell), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["field"] == "anode.thickness_um"


def test_unknown_preset_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["design", "--cell", "no-such-cell"]) == 2
    err = capsys.readouterr().err
    assert "--cell: no-such-cell: no such preset or cell file (presets: sisn-lco-2ah" in err

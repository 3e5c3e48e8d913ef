"""Battery Data Format files: the spec's column table, its current sign, CSV and Parquet.

The column tables below are the Battery Data Format 1.0 README's (Battery Data
Alliance): required, recommended and optional quantities with their preferred
labels. When the Battery Data Alliance's own reader (PyPI `batterydf`, import
name `bdf`) is installed, a written file is also read and validated with it.
"""

from __future__ import annotations

import csv
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from cellmodel import PackModel, bdf, load_cell
from cellmodel.experiment import parse_experiment
from cellmodel.simulation import run_experiment

SPEC_REQUIRED = ("Test Time / s", "Voltage / V", "Current / A")
SPEC_RECOMMENDED = (
    "Unix Time / s",
    "Cycle Count / 1",
    "Step Count / 1",
    "Ambient Temperature / degC",
)
SPEC_OPTIONAL = (
    "Step Index / 1",
    "Charging Capacity / Ah",
    "Discharging Capacity / Ah",
    "Step Capacity / Ah",
    "Net Capacity / Ah",
    "Cumulative Capacity / Ah",
    "Charging Energy / Wh",
    "Discharging Energy / Wh",
    "Step Energy / Wh",
    "Net Energy / Wh",
    "Cumulative Energy / Wh",
    "Power / W",
    "Internal Resistance / ohm",
    "Ambient Pressure / Pa",
    "Applied Pressure / Pa",
    *(f"Surface Temperature T{k} / degC" for k in range(1, 6)),
)
HAVE_BATTERYDF = importlib.util.find_spec("bdf") is not None
HAVE_PYARROW = importlib.util.find_spec("pyarrow") is not None


def _cycle_file(tmp_path: Path, name: str) -> tuple[Path, object]:
    design = load_cell()
    model = PackModel(design, initial_soc=0.5, ambient_degC=20.0)
    exp = parse_experiment(
        [("Discharge at 1C for 10 minutes", "Rest for 2 minutes", "Charge at 0.5C for 10 minutes")]
        * 2
    )
    res = run_experiment(model, exp, period_s=5.0)
    return res.write(tmp_path / name, start_unix_s=1.7e9)[0], res


def test_columns_follow_the_spec_table(tmp_path: Path) -> None:
    path, _ = _cycle_file(tmp_path, "run.bdf.csv")
    with path.open(newline="") as f:
        header = next(csv.reader(f))
    assert header[:3] == ["Test Time / s", "Unix Time / s", "Cycle Count / 1"]
    assert set(SPEC_REQUIRED) <= set(header)
    assert set(SPEC_RECOMMENDED) <= set(header)
    # Every other column is the spec's optional quantity or our own, in "Name / unit" form.
    for name in header:
        assert " / " in name and name.split(" / ")[0].strip() and name.split(" / ")[1].strip()
    ours = [n for n in header if n not in SPEC_REQUIRED + SPEC_RECOMMENDED + SPEC_OPTIONAL]
    assert ours == [bdf.OCV, bdf.SOC, bdf.HYSTERESIS, bdf.ANODE_UTIL, bdf.ANODE_POTENTIAL]


def test_current_is_positive_on_charge_in_the_file(tmp_path: Path) -> None:
    path, res = _cycle_file(tmp_path, "run.bdf.csv")
    cols = bdf.read_bdf(path)
    step = cols["Step Count / 1"]
    # Steps 1 and 4 discharge at 1C, 3 and 6 charge at C/2 (BDF: charge positive).
    q = load_cell().capacity_Ah
    assert np.allclose(cols["Current / A"][(step == 1) | (step == 4)], -q)
    assert np.allclose(cols["Current / A"][(step == 3) | (step == 6)], 0.5 * q)
    assert np.array_equal(cols["Current / A"], -res.current_A)  # type: ignore[attr-defined]
    assert list(np.unique(cols["Cycle Count / 1"])) == [0, 1, 2]
    assert np.all(np.diff(step) >= 0) and step.max() == 6
    assert np.all(cols["Ambient Temperature / degC"] == 20.0)
    assert np.allclose(cols["Unix Time / s"] - cols["Test Time / s"], 1.7e9)
    # Charging capacity grows only while the file's current is positive.
    d_chg = np.diff(cols["Charging Capacity / Ah"])
    assert np.all(d_chg[cols["Current / A"][1:] <= 0] == 0) and d_chg.sum() > 0
    assert cols["Discharging Energy / Wh"][-1] > cols["Discharging Capacity / Ah"][-1] * 3.0


@pytest.mark.skipif(not HAVE_BATTERYDF, reason="batterydf (the BDF reader) is not installed")
@pytest.mark.parametrize("name", ["run.bdf.csv", "run.bdf.parquet"])
def test_the_battery_data_alliance_reader_takes_our_files(tmp_path: Path, name: str) -> None:
    if name.endswith(".parquet") and not HAVE_PYARROW:
        pytest.skip("pyarrow is not installed")
    import bdf as batterydf  # the Battery Data Alliance's package

    path, res = _cycle_file(tmp_path, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no legacy or unknown-label mapping
        df = batterydf.read(str(path))
        report = batterydf.validate(df, raise_on_error=True)
    assert report["ok"] and report["missing"] == []
    assert report["time_stats"]["monotonic"]
    assert set(report["extras"]) == {
        bdf.OCV,
        bdf.SOC,
        bdf.HYSTERESIS,
        bdf.ANODE_UTIL,
        bdf.ANODE_POTENTIAL,
    }
    assert np.allclose(df["Current / A"].to_numpy(), -res.current_A)  # type: ignore[attr-defined]
    assert np.allclose(df["Voltage / V"].to_numpy(), res.v_V[:, 0])  # type: ignore[attr-defined]


@pytest.mark.skipif(not HAVE_PYARROW, reason="pyarrow is not installed")
def test_parquet_and_csv_hold_the_same_numbers(tmp_path: Path) -> None:
    cols = {
        bdf.TIME: [0.0, 1.0, 2.5],
        bdf.CURRENT: [0.0, 2.0, -1.25],
        bdf.VOLTAGE: [4.2, 4.1, 4.15],
    }
    a = bdf.read_bdf(bdf.write_bdf(tmp_path / "x.bdf.csv", cols))
    b = bdf.read_bdf(bdf.write_bdf(tmp_path / "x.bdf.parquet", cols))
    assert list(a) == list(b) == list(cols)
    for name in cols:
        assert np.array_equal(a[name], cols[name]) and np.array_equal(b[name], cols[name])
    assert not list(tmp_path.glob("*.tmp"))


def test_zero_current_is_written_without_a_sign() -> None:
    assert [str(x) for x in bdf.to_bdf_current(np.array([0.0, 1.5, -2.0]))] == [
        "0.0",
        "-1.5",
        "2.0",
    ]


def test_cell_path_bad_names_and_output_checks(tmp_path: Path) -> None:
    assert bdf.cell_path(tmp_path / "run.bdf.csv", 0).name == "run.cell1.bdf.csv"
    assert bdf.cell_path(tmp_path / "run.bdf.parquet", 1).name == "run.cell2.bdf.parquet"
    assert bdf.cell_path(tmp_path / "run.csv", 3).name == "run.cell4.bdf.csv"
    with pytest.raises(ValueError):
        bdf.write_bdf(tmp_path / "y.csv", {"a,b": [1.0]})
    with pytest.raises(bdf.InputError, match="is a folder"):
        bdf.check_output_path(tmp_path, "command line", "--out")
    (tmp_path / "file").write_text("")
    with pytest.raises(bdf.InputError, match="not a folder"):
        bdf.check_output_path(tmp_path / "file" / "run.bdf.csv", "command line", "--out")

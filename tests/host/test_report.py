"""The per-run outputs: .bdf.csv columns and rows, the PNG plot, the progress bar."""

from __future__ import annotations

import csv
import io
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from cellmodel import bdf, load_cell
from host.progress import Progress
from host.protocol.faults import FAULT_BITS
from host.report.bdf_log import bdf_columns, write_bdf_log
from host.report.log import LogRow, RunLog
from host.report.plot import write_plot
from host.report.plot_worker import PlotWorker


def make_log(n_cells: int = 2, n: int = 50, **extra: object) -> RunLog:
    log = RunLog(n_cells)
    for k in range(n):
        more = {key: value(k) if callable(value) else value for key, value in extra.items()}
        log.add(
            LogRow(
                t_s=2.0 * k,
                step=k // 10,
                demand_A=1.0,
                current_A=1.0 if k < 40 else 0.0,
                pack_v_V=7.4,
                cell_v_V=np.full(n_cells, 3.7 - 0.001 * k),
                soc_true=0.5 - 0.001 * k,
                soc_min_true=0.49 - 0.001 * k,
                temp_max_degC=25.0,
                anode_util_max_mAh_g=800.0,
                anode_potential_min_V=0.2,
                h_mean=1.0,
                meas_current_mA=1003,
                fw_soc_pct=50.0 - 0.1 * k + 0.3,
                fw_soc_unc_pct=1.0,
                fw_capacity_mAh=2000,
                fw_anode_util_mAh_g=801.0,
                fw_current_mA=1003,
                chg_on=True,
                dsg_on=k < 40,
                faults=(1 << FAULT_BITS["UV"]) if k >= 40 else 0,
                latched=0,
                warnings=0,
                balance=0,
                link_ok=True,
                fw_ccl_mA=2000 - k,
                fw_dcl_mA=4000,
                fw_anode_potential_mV=180.0,
                **more,  # type: ignore[arg-type]
            )
        )
    return log


def test_bdf_log_has_the_spec_columns_then_true_and_bms(tmp_path: Path) -> None:
    path = write_bdf_log(make_log(), tmp_path / "run.bdf.csv")
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 50
    cols = list(rows[0])
    assert cols == bdf_columns(2)
    # BDF 1.0: the required columns and the recommended ones the log has.
    assert cols[:6] == [
        "Test Time / s",
        "Cycle Count / 1",
        "Step Count / 1",
        "Voltage / V",
        "Current / A",
        "Surface Temperature T1 / degC",
    ]
    for name in (
        "Cell 2 Voltage / V",
        "True SOC / %",
        "BMS SOC / %",
        "SOC Error / %",
        "CHG On / 1",
    ):
        assert name in cols
    assert all(" / " in c for c in cols)
    # Current positive on charge in the file (the log's discharge of 1 A is -1).
    assert float(rows[10]["Current / A"]) == -1.0 and float(rows[45]["Current / A"]) == 0.0
    assert float(rows[10]["Measured Current / mA"]) == -1003
    assert float(rows[10]["SOC Error / %"]) == pytest.approx(0.3, abs=1e-9)
    assert [int(rows[k]["Step Count / 1"]) for k in (0, 9, 10, 49)] == [1, 1, 2, 5]
    assert rows[45]["DSG On / 1"] == "0" and int(rows[45]["Faults / 1"]) == 2
    # the firmware's limits are magnitudes: not turned to BDF's sign as currents are
    assert float(rows[10]["BMS CCL / mA"]) == 1990 and float(rows[10]["BMS DCL / mA"]) == 4000
    assert float(rows[10]["BMS Anode Potential / mV"]) == 180.0


def test_bdf_log_takes_unix_time_cycle_and_ambient_when_the_log_has_them(tmp_path: Path) -> None:
    log = make_log(n_cells=1, n=4, cycle=lambda k: 1 + k // 2, ambient_degC=40.0)
    log.start_unix_s = 1.7e9
    path = write_bdf_log(log, tmp_path / "run.bdf.csv")
    cols = bdf.read_bdf(path)
    assert list(cols)[:3] == ["Test Time / s", "Unix Time / s", "Cycle Count / 1"]
    assert list(cols["Unix Time / s"]) == [1.7e9 + 2.0 * k for k in range(4)]
    assert list(cols["Cycle Count / 1"]) == [1, 1, 2, 2]
    assert set(cols["Ambient Temperature / degC"]) == {40.0}


def test_bdf_log_reads_back_with_the_bdf_package(tmp_path: Path) -> None:
    batterydf = pytest.importorskip("bdf")
    path = write_bdf_log(make_log(), tmp_path / "run.bdf.csv")
    report = batterydf.validate(batterydf.read(str(path)), raise_on_error=True)
    assert report["ok"] and report["missing"] == []


def test_plot_is_a_png_of_sensible_size(tmp_path: Path) -> None:
    design = load_cell()
    path = write_plot(
        make_log(),
        tmp_path / "run.png",
        title="test",
        limits=design.limits,
        fault_names={b: n for n, b in FAULT_BITS.items()},
    )
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert 600 <= width <= 2000 and 800 <= height <= 2000
    assert len(data) > 20_000  # six panels of lines, not an empty canvas


def test_plot_worker_draws_what_write_plot_draws(tmp_path: Path) -> None:
    """The worker process (started before the run, handed the log at its end) writes the
    same PNG, byte for byte, as write_plot in this process."""
    design = load_cell()
    args = {"title": "test", "limits": design.limits, "subtitle": "worker"}
    args["fault_names"] = {b: n for n, b in FAULT_BITS.items()}
    log = make_log(n=80)
    with PlotWorker() as worker:
        worker.draw(log, tmp_path / "worker.png", **args)
        worker.wait()
    here = write_plot(log, tmp_path / "here.png", **args)
    assert (tmp_path / "worker.png").read_bytes() == here.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_plot_worker_draws_in_this_process_while_other_threads_run(tmp_path: Path) -> None:
    """A process with a second thread is not forked (a lock that thread holds would stay held
    in the child): the plot is drawn when the log is handed over, the same PNG."""
    design = load_cell()
    args = {"title": "test", "limits": design.limits, "subtitle": "threads"}
    args["fault_names"] = {b: n for n, b in FAULT_BITS.items()}
    log = make_log(n=80)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with PlotWorker() as worker:
            worker.draw(log, tmp_path / "worker.png", **args)
            assert (tmp_path / "worker.png").exists()  # drawn already: no worker to wait for
            worker.wait()
    finally:
        stop.set()
        other.join()
    here = write_plot(log, tmp_path / "here.png", **args)
    assert (tmp_path / "worker.png").read_bytes() == here.read_bytes()


@pytest.mark.parametrize("other_thread", [False, True])
def test_plot_worker_reports_its_failure_and_writes_nothing(
    tmp_path: Path, other_thread: bool
) -> None:
    """Forked or drawn here (another thread runs), a failed drawing is the same RuntimeError
    from wait() and leaves no file."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    if other_thread:
        other.start()
    try:
        with PlotWorker() as worker:
            worker.draw(make_log(), tmp_path / "run.png", title="t", limits=None, fault_names={})
            with pytest.raises(RuntimeError, match="(?s)plot.*failed.*v_max_V"):
                worker.wait()
    finally:
        stop.set()
        if other_thread:
            other.join()
    assert list(tmp_path.iterdir()) == []


def test_progress_silent_when_disabled_or_not_a_terminal() -> None:
    out = io.StringIO()
    p = Progress(10, console=Console(file=out))  # a StringIO is not a terminal
    p.update(5)
    p.close()
    forced = Progress(10, console=Console(file=out, force_terminal=True), enabled=False)
    forced.update(5)  # --json: disabled even on a terminal
    forced.close()
    assert out.getvalue() == ""


def test_progress_bar_with_eta_on_a_terminal_after_its_delay(monkeypatch) -> None:  # noqa: ANN001
    import host.progress as progress

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    quick = Progress(10, console=console, label="quick")
    quick.update(5)  # within SHOW_AFTER_S: a quick run draws nothing
    quick.close()
    assert out.getvalue() == ""
    monkeypatch.setattr(progress, "SHOW_AFTER_S", 0.0)
    p = Progress(10, console=console, label="run")
    for done in range(1, 6):
        p.update(done, "t=1.00 h")
        time.sleep(progress.UPDATE_EVERY_S)
    p.close()
    text = out.getvalue()
    assert "run" in text and "50%" in text and "ETA" in text and "t=1.00 h" in text
    assert text.endswith("\x1b[2K")  # transient: the bar is erased when the run ends

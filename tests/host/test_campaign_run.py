"""`sisnbms campaign` end to end on local worker processes: the smoke campaign, its files,
resuming, reproducing a run, failures that are rows (not lost campaigns), a killed worker."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from host.campaign import expand, load_spec, run_campaign
from host.campaign.results import is_volatile, read_table
from host.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "examples" / "campaign-smoke.toml"
SMOKE_SCENARIO = REPO / "examples" / "campaign-smoke" / "cycle.toml"


def deterministic(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows by run id without the columns that differ between executions (wall clock, pty,
    link retries under load, the output folder in the reproduce command)."""
    return {
        r["run_id"]: {k: v for k, v in r.items() if not is_volatile(k) and k != "reproduce"}
        for r in rows
    }


@pytest.fixture
def smoke(smoke_local: tuple[Path, dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    return smoke_local


def test_smoke_campaign_on_two_local_workers(smoke: tuple[Path, dict[str, Any]]) -> None:
    out, agg = smoke
    plans = expand(load_spec(SMOKE))
    assert agg["runs"] == agg["executed"] == 12 and agg["resumed"] == 0
    assert agg["executor"] == "2 local worker(s)"
    rows = read_table(Path(agg["table"]))
    assert sorted(r["run_id"] for r in rows) == sorted(p.run_id for p in plans)
    # Every run finished with a verdict of its own (no crash, no timeout); the smoke
    # campaign's expectations are requirements, so it passes as a whole.
    assert {r["status"] for r in rows} == {"passed"}, [r["error"] for r in rows]
    assert agg["exit_code"] == 0 and agg["passed"] == 12
    for r in rows:
        folder = out / "runs" / r["run_id"]
        assert (folder / "scenario.toml").is_file() and (folder / "result.json").is_file()
        assert r["steps"] > 1000 and r["soc_max_error_pct"] is not None
        assert r["attempts"] == 1
    assert agg["pass_rate"]["sensor"]["offset +20 mA"]["runs"] == 3
    assert agg["pass_rate"]["seed"]["2"]["runs"] == 4
    errors = [e["soc_max_error_pct"] for e in agg["worst"]]
    assert errors == sorted(errors, reverse=True)


def test_a_run_reproduces_from_its_folder(
    smoke: tuple[Path, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, agg = smoke
    entry = agg["worst"][0]
    rows = {r["run_id"]: r for r in read_table(Path(agg["table"]))}
    row = rows[entry["run_id"]]
    command = entry["reproduce"].split()
    assert command[:2] == ["sisnbms", "emulate"]
    scenario = command[command.index("--scenario") + 1]
    assert main(["emulate", "--scenario", scenario, "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("soc_max_error_pct", "soc_rmse_pct", "steps", "uncertainty_coverage_pct"):
        assert summary[key] == row[key], key
    assert summary["sensors"]["current_bias_mA"] == row["sensors.current_bias_mA"]
    assert (tmp_path / f"{summary['scenario']}.png").is_file()


def test_resume_keeps_finished_runs(smoke: tuple[Path, dict[str, Any]]) -> None:
    out, agg = smoke
    before = deterministic(read_table(Path(agg["table"])))
    victim = next(iter(before))
    (out / "runs" / victim / "result.json").unlink()
    again = run_campaign(SMOKE, out=out, workers=2, resume=True)
    assert again.aggregate["executed"] == 1 and again.aggregate["resumed"] == 11
    assert deterministic(again.rows) == before


@pytest.mark.parametrize("where", ["a run's result", "the aggregate"])
def test_a_folder_where_a_result_belongs_is_refused_before_any_run(
    smoke: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    """Something made by hand in the output folder where the campaign writes a file: exit 2
    naming it before any run starts (not a run's result lost after it ran, reported as a
    temporary file's name), every kept result as it was."""
    out = tmp_path / "out"
    shutil.copytree(smoke[0], out)
    victim = sorted((out / "runs").iterdir())[0]
    blocked = victim / "result.json" if where == "a run's result" else out / "campaign.json"
    blocked.unlink()
    blocked.mkdir()
    kept = {p: p.read_bytes() for p in (out / "runs").glob("*/result.json") if p.is_file()}
    code = main(["campaign", str(SMOKE), "--workers", "2", "--out", str(out), "--resume"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"--out: {blocked} is a directory where " in err
    assert ".tmp" not in err and "Traceback" not in err
    assert blocked.is_dir()
    assert {p: p.read_bytes() for p in kept} == kept


FAILING = """
name = "failing"
timeout_s = 600
scenarios = ["short.toml"]
[variants.case]
passes = {}
expectation = { steps = ["Rest for 2 minutes", "Expect fault OV"] }
crash = { micropython = "short.toml" }
interpreter = { micropython = "MICROPYTHON" }  # the run option: the same interpreter, named
"""
SHORT = """
name = "short"
sample_period_s = 2.0
steps = ["Discharge at 0.5C for 4 minutes", "Rest for 2 minutes", "Expect no faults"]
[initial]
soc = 0.6
"""


def test_failures_are_rows_worst_first_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], micropython_bin: Path
) -> None:
    (tmp_path / "short.toml").write_text(SHORT)
    spec = tmp_path / "failing.toml"
    spec.write_text(FAILING.replace("MICROPYTHON", str(micropython_bin)))
    out = tmp_path / "out"
    assert main(["campaign", str(spec), "--workers", "2", "--out", str(out), "--json"]) == 1
    agg = json.loads(capsys.readouterr().out)
    cases = ["crash", "expectation", "passes", "interpreter"]
    assert [e["axes"]["case"] for e in agg["worst"]] == cases
    crash, failed, passed, named = agg["worst"]
    assert crash["status"] == "error" and "short.toml" in crash["error"]
    assert failed["status"] == "failed" and failed["reasons"] == ["expectation"]
    assert failed["failed_expectations"] == "Expect fault OV"
    assert passed["status"] == named["status"] == "passed"
    assert named["soc_max_error_pct"] == passed["soc_max_error_pct"]
    assert f"--micropython {micropython_bin}" in named["reproduce"]
    assert "--micropython" not in passed["reproduce"]
    assert agg["not_passed"]["error"] == [crash["run_id"]]
    assert agg["not_passed"]["expectation"] == [failed["run_id"]]
    assert agg["not_passed"]["safety"] == []
    assert len(read_table(Path(agg["table"]))) == 4


UNTIL = """
name = "until"
scenarios = ["short.toml"]
[variants.charge]
none = {}
unreached = { steps = ["Charge at 0.5C for 1 minute or until 5 V", "Rest for 1 minute"] }
reached = { steps = ["Charge at 0.5C for 1 minute or until 3.0 V", "Rest for 1 minute"] }
"""


def test_steps_whose_until_is_not_reached_are_counted_not_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A charge that ends on its time before reaching 5 V is reported in the campaign's
    aggregate and page (which runs, which step), as in one run's summary; the campaign still
    passes. A charge from 3.7 V until 3.0 V reaches its condition at once: not reported."""
    (tmp_path / "short.toml").write_text(SHORT)
    spec = tmp_path / "until.toml"
    spec.write_text(UNTIL)
    out, report = tmp_path / "out", tmp_path / "until.md"
    argv = ["campaign", str(spec), "--workers", "2", "--out", str(out), "--report", str(report)]
    assert main([*argv, "--json"]) == 0
    agg = json.loads(capsys.readouterr().out)
    assert agg["passed"] == 3 and not any(agg["not_passed"].values())
    run_of = {e["axes"]["charge"]: e["run_id"] for e in agg["worst"]}
    unreached = run_of["unreached"]
    assert agg["until_not_reached"] == {
        "runs": 1,
        "run_ids": [unreached],
        "steps": [
            {
                "scenario": "short.toml",
                "step": 0,
                "text": "Charge at 0.5C for 1 minute or until 5 V",
                "until": "5 V",
                "runs": 1,
                "run_ids": [unreached],
            }
        ],
    }
    entry = next(e for e in agg["worst"] if e["run_id"] == unreached)
    assert entry["until_not_reached"] == (
        "step 0 (Charge at 0.5C for 1 minute or until 5 V) at t=60 s: "
        "duration elapsed, 5 V not reached"
    )
    assert json.loads((out / "campaign.json").read_text())["until_not_reached"]["runs"] == 1
    rows = {r["run_id"]: r for r in read_table(Path(agg["table"]))}
    assert [rows[run_of[c]]["until_not_reached_count"] for c in ("none", "reached")] == [0, 0]
    page = report.read_text()
    assert "1 of the 3 runs had one or more" in page
    assert (
        f"| short.toml | 0: Charge at 0.5C for 1 minute or until 5 V | 5 V | 1 | {unreached} |"
        in page
    )


def test_a_good_campaign_checked_up_front_still_runs(tmp_path: Path) -> None:
    """Every run is checked before any starts (its cell files, the BMS's design, its steps
    against the pack): a campaign that passes runs all its runs, from its own folder's
    files, as before."""
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "thin.toml").write_text(
        'extends = "sisn-lco-2ah"\n[anode]\nthickness_um = 40.0\n'
    )
    (tmp_path / "pack.toml").write_text(
        'name = "pack"\nsteps = ["Rest for 10 seconds", "Freeze cell 1 voltage", '
        '"Rest for 10 seconds", "Expect no faults"]\n'
    )
    spec = tmp_path / "tiny.toml"
    spec.write_text(
        'timeout_s = 600\nscenarios = ["pack.toml"]\n[axes]\ncell = ["sisn-lco-2ah", '
        '"cells/thin.toml"]\n[variants.start]\nexact = {}\nnone = { initial = '
        "{ state_file = false } }\n"
    )
    outcome = run_campaign(spec, out=tmp_path / "out", workers=2)
    assert len(outcome.rows) == 4
    assert {r["status"] for r in outcome.rows} == {"passed"}, [r["error"] for r in outcome.rows]
    assert outcome.exit_code == 0


def test_a_run_past_its_timeout_is_a_failed_row(tmp_path: Path) -> None:
    (tmp_path / "long.toml").write_text(
        'name = "long"\nsteps = ["Discharge at 0.05C for 20 hours"]\n[initial]\nsoc = 0.9\n'
    )
    spec = tmp_path / "slow.toml"
    spec.write_text('timeout_s = 1\nscenarios = ["long.toml"]\n')
    outcome = run_campaign(spec, out=tmp_path / "out", workers=1)
    (row,) = outcome.rows
    assert row["status"] == "timeout" and "1 s" in row["error"]
    assert outcome.exit_code == 1 and outcome.aggregate["not_passed"]["timeout"] == [row["run_id"]]


def _run_processes() -> list[psutil.Process]:
    """This test process's campaign workers that are running a board right now: the
    parents of the virtual boards' interpreters."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if any("vboard_rom" in part for part in proc.cmdline()):
                parent = proc.parent()
                if parent is not None:
                    found.append(parent)
        except psutil.Error:
            continue
    return found


def test_a_killed_worker_loses_no_results(tmp_path: Path) -> None:
    spec = tmp_path / "kill.toml"
    spec.write_text(f'scenarios = ["{SMOKE_SCENARIO}"]\n[axes]\nseed = [1, 2, 3, 4]\n')
    outcome: dict[str, Any] = {}

    def campaign() -> None:
        outcome["result"] = run_campaign(spec, out=tmp_path / "out", workers=2)

    thread = threading.Thread(target=campaign)
    thread.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        workers = _run_processes()
        if workers:
            killed = workers[0]
            killed.send_signal(signal.SIGKILL)
        time.sleep(0.05)
    thread.join(timeout=300)
    assert killed is not None, "no worker was seen running a board"
    result = outcome["result"]
    rows = result.rows
    assert len(rows) == 4 and {r["status"] for r in rows} == {"passed"}
    (retried,) = [r for r in rows if r["attempts"] == 2]
    assert "killed by SIGKILL" in retried["retried_after"]
    assert result.exit_code == 0

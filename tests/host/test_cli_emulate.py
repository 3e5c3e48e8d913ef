"""`sisnbms emulate` end to end: --json summary, outputs, exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from host.cli.emulate import RUN_OPTIONS
from host.cli.main import build_parser, main


def test_emulate_json_summary_and_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["emulate", "--scenario", "link-loss", "--out", str(tmp_path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out["expectations"]
    for key in (
        "soc_rmse_pct",
        "soc_max_error_pct",
        "violations",
        "expectations",
        "steps",
        "steps_per_s",
        "outputs",
        "link",
        "tolerances",
    ):
        assert key in out
    assert all(e["passed"] for e in out["expectations"])
    for path in out["outputs"].values():
        assert Path(path).is_file()
    assert json.loads(Path(out["outputs"]["summary"]).read_text())["steps"] == out["steps"]


def test_emulate_reports_the_anode_margin_the_run_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "safety violations: 0" says no limit was crossed; the margin line says by how much
    # the run stayed clear of the window's top and the plating limit
    code = main(["emulate", "--scenario", "link-loss", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    summary = json.loads(next(tmp_path.glob("*.summary.json")).read_text())
    assert code == 0
    line = next(x for x in text.splitlines() if x.strip().startswith("anode margin:"))
    phi_mV = summary["anode_potential_lowest_V"] * 1000
    assert f"at least {phi_mV:.1f} mV (limit 50 mV)" in line, line
    assert f"at most {summary['anode_util_max_mAh_g']:.0f} of " in line, line
    assert phi_mV > 50 and summary["anode_util_max_mAh_g"] <= summary["limits"]["window_top_mAh_g"]


def test_a_step_whose_until_is_not_reached_is_reported_not_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A charge that ends on its time, never reaching its `until`, is a reported fact of the
    run (its summary and printed report say so); the run still passes: the firmware did
    nothing wrong. A step that reached its condition (a charge from 3.7 V until 3.0 V, at
    once) is not listed."""
    scenario = tmp_path / "short-charge.toml"
    scenario.write_text(
        'steps = ["Charge at 0.5C for 2 minutes or until 5 V", '
        '"Charge at 0.5C for 1 minute or until 3.0 V", "Rest for 10 seconds"]\n'
    )
    out = tmp_path / "out"
    code = main(["emulate", "--scenario", str(scenario), "--out", str(out)])
    text = capsys.readouterr().out
    summary = json.loads((out / "short-charge.summary.json").read_text())
    assert code == 0 and summary["passed"], text
    (unmet,) = summary["until_not_reached"]
    assert unmet["step"] == 0 and unmet["until"] == "5 V" and unmet["t_s"] == 120
    assert unmet["ended"] == "duration elapsed, 5 V not reached"
    line = next(x for x in text.splitlines() if "5 V not reached" in x)
    assert "step 0 (Charge at 0.5C for 2 minutes or until 5 V)" in line and "t=120 s" in line


def test_bad_scenario_file_exits_2_naming_file_and_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('steps = ["Rest for 1 minute", "Expect warp drive"]\n')
    code = main(["emulate", "--scenario", str(bad), "--out", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert str(bad) in captured.err and "steps[1]" in captured.err
    assert "Expect warp drive" in json.loads(captured.out)["error"]


def test_unknown_scenario_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", "--scenario", "nope", "--out", str(tmp_path)]) == 2
    assert "full-cycle" in capsys.readouterr().err


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["scenarios"]
    assert "hysteresis-trap" in [entry["name"] for entry in listed]
    assert all(entry["description"] for entry in listed)


def test_list_refuses_every_option_of_a_run() -> None:
    """--list runs nothing: every option of emulate's but the listing's own is one it
    refuses (an option added to emulate and not to RUN_OPTIONS would be ignored)."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    options = {o for a in commands.choices["emulate"]._actions for o in a.option_strings}
    listing = {"-h", "--help", "--list", "--json", "-v", "--verbose"}
    assert options - listing == set(RUN_OPTIONS)


def test_ctrl_c_writes_a_partial_log_and_summary_marked_incomplete(tmp_path: Path) -> None:
    """Ctrl-C in the middle of a run: exit 130, and what ran so far is written and scored,
    marked as interrupted (issue 10 item 12)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    long_run = tmp_path / "long.toml"  # far longer than the test waits, at any speed
    long_run.write_text('name = "long"\nsample_period_s = 1.0\nsteps = ["Rest for 20 days"]\n')
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "host.cli.main",
            "emulate",
            "--scenario",
            str(long_run),
            "--out",
            str(out),
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT at its default in the run, as in a terminal's foreground job: a test runner
        # started in the background by a non-interactive shell ignores SIGINT, and the
        # child would inherit that (Python then never turns SIGINT into KeyboardInterrupt).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # Wait until the loop runs (the board's flash folder exists and it has booted), then
    # interrupt as a terminal would.
    deadline = time.monotonic() + 60
    while not (out / "flash" / "main.py").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)
    os.kill(proc.pid, signal.SIGINT)
    printed, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, f"stderr: {err}\nstdout: {printed[-2000:]}"
    summary = json.loads((out / "long.summary.json").read_text())
    assert summary["interrupted"] and not summary["completed"] and not summary["passed"]
    assert 0 < summary["steps"] < 20 * 86400
    rows = (out / "long.bdf.csv").read_text().splitlines()
    assert len(rows) == summary["steps"] + 2  # the header, the first sample, one per step
    assert "partial log and summary" in err


@pytest.mark.parametrize("pipeline", [True, False])
def test_a_board_that_stops_answering_fails_the_run_with_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pipeline: bool
) -> None:
    """Every frame corrupted: the firmware answers nothing, the run ends (exit 1) with the
    log and the summary written and marked board_stopped, and one JSON object on stdout;
    no traceback. Not pipelined too (a campaign's runs): the same path."""
    from unittest import mock

    from host.emulator import run as run_module

    scenario = tmp_path / "corrupt.toml"
    scenario.write_text(
        'steps = ["Rest for 2 seconds", "Corrupt 100% of frames", "Rest for 20 seconds"]\n'
    )
    real = run_module.run_scenario

    async def run_scenario(*args: object, **kwargs: object) -> object:
        return await real(*args, **{**kwargs, "pipeline": pipeline})  # type: ignore[arg-type]

    argv = ["emulate", "--scenario", str(scenario), "--out", str(tmp_path / "out"), "--json"]
    with mock.patch("host.emulator.run_scenario", run_scenario):
        code = main(argv)
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "Traceback" not in captured.err
    summary = json.loads(captured.out)  # exactly one JSON object
    assert "no reply to 5 samples in a row" in summary["board_stopped"]
    assert not summary["passed"] and not summary["completed"]
    assert any("the board stopped answering" in e for e in summary["events"])
    for path in summary["outputs"].values():
        assert Path(path).is_file()
    written = json.loads(Path(summary["outputs"]["summary"]).read_text())
    assert written["board_stopped"] == summary["board_stopped"]
    main(argv[:-1])  # the human form says so too
    assert "board stopped answering: no reply" in capsys.readouterr().out


def test_a_cell_without_hysteresis_dynamics_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """hysteresis_gamma = 0 (allowed by the cell schema) configures the firmware (its
    slowest branch switch) instead of dividing by zero with the flash half written."""
    (tmp_path / "gamma0.toml").write_text(
        'extends = "sisn-lco-2ah"\n[circuit]\nhysteresis_gamma = 0\n'
    )
    scenario = tmp_path / "g0.toml"
    scenario.write_text('cell = "gamma0.toml"\nsteps = ["Rest for 5 seconds"]\n')
    code = main(["emulate", "--scenario", str(scenario), "--out", str(tmp_path / "o"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["passed"]
    config = json.loads((tmp_path / "o" / "flash" / "bms_config.json").read_text())
    assert config["branch_switch_cpct"] == 5000

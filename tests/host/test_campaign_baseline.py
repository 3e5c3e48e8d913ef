"""A campaign against a baseline: the same runs' results in an earlier campaign folder,
compared run by run (host.campaign.baseline), and `sisnbms campaign --baseline` end to end on
the smoke campaign's real results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from host.campaign.aggregate import aggregate
from host.campaign.baseline import compare
from host.cli.main import main
from tests.host.test_campaign_matrix import run as matrix_run

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "examples" / "campaign-smoke.toml"


def run(run_id: str, **figures: Any) -> dict[str, Any]:
    """A row as make_row writes it (the matrix tests' run, with its group)."""
    return matrix_run(run_id, group="default cells", **figures)


def against(rows: list[dict[str, Any]], base: list[dict[str, Any]]) -> dict[str, Any]:
    return compare(rows, {r["run_id"]: r for r in base}, "base")


def figure(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in result["figures"] if f["figure"] == name)


def test_the_same_results_are_unchanged_and_pass() -> None:
    rows = [run("a"), run("b", soc_max_error_after_calibration_pct=7.0, status="failed")]
    result = against(rows, [dict(r) for r in rows])
    assert result["runs_in_both"] == result["unchanged"] == 2
    assert result["regressions"] == [] and result["improved"] == []
    assert all(f["moved"] == 0 for f in result["figures"])
    soc = figure(result, "soc_max_error_after_calibration_pct")
    assert soc["failing_baseline"] == soc["failing_now"] == 1
    # a matrix with a run that failed before and fails again does not fail the change
    agg = aggregate(rows, campaign={}, axis_names=[], against_baseline=result)
    assert agg["exit_code"] == 0 and agg["failed"] == 1
    assert aggregate(rows, campaign={}, axis_names=[])["exit_code"] == 1


def test_a_requirement_newly_failed_is_a_regression() -> None:
    base = [run("a", soc_max_error_after_calibration_pct=2.95), run("b")]
    rows = [run("a", soc_max_error_after_calibration_pct=3.04), run("b")]
    result = against(rows, base)
    (entry,) = result["regressions"]
    assert entry["run_id"] == "a" and entry["reproduce"] == rows[0]["reproduce"]
    assert entry["what"] == ["soc_max_error_after_calibration_pct 3.04 % fails, was 2.95 %"]
    assert entry["axes"] == {"scenario": "robustness/short-rests.toml", "start": "exact",
                             "perturbation": "nominal"}  # fmt: skip
    soc = figure(result, "soc_max_error_after_calibration_pct")
    assert soc["newly_failing"] == ["a"] and soc["failing_now"] == 1
    assert soc["moved"] == soc["worse"] == 1 and soc["better"] == 0
    assert soc["largest_worse"] == {"run_id": "a", "baseline": 2.95, "now": 3.04,
                                    "by": pytest.approx(0.09)}  # fmt: skip
    assert result["unchanged"] == 1
    agg = aggregate(rows, campaign={}, axis_names=[], against_baseline=result)
    assert agg["exit_code"] == 1 and agg["against_baseline"] is result


def test_moves_inside_a_verdict_are_counted_not_failed() -> None:
    """Worse but still met, or worse while failing already: moved, no regression. The
    coverage's worst end is the low one: a drop is worse, a rise better."""
    base = [
        run("a", soc_max_error_after_calibration_pct=1.0, uncertainty_coverage_pct=99.0),
        run("b", soc_max_error_after_calibration_pct=9.0),
        run("c", uncertainty_coverage_pct=96.0),
    ]
    rows = [
        run("a", soc_max_error_after_calibration_pct=2.5, uncertainty_coverage_pct=96.0),
        run("b", soc_max_error_after_calibration_pct=12.0),
        run("c", uncertainty_coverage_pct=99.5),
    ]
    result = against(rows, base)
    assert result["regressions"] == [] and result["unchanged"] == 0
    soc = figure(result, "soc_max_error_after_calibration_pct")
    assert (soc["moved"], soc["worse"], soc["better"]) == (2, 2, 0)
    assert soc["largest_worse"]["run_id"] == "b"  # 3 % worse against a's 1.5 %
    cov = figure(result, "uncertainty_coverage_pct")
    assert (cov["moved"], cov["worse"], cov["better"]) == (2, 1, 1)
    assert cov["largest_worse"]["run_id"] == "a"


def test_below_the_pages_precision_nothing_moved() -> None:
    base = [run("a", soc_max_error_after_calibration_pct=1.001)]
    rows = [run("a", soc_max_error_after_calibration_pct=1.004)]
    result = against(rows, base)
    assert result["unchanged"] == 1
    assert figure(result, "soc_max_error_after_calibration_pct")["moved"] == 0


def test_a_new_reason_for_failing_is_a_regression_even_if_the_run_failed_before() -> None:
    base = [run("a", status="failed", reasons="expectation")]
    rows = [run("a", status="failed", reasons="expectation,safety", violations_count=1)]
    (entry,) = against(rows, base)["regressions"]
    assert entry["what"] == [
        "failed (safety), was failed",
        "violations_count 1 fails, was 0",
    ]


def test_a_figure_gone_where_its_absence_fails_is_a_regression() -> None:
    """No coverage figure at all (a run that crashed before a reply) fails the requirement;
    no error after calibration (a run without a rest) is not judged."""
    base = [run("a"), run("b")]
    rows = [
        run("a", status="error", reasons="error", uncertainty_coverage_pct=None),
        run("b", soc_max_error_after_calibration_pct=None),
    ]
    result = against(rows, base)
    (entry,) = result["regressions"]
    assert entry["run_id"] == "a"
    assert entry["what"] == [
        "error (error), was passed",
        "uncertainty_coverage_pct none fails, was 99 %",
    ]
    assert figure(result, "soc_max_error_after_calibration_pct")["moved"] == 1


def test_improvements_and_runs_the_baseline_does_not_hold() -> None:
    base = [
        run("a", status="failed", reasons="expectation", soc_max_error_after_calibration_pct=4.0)
    ]
    rows = [
        run("a", soc_max_error_after_calibration_pct=2.0),
        run("new-pass"),
        run("new-fail", status="failed", reasons="expectation"),
    ]
    result = against(rows, base)
    assert result["improved"] == ["a"]
    assert figure(result, "soc_max_error_after_calibration_pct")["newly_met"] == ["a"]
    assert result["not_in_baseline"] == ["new-pass", "new-fail"]
    (entry,) = result["regressions"]
    assert entry["run_id"] == "new-fail"
    assert entry["what"] == ["failed (expectation), not in the baseline"]


@pytest.fixture
def two_folders(smoke_local: tuple[Path, dict[str, Any]], tmp_path: Path) -> tuple[Path, Path]:
    """The smoke campaign's real results twice: a baseline and a folder to resume."""
    base, out = tmp_path / "base", tmp_path / "out"
    shutil.copytree(smoke_local[0], base)
    shutil.copytree(smoke_local[0], out)
    return base, out


def resume(out: Path, *options: str) -> int:
    return main(["campaign", str(SMOKE), "--out", str(out), "--resume", *options])


def test_the_same_campaign_against_its_own_results(
    two_folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, out = two_folders
    report = out.parent / "page.md"
    assert resume(out, "--baseline", str(base), "--report", str(report)) == 0
    text = capsys.readouterr().out
    assert f"against the baseline {base}: 12 run(s) in both, 12 unchanged, 0 not in it" in text
    assert "worse than the baseline: 0 run(s)" in text
    saved = json.loads((out / "campaign.json").read_text())
    assert saved["against_baseline"]["unchanged"] == 12 and saved["exit_code"] == 0
    page = report.read_text()
    assert f"--baseline {base} --report" in page
    assert "## Against the baseline" in page and "Runs worse than in the baseline: 0." in page


def test_a_run_that_got_worse_fails_the_campaign_and_is_named(
    two_folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """One run's result made worse in the folder resumed (a violation, as a changed firmware
    would have it): exit 1, the run named with what got worse and how to reproduce it."""
    base, out = two_folders
    victim = sorted((out / "runs").iterdir())[0]
    result = json.loads((victim / "result.json").read_text())
    result["status"] = "failed"
    result["summary"]["violations"] = ["t=100 s: true anode potential 41 mV below 50 mV"]
    (victim / "result.json").write_text(json.dumps(result))
    assert resume(out, "--baseline", str(base), "--json") == 1
    agg = json.loads(capsys.readouterr().out)
    (entry,) = agg["against_baseline"]["regressions"]
    assert entry["run_id"] == victim.name
    assert entry["what"] == ["failed (safety), was passed", "violations_count 1 fails, was 0"]
    assert entry["reproduce"].startswith("sisnbms emulate --scenario ")
    assert agg["against_baseline"]["unchanged"] == 11
    assert resume(out, "--baseline", str(base)) == 1
    text = capsys.readouterr().out
    assert "worse than the baseline: 1 run(s)" in text
    assert f"      {victim.name} scenario=campaign-smoke/cycle.toml seed=" in text
    assert "        failed (safety), was passed\n        violations_count 1 fails, was 0\n" in text
    assert "violations_count: failing 0 -> 1, moved in 1 run(s) (1 worse, 0 better)" in text
    # without the baseline the same folder fails on the run alone, as before
    assert resume(out, "--json") == 1


def test_a_bad_baseline_is_refused_before_anything_is_written(
    two_folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = two_folders
    other = tmp_path / "other"
    (other / "runs" / "0123456789ab").mkdir(parents=True)
    cases = {
        str(tmp_path / "nosuch"): "no such folder (an earlier campaign's --out)",
        str(SMOKE): "not a folder (an earlier campaign's --out)",
        str(tmp_path): "no runs/ folder in it: not a campaign's --out folder",
        str(other): "holds a result of none of this campaign's 12 runs",
    }
    fresh = tmp_path / "fresh"
    for path, why in cases.items():
        code = main(["campaign", str(SMOKE), "--out", str(fresh), "--baseline", path])
        err = capsys.readouterr().err
        assert code == 2, path
        assert f"--baseline: {path}: {why}" in err, err
        assert "Traceback" not in err
        assert not fresh.exists()

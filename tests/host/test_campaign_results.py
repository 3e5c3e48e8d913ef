"""A campaign's verdict and files: worst runs first, pass rates, the table, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from host.campaign.aggregate import aggregate
from host.campaign.results import read_table, write_table
from host.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "examples" / "campaign-smoke.toml"
SHORT = """
name = "short"
seed = 1
steps = ["Rest for 1 minute"]
[initial]
soc = 0.5
"""


def aggregate_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return aggregate(rows, campaign={}, axis_names=["seed"])


def row(run_id: str, status: str, reasons: str, soc: float | None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "group": "main",
        "axis.scenario": "s",
        "axis.seed": run_id[-1],
        "status": status,
        "reasons": reasons,
        "soc_max_error_pct": soc,
        "reproduce": f"sisnbms emulate --scenario runs/{run_id}/scenario.toml",
    }


def test_worst_runs_first_and_pass_rates() -> None:
    rows = [
        row("ok1", "passed", "", 0.5),
        row("ok2", "passed", "", 2.5),
        row("exp1", "failed", "expectation", 1.0),
        row("exp2", "failed", "expectation", 9.0),
        row("crash1", "error", "error", None),
        row("unsafe1", "failed", "safety,expectation", 0.1),
    ]
    agg = aggregate_of(rows)
    worst_first = ["unsafe1", "crash1", "exp2", "exp1", "ok2", "ok1"]
    assert [e["run_id"] for e in agg["worst"]] == worst_first
    assert agg["exit_code"] == 1
    assert agg["not_passed"]["safety"] == ["unsafe1"]
    assert agg["not_passed"]["expectation"] == ["unsafe1", "exp2", "exp1"]
    assert agg["not_passed"]["error"] == ["crash1"]
    assert agg["pass_rate"]["seed"] == {
        "1": {  # ok1, exp1, crash1, unsafe1
            "runs": 4,
            "passed": 1,
            "safety_violations": 1,
            "soc_max_error_pct": 1.0,
            "pass_rate": 0.25,
        },
        "2": {
            "runs": 2,
            "passed": 1,
            "safety_violations": 0,
            "soc_max_error_pct": 9.0,
            "pass_rate": 0.5,
        },
    }
    assert agg["pass_rate"]["scenario"]["s"]["runs"] == 6
    assert aggregate_of([row("ok1", "passed", "", 0.5)])["exit_code"] == 0


def test_steps_whose_until_is_not_reached_are_grouped_by_step_not_by_index() -> None:
    """The same step cut short in two runs is one step of two runs; another step at the same
    index (a variant with steps of its own) is a step of its own; a run with none, or with
    no summary (a crash), is not counted; and none of it fails a run."""
    charge = {"step": 1, "text": "Charge at 1C for 1 hour or until 4.2 V", "until": "4.2 V"}
    hold = {"step": 1, "text": "Hold at 4.2 V for 1 minute or until C/20", "until": "C/20"}
    rows = [row(i, "passed", "", soc) for i, soc in (("a1", 0.5), ("b2", 2.0), ("c1", 1.0))]
    rows.append(row("crash2", "error", "error", None))
    unmet = {"a1": [charge], "b2": [charge], "c1": [hold]}
    agg = aggregate(rows, campaign={}, axis_names=["seed"], until_not_reached=unmet)
    assert agg["until_not_reached"] == {
        "runs": 3,
        "run_ids": ["b2", "c1", "a1"],  # worst first, as everywhere in the aggregate
        "steps": [
            {**charge, "scenario": "s", "runs": 2, "run_ids": ["b2", "a1"]},
            {**hold, "scenario": "s", "runs": 1, "run_ids": ["c1"]},
        ],
    }
    assert agg["not_passed"]["error"] == ["crash2"] and agg["passed"] == 3


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_has_one_row_per_run_with_every_column(tmp_path: Path, fmt: str) -> None:
    rows = [
        {"run_id": "a", "soc_max_error_pct": 1.5, "link.retries": 0, "passed": True},
        {"run_id": "b", "soc_max_error_pct": None, "error": "Boom", "passed": False},
    ]
    path = write_table(rows, tmp_path, fmt)
    assert path.name == f"runs.{fmt}"
    back = read_table(path)
    assert [r["run_id"] for r in back] == ["a", "b"]
    assert set(back[0]) == {"run_id", "soc_max_error_pct", "link.retries", "passed", "error"}
    if fmt == "parquet":
        assert back[0]["soc_max_error_pct"] == 1.5 and back[1]["error"] == "Boom"
    assert not [p for p in tmp_path.iterdir() if p.name != path.name]  # nothing half-written


def test_bad_campaign_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "s.toml").write_text(SHORT)
    spec = tmp_path / "bad.toml"
    spec.write_text('scenarios = ["s.toml"]\n[axes]\nseed = [-1]\n')
    out = tmp_path / "out"
    assert main(["campaign", str(spec), "--out", str(out), "--json"]) == 2
    captured = capsys.readouterr()
    assert str(spec) in captured.err and "seed" in captured.err
    assert "Traceback" not in captured.err
    error = json.loads(captured.out)  # the campaign file's field, the scenario's check's reason
    assert error["field"] == "axes.seed[0]" and error["reason"].startswith("seed: ")
    assert not out.exists()
    good = tmp_path / "good.toml"
    good.write_text('scenarios = ["s.toml"]\n')
    for flags in (["--workers", "0"], ["--scheduler", "no-port-here"], ["--target", "z80"]):
        assert main(["campaign", str(good), "--out", str(out), *flags]) == 2
        assert flags[0] in capsys.readouterr().err
        assert not out.exists()
    # a chip target not built on this machine: said before any run, naming the build command
    monkeypatch.setenv("SISNBMS_MICROPYTHON_CACHE", str(tmp_path / "no-builds"))
    assert main(["campaign", str(good), "--out", str(out), "--target", "unix-32"]) == 2
    err = capsys.readouterr().err
    assert "--target" in err and "sisnbms micropython build --target unix-32" in err, err
    assert "Traceback" not in err and not out.exists()


def test_readme_shows_the_smoke_campaign() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"```toml\n{SMOKE.read_text(encoding='utf-8')}```" in readme


def test_bench_hook_reports_runs_per_second_by_workers() -> None:
    """The figures `sisnbms bench` reports (numbers are not asserted: performance goals live
    in the bench)."""
    from host.campaign.bench import campaign_runs_per_s_by_workers

    result = campaign_runs_per_s_by_workers((1,), quick=True)
    assert result["by_workers"]["1"]["runs"] == 4
    assert result["by_workers"]["1"]["passed"] == 4
    assert result["runs_per_s"]["1"] > 0
    assert "ratio_2_over_1" not in result  # only with both counts

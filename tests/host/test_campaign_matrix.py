"""The robustness matrix page: issue 9's requirements judged over every run of a campaign."""

from __future__ import annotations

from typing import Any

from host.campaign.matrix import DIAGNOSTICS, judge, render


def run(run_id: str, **figures: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run_id,
        "reproduce": f"sisnbms emulate --scenario runs/{run_id}/scenario.toml",
        "status": "passed",
        "scenario": "short-rests",
        "axis.scenario": "robustness/short-rests.toml",
        "cell": "sisn-lco-2ah",
        "axis.start": "exact",
        "axis.perturbation": "nominal",
        "violations_count": 0,
        "discharge_blocked_s": 0.0,
        "soc_max_error_after_calibration_pct": 1.0,
        "uncertainty_coverage_pct": 99.0,
        "capacity_error_pct": 0.5,
        "run_wall_s": 10.0,
    }
    row.update(figures)
    return row


def by_figure(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["figure"]: v for v in judge(rows)}


def test_every_requirement_is_met_by_good_runs() -> None:
    rows = [run("a"), run("b", scenario="full-cycles", capacity_error_pct=-2.9)]
    verdicts = by_figure(rows)
    assert all(v["passed"] for v in verdicts.values()), verdicts
    assert verdicts["capacity_error_pct"]["runs"] == 1  # two full cycles only


def test_one_bad_run_fails_its_requirement_and_is_named() -> None:
    rows = [
        run("a"),
        run("b", soc_max_error_after_calibration_pct=3.0),  # the bound is strict: below 3 %
        run("c", uncertainty_coverage_pct=94.9, violations_count=2),
        run("d", discharge_blocked_s=4.0),
    ]
    v = by_figure(rows)
    assert not v["soc_max_error_after_calibration_pct"]["passed"]
    assert v["soc_max_error_after_calibration_pct"]["worst_run"] == "b"
    assert not v["uncertainty_coverage_pct"]["passed"]
    assert v["uncertainty_coverage_pct"]["worst_value"] == 94.9
    assert not v["violations_count"]["passed"] and v["violations_count"]["worst_run"] == "c"
    assert not v["discharge_blocked_s"]["passed"] and v["discharge_blocked_s"]["failing"] == 1


def test_missing_figures() -> None:
    """No coverage figure (no reply) fails; no error after calibration (no rest or full
    charge in the run) is not judged; a run that crashed shows in the table."""
    rows = [run("a", uncertainty_coverage_pct=None, soc_max_error_after_calibration_pct=None)]
    v = by_figure(rows)
    assert not v["uncertainty_coverage_pct"]["passed"]
    assert v["soc_max_error_after_calibration_pct"]["runs"] == 0
    page = render(
        [*rows, run("e", status="error", **{"axis.start": "none"})],
        {"pass_rate": {"scenario": {}, "start": {}, "perturbation": {}}, "passed": 0},
        "sisnbms campaign x.toml --report y.md",
    )
    assert "**error**" in page and "| nominal |" in page and "`sisnbms campaign x.toml" in page
    # no full-cycle run: the capacity requirement is not judged, not failed
    assert "after two full cycles | 0 | 0 | - | not judged |" in page
    assert "| 2 | 1 | 99 % | **no** |" in page  # a coverage the error run never showed: not met


def test_diagnostics_are_judged_apart_from_the_requirements() -> None:
    """The error after learning is a diagnostic: judged like a requirement, shown in its own
    table, and it never decides whether a requirement is met."""
    rows = [
        run("a", soc_max_error_after_calibration_pct=8.0, soc_max_error_after_learning_pct=1.1),
        run("b", soc_max_error_after_learning_pct=3.5),
        run("c", soc_max_error_after_learning_pct=None),  # never learned: not judged
    ]
    diag = judge(rows, DIAGNOSTICS)[0]
    assert diag["figure"] == "soc_max_error_after_learning_pct"
    assert diag["runs"] == 2 and diag["failing"] == 1 and diag["worst_run"] == "b"
    assert "soc_max_error_after_learning_pct" not in by_figure(rows)
    assert not by_figure(rows)["soc_max_error_after_calibration_pct"]["passed"]
    page = render(rows, {"pass_rate": {"scenario": {}}, "passed": 3}, "c")
    requirements, diagnostics = page.split("## Diagnostics (not requirements)")
    assert "first learned capacity" not in requirements
    assert "| 2 | 1 | 3.5 % | **no** |" in diagnostics.split("## Runs")[0]


def test_the_closest_approach_to_the_anode_limits_is_a_diagnostic() -> None:
    """How far each run stayed from the plating limit and the window top (no tolerance),
    the worst run named; a run from before the figures existed is not judged."""
    rows = [
        run("a", anode_potential_margin_mV=31.9, anode_util_margin_pct=0.7),
        run("b", anode_potential_margin_mV=12.5, anode_util_margin_pct=2.0),
        run("c", anode_potential_margin_mV=-0.4, anode_util_margin_pct=-0.2),
        run("d"),
    ]
    diag = {v["figure"]: v for v in judge(rows, DIAGNOSTICS)}
    phi, util = diag["anode_potential_margin_mV"], diag["anode_util_margin_pct"]
    assert phi["runs"] == 3 and phi["failing"] == 1 and phi["worst_run"] == "c"
    assert phi["worst_value"] == -0.4
    assert util["runs"] == 3 and util["failing"] == 1 and util["worst_value"] == -0.2
    assert by_figure(rows)["violations_count"]["passed"]  # a diagnostic decides nothing


def test_every_run_has_its_own_cell_when_more_axes_vary() -> None:
    """A campaign with seeds besides the perturbation and the start (the Monte-Carlo probe):
    the seed labels the rows too, so each of the 2 x 2 x 2 runs is shown, not the last of
    each seed's pair; the axes the page is laid out by alone leave the rows as they were."""
    rows = [
        run(
            f"{seed}{start}{pert}",
            **{"axis.seed": seed, "axis.start": start, "axis.perturbation": pert},
            soc_max_error_after_calibration_pct=float(seed) + (0.1 if start == "none" else 0.0),
        )
        for seed in ("1", "2")
        for start in ("exact", "none")
        for pert in ("drawn", "nominal")
    ]
    page = render(rows, {"pass_rate": {"seed": {}, "start": {}, "perturbation": {}}}, "cmd")
    assert "| perturbation · seed \\ start | exact | none |" in page
    for pert in ("drawn", "nominal"):
        assert f"| {pert} · 1 | 1.00 / 99 | 1.10 / 99 |" in page
        assert f"| {pert} · 2 | 2.00 / 99 | 2.10 / 99 |" in page
    two = render(rows[:4:2] + rows[1:4:2], {"pass_rate": {"start": {}, "perturbation": {}}}, "c")
    assert "| perturbation \\ start | exact | none |" in two


def test_an_axis_another_group_sets_is_a_dash_in_the_runs_that_lack_it() -> None:
    """Two groups on one scenario and cell, one of them with an axis of its own (the
    Monte-Carlo probe's sample periods): its runs are labelled by it and the group, the
    other group's by "-" there (their scenario's own value), never by "None"."""
    own = run("a", group="fresh", **{"axis.seed": "1"})
    periods = [
        run(f"p{t}", group="periods", **{"axis.seed": "4", "axis.sample_period_s": t},
            soc_max_error_after_calibration_pct=float(t))
        for t in ("1.0", "10.0", "5.0")
    ]  # fmt: skip
    page = render(
        [own, *periods], {"pass_rate": {"seed": {}, "start": {}, "perturbation": {}}}, "cmd"
    )
    assert "| perturbation · seed · sample_period_s · group \\ start | exact |" in page
    assert "| nominal · 1 · - · fresh | 1.00 / 99 |" in page
    assert "| nominal · 4 · 5.0 · periods | 5.00 / 99 |" in page
    # the periods in order of their values, not of their text
    rows = [line for line in page.splitlines() if "· periods |" in line]
    assert [r.split(" · ")[2] for r in rows] == ["1.0", "5.0", "10.0"], rows
    assert "None" not in page.split("## Runs")[1]


def test_the_page_names_its_campaign() -> None:
    """The title and first paragraph say which campaign the page is of (every campaign's
    --report writes one), not "Robustness matrix" for all of them."""
    rows = [run("a")]
    page = render(
        rows,
        {"pass_rate": {"scenario": {}}, "campaign": "monte-carlo", "description": "Drawn."},
        "sisnbms campaign mc.toml --report mc.md",
    )
    head = page.split("## Requirements")[0].splitlines()
    assert head[0] == "# Campaign monte-carlo: runs against issue 9's requirements"
    assert head[2] == "Drawn." and head[4].startswith("Regenerate with `sisnbms campaign mc.toml")
    assert render(rows, {"pass_rate": {"scenario": {}}}, "c").startswith("# Campaign: runs")

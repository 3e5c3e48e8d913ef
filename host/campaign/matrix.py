"""A campaign's results as a robustness matrix (Markdown): the safety requirements of issue 9
judged over every run, then one table per scenario (and cell), perturbations by starts.

`sisnbms campaign SPEC --report FILE.md` writes it after the runs (with --resume, from the
results already there). Each requirement is a bound written before anything was measured;
the page gives the worst run against each, with the command that reproduces it. Diagnostics
are judged the same way and shown apart: they are not requirements, they tell why one fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Scenarios that run two full cycles: learned capacity is judged on them.
TWO_FULL_CYCLES = ("full-cycles", "aged-80", "pack-4s")


@dataclass(frozen=True)
class Requirement:
    text: str
    figure: str  # the run's summary figure judged
    ok: Callable[[float], bool]
    worst: str  # "max" or "min": which end of the figure is worst
    unit: str
    applies: Callable[[dict[str, Any]], bool] = lambda row: True
    # A run without the figure: not met (nothing shows it), or not judged (a run with no
    # calibration opportunity has no error after calibration).
    missing_fails: bool = True

    def verdict(self, row: dict[str, Any]) -> bool | None:
        """True when the run meets it, False when it fails it, None when it is not judged
        on this run (does not apply, or no figure where a missing one is not a failure)."""
        if not self.applies(row):
            return None
        value = number(row.get(self.figure))
        if value is None:
            return False if self.missing_fails else None
        return self.ok(value)

    def badness(self, value: float) -> float:
        """How far `value` lies towards the figure's worst end: larger is worse (the size of
        an error, the shortfall of a coverage or a margin)."""
        return abs(value) if self.worst == "max" else -value


REQUIREMENTS = (
    Requirement(
        "no violation of the true anode window, anode potential (50 mV), cell voltage or "
        "temperature limits beyond the scorer's tolerances",
        "violations_count", lambda v: v == 0, "max", "",
    ),
    Requirement(
        "no discharge blocked while every cell's true SOC is above 5 %",
        "discharge_blocked_s", lambda v: v == 0, "max", "s",
    ),
    Requirement(
        "SOC max error below 3 % within 8 h after a 30-minute rest or a full charge",
        "soc_max_error_after_calibration_pct", lambda v: v < 3.0, "max", "%",
        missing_fails=False,
    ),
    Requirement(
        "the reported uncertainty covers the true error in at least 95 % of samples",
        "uncertainty_coverage_pct", lambda v: v >= 95.0, "min", "%",
    ),
    Requirement(
        "learned capacity within 3 % of the truth after two full cycles",
        "capacity_error_pct", lambda v: abs(v) < 3.0, "max", "%",
        applies=lambda row: row.get("scenario") in TWO_FULL_CYCLES,
    ),
)  # fmt: skip

DIAGNOSTICS = (
    Requirement(
        "SOC max error below 3 % within 8 h after a 30-minute rest or a full charge, from the "
        "BMS's first learned capacity on",
        "soc_max_error_after_learning_pct", lambda v: v < 3.0, "max", "%",
        missing_fails=False,
    ),
    # The closest approach to the anode's limits, with no tolerance: the requirement says
    # they were not crossed, these say by how much they were missed
    Requirement(
        "the true anode potential's margin above its plating limit (the lowest over the "
        "run, no tolerance) stays above 0",
        "anode_potential_margin_mV", lambda v: v > 0.0, "min", "mV",
        missing_fails=False,
    ),
    Requirement(
        "the fullest cell's true utilization's margin below the window top (% of the top, "
        "no tolerance) stays at or above 0",
        "anode_util_margin_pct", lambda v: v >= 0.0, "min", "%",
        missing_fails=False,
    ),
)  # fmt: skip


def number(value: Any) -> float | None:
    """A row's figure as a float; None for none, a flag, text or a value that is not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def judge(
    rows: list[dict[str, Any]], requirements: tuple[Requirement, ...] = REQUIREMENTS
) -> list[dict[str, Any]]:
    """Each requirement over the runs it applies to: passed, runs judged, failing runs, the
    worst run (and a run without the figure fails: nothing shows it met)."""
    out = []
    for req in requirements:
        verdicts = [(r, req.verdict(r)) for r in rows]
        judged = [r for r, ok in verdicts if ok is not None]
        failing = [r for r, ok in verdicts if ok is False]
        values = [(r, number(r.get(req.figure))) for r in judged]
        known = [(r, v) for r, v in values if v is not None]
        worst = max(known, key=lambda rv: req.badness(rv[1])) if known else None
        out.append(
            {
                "requirement": req.text,
                "figure": req.figure,
                "passed": bool(judged) and not failing,
                "runs": len(judged),
                "failing": len(failing),
                "worst_value": None if worst is None else worst[1],
                "worst_run": None if worst is None else worst[0]["run_id"],
                "worst_reproduce": None if worst is None else worst[0]["reproduce"],
                "unit": req.unit,
            }
        )
    return out


def _cell(row: dict[str, Any] | None) -> str:
    """One run in a table cell: error after calibration, coverage, violations, blocked time."""
    if row is None:
        return ""
    if row.get("status") in ("error", "timeout"):
        return f"**{row['status']}**"
    err = number(row.get("soc_max_error_after_calibration_pct"))
    cov = number(row.get("uncertainty_coverage_pct"))
    text = f"{err:.2f} / {cov:.0f}" if err is not None and cov is not None else "-"
    marks = []
    if row.get("violations_count"):
        marks.append(f"**{row['violations_count']} viol.**")
    if number(row.get("discharge_blocked_s")):
        marks.append(f"**blocked {row['discharge_blocked_s']:.0f} s**")
    if row.get("status") != "passed":
        marks.append("FAIL")
    return " ".join([text, *marks])


def _tables(rows: list[dict[str, Any]], row_axis: str, col_axis: str) -> list[str]:
    lines: list[str] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((str(r.get("axis.scenario")), str(r.get("cell"))), []).append(r)
    for (scenario, cell), members in sorted(groups.items()):
        # every other axis that varies here labels the rows too (a campaign's seeds, its
        # groups): one cell per run, none hidden behind another with the same two labels
        varying = [
            k
            for k in dict.fromkeys(k for r in members for k in r if k.startswith("axis."))
            if k not in (f"axis.{row_axis}", f"axis.{col_axis}", "axis.scenario", "axis.cell")
            and len({str(r.get(k)) for r in members}) > 1
        ]
        if len({str(r.get("group")) for r in members}) > 1:
            varying.append("group")
        keys = [f"axis.{row_axis}", *varying]

        def label(r: dict[str, Any], keys: list[str] = keys) -> str:
            # "-": an axis of another group, which this run's group does not set (the
            # scenario's own value), not a value named None
            return " · ".join("-" if r.get(k) is None else str(r.get(k)) for k in keys)

        cols = sorted({str(r.get(f"axis.{col_axis}")) for r in members})
        rws = sorted({label(r) for r in members}, key=_in_order)
        index = {(label(r), str(r.get(f"axis.{col_axis}"))): r for r in members}
        head = " · ".join(k.removeprefix("axis.") for k in keys)
        lines += [f"### {scenario} on {cell}", "", f"| {head} \\ {col_axis} | "
                  + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]  # fmt: skip
        for rv in rws:
            lines.append(
                f"| {rv} | " + " | ".join(_cell(index.get((rv, cv))) for cv in cols) + " |"
            )
        lines.append("")
    return lines


def _in_order(label: str) -> list[tuple[int, float, str]]:
    """A row label's sort key: its numbers by value (1.0, 5.0, 10.0 s; not 1.0, 10.0, 5.0),
    the rest as text."""
    key = []
    for part in label.split(" · "):
        try:
            key.append((0, float(part), ""))
        except ValueError:
            key.append((1, 0.0, part))
    return key


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} minutes"


def render(rows: list[dict[str, Any]], aggregate: dict[str, Any], command: str) -> str:
    """The matrix page. Rows are the campaign's rows (host.campaign.results)."""
    axes = [a for a in aggregate.get("pass_rate", {}) if a != "scenario"]
    row_axis = "perturbation" if "perturbation" in axes else (axes[0] if axes else "scenario")
    col_axis = "start" if "start" in axes else (axes[1] if len(axes) > 1 else row_axis)
    verdicts = judge(rows)
    diagnostics = judge(rows, DIAGNOSTICS)
    run_time = sum(number(r.get("run_wall_s")) or 0.0 for r in rows)
    # Every campaign's page is a matrix of its runs against issue 9's requirements; its
    # title says which campaign (a Monte-Carlo page titled "Robustness matrix" read as the
    # matrix itself).
    name = aggregate.get("campaign")
    title = f"Campaign {name}" if name else "Campaign"
    description = aggregate.get("description")
    lines = [
        f"# {title}: runs against issue 9's requirements",
        "",
        *([str(description), ""] if description else []),
        f"Regenerate with `{command}`. {len(rows)} closed-loop runs of the real firmware "
        f"({_duration(run_time)} of run time on the machine that wrote this page): "
        f"{aggregate.get('passed')} passed, {aggregate.get('failed')} failed, "
        f"{aggregate.get('errors')} errors, {aggregate.get('timeouts')} timeouts.",
        "",
        "## Requirements over the whole matrix (issue 9)",
        "",
        "| requirement | runs | failing | worst | met |",
        "|---|---|---|---|---|",
    ]
    lines += _verdict_rows(verdicts)
    lines += ["", "The worst run of each requirement reproduces with:", ""]
    lines += [f"- {v['figure']}: `{v['worst_reproduce']}`" for v in verdicts if v["worst_run"]]
    lines += [
        "",
        "## Diagnostics (not requirements)",
        "",
        "The same figures over part of each run (runs without such a part are not judged):",
        "",
        "| figure | runs | failing | worst | met |",
        "|---|---|---|---|---|",
        *_verdict_rows(diagnostics),
    ]
    if "against_baseline" in aggregate:
        lines += ["", *_against_baseline(aggregate["against_baseline"])]
    lines += ["", *_until_not_reached(aggregate.get("until_not_reached"), len(rows))]
    lines += [
        "",
        "## Runs",
        "",
        "Each cell: the SOC max error after calibration (%) / the uncertainty coverage (%),",
        "then any safety violations, blocked discharge time, and FAIL when the run's own",
        "expectations or checks failed.",
        "",
        *_tables(rows, row_axis, col_axis),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _against_baseline(against: dict[str, Any]) -> list[str]:
    """The runs against their results in an earlier campaign's folder (host.campaign.
    baseline): each requirement's and diagnostic's failing count then and now, what moved,
    and every run that got worse."""
    lines = [
        "## Against the baseline",
        "",
        f"Each run against its result in `{against['baseline']}` (the same inputs, an earlier "
        f"campaign): {against['runs_in_both']} runs in both, {against['unchanged']} unchanged "
        f"at two decimals, {len(against['not_in_baseline'])} not in the baseline.",
        "",
        "| requirement or diagnostic | failing (baseline -> now) | newly failing | newly met "
        "| moved (worse / better) | the most worse |",
        "|---|---|---|---|---|---|",
    ]
    for fig in against["figures"]:
        largest = fig["largest_worse"]
        most = "" if not largest else (
            f"{with_unit(largest['baseline'], fig['unit'])} -> "
            f"{with_unit(largest['now'], fig['unit'])} (`{largest['run_id']}`)"
        )  # fmt: skip
        lines.append(
            f"| {fig['figure']} ({fig['kind']}) | {fig['failing_baseline']} -> "
            f"{fig['failing_now']} | {len(fig['newly_failing'])} | {len(fig['newly_met'])} | "
            f"{fig['moved']} ({fig['worse']} / {fig['better']}) | {most} |"
        )
    regressions = against["regressions"]
    lines += ["", f"Runs worse than in the baseline: {len(regressions)}."]
    if regressions:
        lines.append("")
    for entry in regressions:
        axes = ", ".join(f"{k} {v}" for k, v in entry["axes"].items())
        lines.append(
            f"- `{entry['run_id']}` ({axes}): {'; '.join(entry['what'])}. `{entry['reproduce']}`"
        )
    return lines


def with_unit(value: float, unit: str) -> str:
    """A figure as the page shows it: `2.95 %`, `18.1 mV`, a count alone."""
    return f"{value:g} {unit}" if unit else f"{value:g}"


def _until_not_reached(unmet: dict[str, Any] | None, runs: int) -> list[str]:
    """The steps whose time ran out before their `until` (host.campaign.aggregate): reported,
    not failed, as for a single run."""
    lines = [
        "## Steps that ended on time before their `until` (reported, not failed)",
        "",
        "A step whose time limit or duration ran out before its `until` condition ends there",
        "and the run goes on, as on a cycler; the requirements above judge what the BMS did.",
        "",
    ]
    if not unmet or not unmet.get("runs"):
        return [*lines, f"None in the {runs} runs."]
    lines += [
        f"{unmet['runs']} of the {runs} runs had one or more:",
        "",
        "| scenario | step | until | runs | e.g. run |",
        "|---|---|---|---|---|",
    ]
    for step in unmet["steps"]:
        lines.append(
            f"| {step['scenario']} | {step['step']}: {step['text']} | {step['until']} | "
            f"{step['runs']} | {step['run_ids'][0]} |"
        )
    return lines


def _verdict_rows(verdicts: list[dict[str, Any]]) -> list[str]:
    lines = []
    for v in verdicts:
        worst = "-" if v["worst_value"] is None else f"{v['worst_value']:.4g} {v['unit']}"
        # no run it applies to (a campaign without two full cycles): neither met nor failed
        met = "yes" if v["passed"] else ("**no**" if v["runs"] else "not judged")
        lines.append(f"| {v['requirement']} | {v['runs']} | {v['failing']} | {worst} | {met} |")
    return lines

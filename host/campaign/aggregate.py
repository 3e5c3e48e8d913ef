"""The campaign's verdict: worst runs first, pass rates per axis value, the exit code.

Ranking, worst first: a safety violation; then a run with no verdict (a crash or a
timeout: nothing shows it safe); then a failed expectation; then anything else not
passed (stopped at max_duration_s); then the passed runs. Within each rank, the
largest SOC error first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from host.campaign.execute import PASSED

_RANK = {"safety": 0, "error": 1, "timeout": 1, "expectation": 2, "incomplete": 3}
_PASSED_RANK = 4
# The figures each run's entry shows, beside its identity and verdict.
RUN_FIGURES = (
    "soc_max_error_pct",
    "soc_max_error_t_s",
    "soc_rmse_pct",
    "soc_max_error_after_calibration_pct",
    "soc_max_error_after_learning_pct",
    "uncertainty_coverage_pct",
    "capacity_error_pct",
    "discharge_blocked_s",
)


def row_reasons(row: Mapping[str, Any]) -> list[str]:
    """Why a row's run did not pass, from its `reasons` column (comma-separated; a CSV
    table gives it back as text, an empty one as nothing)."""
    return [r for r in str(row.get("reasons") or "").split(",") if r]


def _rank(row: dict[str, Any]) -> tuple[int, float]:
    reasons = row_reasons(row)
    rank = min((_RANK.get(r, 3) for r in reasons), default=_PASSED_RANK)
    if row["status"] == PASSED:
        rank = _PASSED_RANK
    soc = row.get("soc_max_error_pct")
    return rank, -(soc if isinstance(soc, (int, float)) else float("inf"))


def _entry(row: dict[str, Any], axis_names: list[str]) -> dict[str, Any]:
    entry = {
        "run_id": row["run_id"],
        "group": row["group"],
        "scenario": row["axis.scenario"],
        "axes": {n: row[f"axis.{n}"] for n in axis_names if f"axis.{n}" in row},
        "status": row["status"],
        "reasons": row_reasons(row),
        "error": row.get("error"),
        "violations": row.get("violations_text"),
        "failed_expectations": row.get("expectations_failed_text"),
        "until_not_reached": row.get("until_not_reached_text"),
    }
    entry.update({k: row.get(k) for k in RUN_FIGURES if row.get(k) is not None})
    entry["reproduce"] = row["reproduce"]
    return entry


def _pass_rates(rows: list[dict[str, Any]], axis_names: list[str]) -> dict[str, Any]:
    """For each axis (the scenario first) and each of its values: runs, passed, rate, the
    largest SOC error, and how many runs violated safety."""
    out: dict[str, Any] = {}
    for axis in ["scenario", *axis_names]:
        per: dict[str, dict[str, Any]] = {}
        for row in rows:
            label = row.get(f"axis.{axis}")
            if label is None:
                continue  # an axis of another group
            cell = per.setdefault(
                str(label),
                {"runs": 0, "passed": 0, "safety_violations": 0, "soc_max_error_pct": None},
            )
            cell["runs"] += 1
            cell["passed"] += row["status"] == PASSED
            cell["safety_violations"] += "safety" in str(row.get("reasons") or "")
            soc = row.get("soc_max_error_pct")
            if isinstance(soc, (int, float)):
                worst = cell["soc_max_error_pct"]
                cell["soc_max_error_pct"] = soc if worst is None else max(worst, soc)
        for cell in per.values():
            cell["pass_rate"] = round(cell["passed"] / cell["runs"], 4)
        out[axis] = per
    return out


def _until_not_reached(
    ordered: list[dict[str, Any]], unmet: Mapping[str, Sequence[Mapping[str, Any]]]
) -> dict[str, Any]:
    """The steps whose `until` condition was not reached, their time limit or duration having
    run out first: reported, not failed, as in one run's summary. How many runs had any
    (which, worst first), and each such step (its scenario, index, text and condition) with
    the runs it happened in (a step is known by its text too: a variant that replaces the
    scenario's steps puts another step at the same index)."""
    run_ids = [r["run_id"] for r in ordered if unmet.get(r["run_id"])]
    steps: dict[tuple[str, int, str], dict[str, Any]] = {}
    for row in ordered:
        for u in unmet.get(row["run_id"], ()):
            key = (str(row["axis.scenario"]), int(u["step"]), str(u["text"]))
            step = steps.setdefault(
                key,
                {"scenario": key[0], "step": key[1], "text": key[2], "until": u.get("until"),
                 "runs": 0, "run_ids": []},
            )  # fmt: skip
            step["runs"] += 1
            step["run_ids"].append(row["run_id"])
    return {
        "runs": len(run_ids),
        "run_ids": run_ids,
        "steps": [steps[k] for k in sorted(steps)],
    }


def aggregate(
    rows: list[dict[str, Any]],
    *,
    campaign: dict[str, Any],
    axis_names: list[str],
    until_not_reached: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    against_baseline: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The aggregate JSON: counts, exit code, runs worst first, pass rates per axis value,
    and the steps whose `until` was not reached (`until_not_reached`: by run id, each run's
    summary's list; a row holds only their count and text).

    With a comparison against a baseline (host.campaign.baseline.compare) the aggregate
    holds it, and the exit code judges the change instead of the runs alone: 1 when any
    run regressed, 0 otherwise (a matrix with runs that failed before fails again without
    failing the change)."""
    ordered = sorted(rows, key=_rank)
    not_passed = [r for r in ordered if r["status"] != PASSED]

    def having(reason: str) -> list[str]:
        return [r["run_id"] for r in ordered if reason in row_reasons(r)]

    # run counts by status; "errors" and "timeouts" in the plural, so that a campaign's
    # result never has an "error" key, which marks a command's error object (docs/cli.md)
    statuses = (
        ("passed", "passed"),
        ("failed", "failed"),
        ("errors", "error"),
        ("timeouts", "timeout"),
    )
    counts = {key: sum(r["status"] == s for r in rows) for key, s in statuses}
    failed = against_baseline["regressions"] if against_baseline is not None else not_passed
    return {
        **campaign,
        "runs": len(rows),
        **counts,
        "exit_code": 1 if failed else 0,
        "not_passed": {
            "safety": having("safety"),
            "expectation": having("expectation"),
            "incomplete": having("incomplete"),
            "error": having("error"),
            "timeout": having("timeout"),
        },
        "until_not_reached": _until_not_reached(ordered, until_not_reached or {}),
        "worst": [_entry(r, axis_names) for r in ordered],
        "pass_rate": _pass_rates(rows, axis_names),
        **({} if against_baseline is None else {"against_baseline": against_baseline}),
    }

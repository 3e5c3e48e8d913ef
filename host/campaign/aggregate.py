"""The campaign's verdict: worst runs first, pass rates per axis value, the exit code.

Ranking, worst first: a safety violation; then a run with no verdict (a crash or a
timeout: nothing shows it safe); then a failed expectation; then anything else not
passed (stopped at max_duration_s); then the passed runs. Within each rank, the
largest SOC error first.
"""

from __future__ import annotations

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


def _rank(row: dict[str, Any]) -> tuple[int, float]:
    reasons = [r for r in str(row.get("reasons") or "").split(",") if r]
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
        "reasons": [r for r in str(row.get("reasons") or "").split(",") if r],
        "error": row.get("error"),
        "violations": row.get("violations_text"),
        "failed_expectations": row.get("expectations_failed_text"),
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


def aggregate(
    rows: list[dict[str, Any]], *, campaign: dict[str, Any], axis_names: list[str]
) -> dict[str, Any]:
    """The aggregate JSON: counts, exit code, runs worst first, pass rates per axis value."""
    ordered = sorted(rows, key=_rank)
    not_passed = [r for r in ordered if r["status"] != PASSED]

    def having(reason: str) -> list[str]:
        return [r["run_id"] for r in ordered if reason in str(r.get("reasons") or "").split(",")]

    # run counts by status; "errors" and "timeouts" in the plural, so that a campaign's
    # result never has an "error" key, which marks a command's error object (docs/cli.md)
    statuses = (
        ("passed", "passed"),
        ("failed", "failed"),
        ("errors", "error"),
        ("timeouts", "timeout"),
    )
    counts = {key: sum(r["status"] == s for r in rows) for key, s in statuses}
    return {
        **campaign,
        "runs": len(rows),
        **counts,
        "exit_code": 1 if not_passed else 0,
        "not_passed": {
            "safety": having("safety"),
            "expectation": having("expectation"),
            "incomplete": having("incomplete"),
            "error": having("error"),
            "timeout": having("timeout"),
        },
        "worst": [_entry(r, axis_names) for r in ordered],
        "pass_rate": _pass_rates(rows, axis_names),
    }

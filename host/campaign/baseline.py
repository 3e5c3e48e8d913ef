"""A campaign's runs against a baseline: the same runs' results in an earlier campaign folder.

A run's id is the hash of everything the run depends on besides sisnbms itself
(host.campaign.expand.run_id), so the same campaign file run by an earlier firmware or host
left its result under the same id. `sisnbms campaign SPEC --baseline DIR` compares each run
with its namesake there and says what the change moved, run by run (with --resume and a
finished --out, nothing runs again: the two folders are compared).

Compared per run: its status and its reasons for not passing, and each of the matrix's
requirements and diagnostics (host.campaign.matrix) the run is judged by. A run regressed
when it is worse than in the baseline on any of them: a reason it did not have (safety,
expectation, incomplete, error, timeout), or a requirement or diagnostic it met or was not
judged by and now fails. A run the baseline does not hold regressed when it did not pass
(nothing shows it failed before). Figures are compared at the page's precision (two
decimals): moved, and which way, towards the figure's worst end or away from it.

Pure logic: rows in (host.campaign.results.make_row), a plain-data comparison out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cellmodel.errors import InputError
from cellmodel.files import expand_home
from host.campaign.aggregate import row_reasons
from host.campaign.execute import PASSED
from host.campaign.expand import RunPlan
from host.campaign.matrix import DIAGNOSTICS, REQUIREMENTS, Requirement, number, with_unit
from host.campaign.results import RUNS_DIR, load_result

DECIMALS = 2  # the page's precision: a figure moved when it moved at two decimals
FIELD = "--baseline"


def load_baseline(path: str | Path, plans: list[RunPlan]) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The baseline's folder and its results of this campaign's runs, by run id; InputError
    (before any run) when the folder is not a campaign's output or holds none of these runs."""
    folder = expand_home(path)
    if not folder.is_dir():
        why = "no such folder" if not folder.exists() else "not a folder"
        raise InputError(FIELD, str(path), f"{why} (an earlier campaign's --out)")
    if not (folder / RUNS_DIR).is_dir():
        raise InputError(
            FIELD, str(path), f"no {RUNS_DIR}/ folder in it: not a campaign's --out folder"
        )
    found = {p.run_id: load_result(folder, p.run_id) for p in plans}
    results = {run_id: r for run_id, r in found.items() if r is not None}
    if not results:
        raise InputError(
            FIELD,
            str(path),
            f"holds a result of none of this campaign's {len(plans)} runs (the ids are "
            "the hashes of each run's inputs: another campaign file's folder, or runs of "
            "other inputs)",
        )
    return folder, results


def _reasons(row: dict[str, Any]) -> set[str]:
    return set(row_reasons(row))


def _rounded(row: dict[str, Any], figure: str) -> float | None:
    value = number(row.get(figure))
    return None if value is None else round(value, DECIMALS)


def _run_changes(
    new: dict[str, Any], base: dict[str, Any], checks: tuple[Requirement, ...]
) -> tuple[list[str], list[str]]:
    """What got worse and what got better in one run, as texts."""
    worse: list[str] = []
    better: list[str] = []
    gained, lost = _reasons(new) - _reasons(base), _reasons(base) - _reasons(new)
    if gained:
        worse.append(f"{new['status']} ({', '.join(sorted(gained))}), was {base['status']}")
    if lost and new["status"] == PASSED:
        better.append(f"passed, was {base['status']} ({', '.join(sorted(lost))})")
    for req in checks:
        was, now = req.verdict(base), req.verdict(new)
        if now is False and was is not False:
            worse.append(f"{req.figure} {_shown(new, req)} fails, was {_shown(base, req)}")
        elif was is False and now is True:
            better.append(f"{req.figure} {_shown(new, req)} met, was {_shown(base, req)}")
    return worse, better


def _shown(row: dict[str, Any], req: Requirement) -> str:
    value = _rounded(row, req.figure)
    return "none" if value is None else with_unit(value, req.unit)


def _figure(
    req: Requirement, kind: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]]
) -> dict[str, Any]:
    """One requirement or diagnostic over the runs in both folders."""
    failing_base = [b["run_id"] for n, b in pairs if req.verdict(b) is False]
    failing_new = [n["run_id"] for n, b in pairs if req.verdict(n) is False]
    moved = worse = better = 0
    largest: dict[str, Any] | None = None
    for n, b in pairs:
        now, was = _rounded(n, req.figure), _rounded(b, req.figure)
        if now == was:
            continue
        moved += 1
        if now is None or was is None:
            continue  # a figure that appeared or went: the verdicts above say what it means
        step = req.badness(now) - req.badness(was)
        if step > 0:
            worse += 1
            if largest is None or step > largest["by"]:
                largest = {"run_id": n["run_id"], "baseline": was, "now": now, "by": step}
        else:
            better += 1
    return {
        "figure": req.figure,
        "text": req.text,
        "kind": kind,
        "unit": req.unit,
        "failing_baseline": len(failing_base),
        "failing_now": len(failing_new),
        "newly_failing": sorted(set(failing_new) - set(failing_base)),
        "newly_met": sorted(set(failing_base) - set(failing_new)),
        "moved": moved,
        "worse": worse,
        "better": better,
        "largest_worse": largest,
    }


def compare(
    rows: list[dict[str, Any]], baseline_rows: Mapping[str, dict[str, Any]], baseline: str
) -> dict[str, Any]:
    """The campaign's rows against the baseline's rows of the same runs (by run id)."""
    checks = (*REQUIREMENTS, *DIAGNOSTICS)
    pairs = [(r, baseline_rows[r["run_id"]]) for r in rows if r["run_id"] in baseline_rows]
    regressions: list[dict[str, Any]] = []
    improved: list[str] = []
    for new, base in pairs:
        worse, better = _run_changes(new, base, checks)
        if worse:
            regressions.append(_entry(new, worse))
        elif better:
            improved.append(new["run_id"])
    absent = [r for r in rows if r["run_id"] not in baseline_rows]
    for new in absent:
        if new["status"] != PASSED:
            why = ", ".join(sorted(_reasons(new))) or new["status"]
            regressions.append(_entry(new, [f"{new['status']} ({why}), not in the baseline"]))
    kinds = [(req, "requirement") for req in REQUIREMENTS]
    kinds += [(req, "diagnostic") for req in DIAGNOSTICS]
    figures = [_figure(req, kind, pairs) for req, kind in kinds]
    unchanged = sum(
        1
        for n, b in pairs
        if n["status"] == b["status"]
        and _reasons(n) == _reasons(b)
        and all(_rounded(n, req.figure) == _rounded(b, req.figure) for req in checks)
    )
    return {
        "baseline": baseline,
        "runs_in_both": len(pairs),
        "not_in_baseline": [r["run_id"] for r in absent],
        "unchanged": unchanged,
        "regressions": regressions,
        "improved": improved,
        "figures": figures,
    }


def _entry(row: dict[str, Any], what: list[str]) -> dict[str, Any]:
    axes = {k[len("axis.") :]: v for k, v in row.items() if k.startswith("axis.")}
    return {"run_id": row["run_id"], "axes": axes, "what": what, "reproduce": row["reproduce"]}

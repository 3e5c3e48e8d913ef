"""Campaign throughput for `sisnbms bench`: runs per second of the smoke campaign by workers.

Target (issue 13, a 2-core machine): at 2 workers >= 1.8x the runs per second at 1.
The smoke campaign's runs are CPU-bound (no wall-clock waits such as a dropped link),
so the ratio measures how well runs share the cores, not how well they sleep.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from host.campaign.local import warm_up
from host.campaign.runner import run_campaign

SMOKE_SPEC = Path(__file__).resolve().parents[2] / "examples" / "campaign-smoke.toml"
TARGET_RATIO_2_OVER_1 = 1.8
# --quick: the smoke campaign's scenario over four seeds (four runs instead of twelve).
_QUICK_SPEC = """
name = "smoke-quick"
scenarios = [{scenario!r}]
[axes]
seed = [1, 2, 3, 4]
"""


def campaign_runs_per_s_by_workers(
    workers: Sequence[int] = (1, 2), *, spec: str | Path | None = None, quick: bool = False
) -> dict[str, Any]:
    """Wall time and runs per second of one campaign (default: examples/campaign-smoke.toml)
    at each worker count, and the ratio of 2 workers over 1."""
    if not workers:
        raise ValueError("name at least one worker count")
    spec_path = Path(spec) if spec is not None else SMOKE_SPEC
    if not spec_path.is_file():
        raise FileNotFoundError(
            f"no campaign file {spec_path} (the smoke campaign is in a source checkout's examples/)"
        )
    by_workers: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="sisnbms-bench-") as tmp:
        if quick:
            scenario = spec_path.parent / "campaign-smoke" / "cycle.toml"
            spec_path = Path(tmp) / "quick.toml"
            spec_path.write_text(_QUICK_SPEC.format(scenario=str(scenario)), encoding="utf-8")
        warm_up()  # the fork server's start-up is paid once per process, not by the first count
        outcome = None
        for k in workers:
            start = time.perf_counter()
            outcome = run_campaign(spec_path, out=Path(tmp) / f"w{k}", workers=k)
            wall_s = time.perf_counter() - start
            runs = len(outcome.rows)
            by_workers[str(k)] = {
                "runs": runs,
                "passed": outcome.aggregate["passed"],
                "wall_s": round(wall_s, 3),
                "runs_per_s": round(runs / wall_s, 4),
            }
    assert outcome is not None
    result: dict[str, Any] = {
        "campaign": outcome.aggregate["campaign"],
        "runs_per_s": {k: v["runs_per_s"] for k, v in by_workers.items()},
        "by_workers": by_workers,
    }
    if "1" in by_workers and "2" in by_workers:
        ratio = by_workers["2"]["runs_per_s"] / by_workers["1"]["runs_per_s"]
        result["ratio_2_over_1"] = round(ratio, 3)
        result["target_ratio_2_over_1"] = TARGET_RATIO_2_OVER_1
        result["meets_target"] = bool(ratio >= TARGET_RATIO_2_OVER_1)
    return result

"""`sisnbms bench`: run the benchmarks in host.bench and compare with the targets."""

from __future__ import annotations

import argparse
import time
from typing import Any

from host import bench
from host.cli.output import emit_json


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmarks: model throughput, 1-hour profile, firmware step, emulation speed",
        description="Benchmarks of the cell model, the firmware and the emulator; numbers "
        "depend on the machine (performance goals live here, not in tests).",
    )
    p.add_argument("--quick", action="store_true", help="short runs (for smoke tests)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    results: dict[str, Any] = dict(bench.run_all(quick=args.quick))
    if args.json:
        emit_json({**results, "quick": args.quick, "wall_s": round(time.monotonic() - t0, 3)})
        return 0
    steps = results["cell_steps"]
    print("cells     us/step   cell-steps/s")
    for key in ("cells_1", "cells_100", "cells_10000"):
        r = steps[key]
        print(f"{r['n_cells']:>6} {r['us_per_step']:>10.2f} {r['cell_steps_per_s']:>14,.0f}")
    verdict = "meets" if steps["meets_target"] else "MISSES"
    print(
        f"10,000 cells {verdict} the target of {steps['target_cell_steps_per_s']:,.0f} cell-steps/s"
    )
    prof = results["profile_1h"]
    verdict = "meets" if prof["meets_target"] else "MISSES"
    print(
        f"1-hour single-cell profile at 1 s: best {prof['best_s'] * 1e3:.2f} ms, median "
        f"{prof['median_s'] * 1e3:.2f} ms ({verdict} the target of "
        f"{prof['target_s'] * 1e3:.0f} ms)"
    )
    fw = results["firmware_step"]
    print(
        f"firmware Bms.step under the MicroPython unix port: {fw['us_per_step']:.1f} us/step "
        f"({fw['steps_per_s']:,.0f} steps/s, 4 cells)"
    )
    emu = results["emulation"]
    verdict = "meets" if emu["meets_target"] else "MISSES"
    print(
        f"emulation ({emu['scenario']}): {emu['steps']} closed-loop steps in "
        f"{emu['wall_s']:.2f} s, {emu['loop_steps_per_s']} steps/s "
        f"({verdict} the {emu['target_s']:.0f} s target)"
    )
    return 0

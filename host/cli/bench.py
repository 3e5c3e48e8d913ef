"""`sisnbms bench`: run the benchmarks in host.bench and compare with the targets.

The text report has one block per benchmark (LINES: name -> the lines of its result): each
figure with its target and whether it meets it, "no target" where the issues set none, and
the reason where a target was skipped. --json emits every result whole.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from cellmodel.errors import InputError
from host import bench
from host.cli.output import emit, emit_json

NO_TARGET = "no target set"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmarks: model, firmware, closed loop, campaign and chip-target figures",
        description="Benchmarks of the cell model, the firmware, the emulator, campaigns and "
        "the chip targets against the performance targets, side by side in one run; numbers "
        "depend on the machine (performance goals live here, not in tests). Benchmarks: "
        + ", ".join(bench.BENCHMARKS)
        + ".",
    )
    p.add_argument("--quick", action="store_true", help="short runs (for smoke tests)")
    p.add_argument(
        "--only",
        metavar="NAME[,NAME]",
        help="run only these benchmarks (comma-separated names)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)


def selected(only: str | None) -> list[str] | None:
    """The benchmark names --only gives (None: all); an unknown one is bad input."""
    if only is None:
        return None
    names = [name.strip() for name in only.split(",")]
    if "" in names:  # `a,,b`, `a,`: named as given, not as an unknown benchmark ''
        raise InputError(
            "--only", only, f"an empty name in the list; known: {', '.join(bench.BENCHMARKS)}"
        )
    for name in names:
        if name not in bench.BENCHMARKS:
            raise InputError(
                "--only", name, f"unknown benchmark; known: {', '.join(bench.BENCHMARKS)}"
            )
    return names


def run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    only = selected(args.only)
    results: dict[str, Any] = dict(bench.run_all(quick=args.quick, only=only))
    if args.json:
        emit_json({**results, "quick": args.quick, "wall_s": round(time.monotonic() - t0, 3)})
        return 0
    for name, result in results.items():
        for line in LINES[name](result):
            emit(line)
    if args.quick:
        emit("(--quick: short runs; the verdicts are indicative only)")
    return 0


def verdict(meets: bool, target: str) -> str:
    return f"{'meets' if meets else 'MISSES'} the target {target}"


def _skipped(title: str, result: dict[str, Any]) -> list[str] | None:
    return [f"{title}: skipped: {result['skipped']}"] if "skipped" in result else None


def _cell_steps(r: dict[str, Any]) -> list[str]:
    lines = ["cells     us/step   cell-steps/s"]
    for key in ("cells_1", "cells_100", "cells_10000"):
        c = r[key]
        lines.append(f"{c['n_cells']:>6} {c['us_per_step']:>10.2f} {c['cell_steps_per_s']:>14,.0f}")
    target = f">= {r['target_cell_steps_per_s']:,.0f} cell-steps/s"
    lines.append(f"10,000 cells: {verdict(r['meets_target'], target)}")
    return lines


def _profile_1h(r: dict[str, Any]) -> list[str]:
    target = f"<= {r['target_s'] * 1e3:.0f} ms"
    return [
        f"1-hour single-cell profile at 1 s: best {r['best_s'] * 1e3:.2f} ms, median "
        f"{r['median_s'] * 1e3:.2f} ms ({verdict(r['meets_target'], target)})"
    ]


def _firmware_step(r: dict[str, Any]) -> list[str]:
    return [
        f"firmware Bms.step under the MicroPython unix port: {r['us_per_step']:.1f} us/step "
        f"({r['steps_per_s']:,.0f} steps/s, 4 cells; {NO_TARGET})"
    ]


def _emulation(r: dict[str, Any]) -> list[str]:
    target = f"< {r['target_s']:.0f} s"
    return [
        f"emulation ({r['scenario']}): {r['steps']} closed-loop steps in {r['wall_s']:.2f} s, "
        f"{r['loop_steps_per_s']} steps/s ({verdict(r['meets_target'], target)})"
    ]


def _closed_loop(r: dict[str, Any]) -> list[str]:
    target, meets = r["targets"], r["meets_targets"]

    def judged(key: str, text: str) -> str:
        return verdict(meets[key], text.format(target[key]))

    by_cells = ", ".join(f"{n}: {v:,.0f}" for n, v in r["fil_steps_per_s_by_cells"].items())
    return [
        "closed loop, lockstep, the real firmware on a unix-64 virtual board:",
        f"  echo {r['echo_round_trips_per_s']:,.0f} round trips/s, closed loop (1 cell) "
        f"{r['fil_steps_per_s']:,.0f} steps/s: fil_to_echo_ratio {r['fil_to_echo_ratio']:.3f} "
        f"({judged('fil_to_echo_ratio', '>= {}')})",
        f"  steps/s by cells {by_cells}: 16 over 1 = {r['cells_16_over_1']:.3f} "
        f"({judged('cells_16_over_1', '>= {}')})",
        f"  default `sisnbms emulate`, start-up included: {r['emulate_default_s']:.2f} s "
        f"({judged('emulate_default_s', '<= {} s')})",
    ]


def _campaign(r: dict[str, Any]) -> list[str]:
    skipped = _skipped("campaign", r)
    if skipped:
        return skipped
    rates = r["campaign_runs_per_s_by_workers"]
    runs = r["by_workers"]["1"]["runs"]
    target = f">= {r['target_ratio_2_over_1']}"
    return [
        f"campaign {r['campaign']} ({runs} runs): {rates['1']:.2f} runs/s on 1 worker, "
        f"{rates['2']:.2f} on 2: ratio {r['ratio_2_over_1']:.3f} "
        f"({verdict(r['meets_target'], target)})"
    ]


def _frames_line(target: str, r: dict[str, Any]) -> str:
    fw, echo = r["firmware"], r["echo"]
    if "instructions_per_frame" in fw:  # the QEMU board: counted in emulated instructions
        return (
            f"  {target}: {fw['instructions_per_frame']:,} instructions/frame = "
            f"{fw['us_per_frame_at_125MHz']} us at 125 MHz (CPI {r['assumed_cpi']}), "
            f"{fw['frames_per_s_at_125MHz']:,.0f} frames/s; echo "
            f"{echo['instructions_per_frame']:,} instructions; "
            f"firmware/echo {r['firmware_to_echo']:.3f} (by instructions)"
        )
    return (
        f"  {target}: {fw['frames_per_s']:,.0f} frames/s ({fw['us_per_frame']} us/frame), "
        f"echo {echo['frames_per_s']:,.0f}/s: firmware/echo {r['firmware_to_echo']:.3f}"
    )


def _firmware_frames(r: dict[str, Any]) -> list[str]:
    lines = [
        f"firmware SAMPLE->STATE frames beside a trivial echo on the same board ({NO_TARGET}):"
    ]
    for target, result in r.items():
        lines += _skipped(f"  {target}", result) or [_frames_line(target, result)]
    return lines


def _target_heap(r: dict[str, Any]) -> list[str]:
    lines = [f"heap after boot / peak in operation / GC heap, bytes ({NO_TARGET}):"]
    for target, h in r.items():
        lines += _skipped(f"  {target}", h) or [
            f"  {target}: {h['after_boot_B']:,} / {h['peak_in_operation_B']:,} / "
            f"{h['gc_heap_total_B']:,} ({h['where']}); SAMPLE frames allocating nothing "
            f"{h['sample_frames_allocating_nothing']} (target: all but state saves; most "
            f"{h['most_allocated_by_one_sample_B']:,} B)"
        ]
    return lines


def _qemu_step(r: dict[str, Any]) -> list[str]:
    title = "Bms.step on qemu-cortex-m0"
    skipped = _skipped(title, r)
    if skipped:
        return skipped
    lines = [f"{title}, median ({NO_TARGET}; at 125 MHz with CPI {r['assumed_cpi']}):"]
    for key in (k for k in r if k.startswith("cells_")):
        c = r[key]
        lines.append(
            f"  {key.removeprefix('cells_'):>2} cells: {c['instructions_per_step_median']:,} "
            f"instructions, {c['us_per_step_at_125MHz_median']} us"
        )
    return lines


def _qemu_closed_loop(r: dict[str, Any]) -> list[str]:
    title = "closed loop against the qemu-cortex-m0 board (QEMU at full speed)"
    return _skipped(title, r) or [
        f"{title}: {r['samples_per_s']:,.1f} SAMPLE round trips/s, boot to HELLO "
        f"{r['boot_to_hello_s']:.2f} s ({NO_TARGET})"
    ]


LINES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "cell_steps": _cell_steps,
    "profile_1h": _profile_1h,
    "firmware_step": _firmware_step,
    "emulation": _emulation,
    "closed_loop": _closed_loop,
    "campaign": _campaign,
    "firmware_frames": _firmware_frames,
    "target_heap": _target_heap,
    "qemu_step": _qemu_step,
    "qemu_closed_loop": _qemu_closed_loop,
}

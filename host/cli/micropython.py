"""`sisnbms micropython build`: build a chip-faithful MicroPython target from source.

Exit codes: 0 built (or found in the cache); 1 make failed; 2 bad input (target, --source,
--out) or a missing toolchain (the message names the Debian packages to install).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from host.cli.options import CLI, MAKE_JOBS
from host.cli.output import emit_json
from host.micropython import TARGETS, BuildFailed, BuildResult, build_target


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "micropython",
        help="build chip-faithful MicroPython targets (32-bit unix, QEMU Cortex-M0 board)",
        description="Build MicroPython interpreters and firmware that behave like the chips.",
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    build = sub.add_parser(
        "build",
        help="build a target from a MicroPython source tree or tarball (cached)",
        description=(
            "Build a target from a MicroPython source tree or its tarball and print where the "
            "binary is. Builds are cached by source hash, target and board files: a second "
            "call returns at once. Targets: "
            + "; ".join(f"{t.name}: {t.description}" for t in TARGETS.values())
            + "."
        ),
    )
    build.add_argument("--target", required=True, choices=sorted(TARGETS), help="what to build")
    build.add_argument(
        "--source", required=True, metavar="DIR_OR_TARBALL", help="MicroPython source"
    )
    build.add_argument(
        "--out", metavar="DIR", help="cache folder (default ~/.cache/sisnbms/micropython)"
    )
    build.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help=f"parallel make jobs, {MAKE_JOBS.describe()} (default: CPUs)",
    )
    build.add_argument("--json", action="store_true", help="print the result as JSON")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    if args.jobs is not None:
        MAKE_JOBS.check(args.jobs, CLI, "--jobs")
    try:
        result = build_target(args.target, args.source, args.out, jobs=args.jobs)
    except BuildFailed as exc:
        print(f"sisnbms micropython build: {args.target}: {exc}", file=sys.stderr)
        if args.json:
            emit_json({"error": str(exc), "source": args.target, "field": None,
                       "reason": str(exc), "exit_code": 1})  # fmt: skip
        return 1
    if args.json:
        emit_json(result.as_dict())
    else:
        _print_human(result)
    return 0


def _print_human(r: BuildResult) -> None:
    how = "cached" if r.cached else f"built in {r.build_wall_s:.1f} s"
    print(f"{r.target}: {r.path} ({how})")

"""`sisnbms micropython build`: build a chip-faithful MicroPython target from source.

Exit codes: 0 built (or found in the cache); 1 make failed; 2 bad input (target, --source,
--out) or a missing toolchain (the message names the Debian packages to install).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

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
    build.add_argument("--jobs", type=int, metavar="N", help="parallel make jobs (default: CPUs)")
    build.add_argument("--json", action="store_true", help="print the result as JSON")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    try:
        result = build_target(args.target, args.source, args.out, jobs=args.jobs)
    except BuildFailed as exc:
        print(f"sisnbms micropython build: {args.target}: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": str(exc), "target": args.target}))
        return 1
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        _print_human(result)
    return 0


def _print_human(r: BuildResult) -> None:
    how = "cached" if r.cached else f"built in {r.build_seconds:.1f} s"
    print(f"{r.target}: {r.path} ({how})")

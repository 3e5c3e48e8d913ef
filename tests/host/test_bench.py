"""`sisnbms bench` runs every registered benchmark and reports its figures, targets and
verdicts (numbers are not asserted: performance goals live in the bench, not in tests).

One `--quick --json` run (module fixture, about half a minute with the chip targets built)
is checked whole; `--only` and the text report are checked on small selections.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from host import bench
from host.bench_firmware import TARGETS as FRAME_TARGETS
from host.cli.bench import LINES
from host.cli.main import main
from host.micropython.build import CACHE_ENV
from host.micropython.resolve import RUN_TARGETS
from tests.host.test_json_convention import check

CHIP_TARGETS = ("unix-32", "qemu-cortex-m0")
ISSUE_13_KEYS = {
    "fil_steps_per_s",
    "echo_round_trips_per_s",
    "fil_to_echo_ratio",
    "fil_steps_per_s_by_cells",
    "emulate_default_s",
}


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    """`sisnbms bench --quick --json`, once for the module."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["bench", "--quick", "--json"]) == 0
    return check(out.getvalue())  # the JSON convention of every command


def skipped_why(result: dict[str, Any]) -> bool:
    """A skipped target names the command that builds it or the packages it lacks."""
    if "skipped" not in result:
        return False
    reason = result["skipped"]
    assert "sisnbms micropython build --target" in reason or "apt-get install" in reason, reason
    return True


def test_quick_json_holds_every_benchmark(quick: dict[str, Any]) -> None:
    assert set(quick) == set(bench.BENCHMARKS) | {"quick", "wall_s"}
    assert quick["quick"] is True
    steps = quick["cell_steps"]
    for key in ("cells_1", "cells_100", "cells_10000"):
        assert steps[key]["cell_steps_per_s"] > 0
    assert isinstance(steps["meets_target"], bool)
    assert quick["profile_1h"]["steps"] == 3600 and quick["profile_1h"]["best_s"] > 0
    assert quick["firmware_step"]["steps"] == 5000 and quick["firmware_step"]["us_per_step"] > 0
    assert quick["emulation"]["steps"] == 1200  # 20 minutes at 1 s in closed loop


def test_quick_json_issue_13_figures(quick: dict[str, Any]) -> None:
    loop = quick["closed_loop"]
    assert set(loop) >= ISSUE_13_KEYS
    assert set(loop["fil_steps_per_s_by_cells"]) == {"1", "4", "16"}
    assert all(v > 0 for v in loop["fil_steps_per_s_by_cells"].values())
    assert loop["detail"]["emulate"]["exit_code"] == 0  # the default emulate ran and passed
    judged = {"fil_to_echo_ratio", "cells_16_over_1", "emulate_default_s"}
    assert set(loop["targets"]) == set(loop["meets_targets"]) == judged
    assert all(isinstance(v, bool) for v in loop["meets_targets"].values())
    campaign = quick["campaign"]
    assert set(campaign["campaign_runs_per_s_by_workers"]) == {"1", "2"}
    assert all(w["runs"] == w["passed"] == 4 for w in campaign["by_workers"].values())
    assert campaign["target_ratio_2_over_1"] == 1.8
    assert isinstance(campaign["meets_target"], bool)


def test_quick_json_chip_target_figures(quick: dict[str, Any]) -> None:
    frames = quick["firmware_frames"]
    assert set(frames) == set(FRAME_TARGETS) == set(RUN_TARGETS)
    assert "skipped" not in frames["unix-64"]  # the PyPI interpreter is always there
    for target, r in frames.items():
        if skipped_why(r):
            continue
        fw, echo = r["firmware"], r["echo"]
        if target == "qemu-cortex-m0":
            assert 0 < echo["instructions_per_frame"] < fw["instructions_per_frame"]
        else:
            assert fw["frames_per_s"] > 0 and echo["frames_per_s"] > 0
            if Path("/proc/self/task").is_dir():  # the board's CPU time, found among the
                # processes of this one (the campaign run before left its fork server)
                assert fw["board_cpu_us_per_frame"] is not None, r
    heap = quick["target_heap"]
    assert set(heap) == set(RUN_TARGETS) and "skipped" not in heap["unix-64"]
    for h in heap.values():
        if not skipped_why(h):
            assert 0 < h["after_boot_B"] <= h["peak_in_operation_B"] < h["gc_heap_total_B"]
            # issue 11: no allocation per sample step; only a frame that saves the state
            zero, frames = (int(v) for v in h["sample_frames_allocating_nothing"].split("/"))
            assert frames == 200 and zero >= 195, h
    step = quick["qemu_step"]
    if not skipped_why(step):
        counts = [step[f"cells_{n}"]["instructions_per_step_median"] for n in (1, 4, 16)]
        assert all(c > 0 for c in counts)
    loop = quick["qemu_closed_loop"]
    assert skipped_why(loop) or loop["samples_per_s"] > 0


def test_text_reports_every_benchmark(quick: dict[str, Any]) -> None:
    assert set(LINES) == set(bench.BENCHMARKS)
    targeted = {"cell_steps", "profile_1h", "emulation", "closed_loop", "campaign"}
    for name in bench.BENCHMARKS:
        text = "\n".join(LINES[name](quick[name]))
        if name in targeted:
            assert "the target" in text and ("meets" in text or "MISSES" in text), text
        else:
            assert "no target set" in text or "skipped:" in text, text


def test_only_reruns_some(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--only runs the named benchmarks and nothing else; with no chip target built (an
    empty build cache) their entries say so and how to build them, and the rest runs."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "no-builds"))
    only = "target_heap,qemu_step,firmware_frames,qemu_closed_loop"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["bench", "--quick", "--only", only, "--json"]) == 0
    data = check(out.getvalue())
    assert set(data) == set(only.split(",")) | {"quick", "wall_s"}
    assert data["target_heap"]["unix-64"]["after_boot_B"] > 0
    assert data["firmware_frames"]["unix-64"]["firmware"]["frames_per_s"] > 0
    for entry in ("target_heap", "firmware_frames"):
        for target in CHIP_TARGETS:
            reason = data[entry][target]["skipped"]
            assert f"sisnbms micropython build --target {target}" in reason, reason
    for entry in ("qemu_step", "qemu_closed_loop"):
        assert "sisnbms micropython build --target qemu-cortex-m0" in data[entry]["skipped"]


def test_only_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--only", "profile_1h, firmware_step"]) == 0
    out = capsys.readouterr().out
    assert "1-hour single-cell profile" in out and "firmware Bms.step" in out
    assert "cell-steps/s" not in out and "closed loop" not in out


@pytest.mark.parametrize(
    ("only", "why"),
    [
        ("nope", "--only: nope: unknown benchmark"),
        ("cell_steps,nope", "--only: nope: unknown benchmark"),
        ("cell_steps,", "--only: cell_steps,: an empty name in the list"),
    ],
)
def test_only_unknown_name_is_bad_input(
    only: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--only", only]) == 2
    captured = capsys.readouterr()
    assert why in captured.err
    assert all(name in captured.err for name in bench.BENCHMARKS)  # the list to choose from
    assert "Traceback" not in captured.err and captured.out == ""
    assert main(["bench", "--only", only, "--json"]) == 2
    error = json.loads(capsys.readouterr().out)
    assert error["source"] == "--only" and error["exit_code"] == 2


def test_cli_md_lists_every_benchmark() -> None:
    from tests.test_docs_sync import CLI_MD, section

    listed = re.findall(r"^- `(\w+)`", section(CLI_MD, "sisnbms bench"), re.M)
    assert listed == list(bench.BENCHMARKS)

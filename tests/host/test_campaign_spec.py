"""Campaign files and their expansion into runs (pure: nothing runs a board here)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from cellmodel.claims import SATISFIED, check_claims
from cellmodel.errors import InputError
from host.campaign import expand, load_spec
from host.campaign.expand import SCENARIO_FILE
from host.campaign.spec import on_target
from host.emulator import resolve_design
from host.emulator.loop import check_scenario
from host.firmware_config import build_config
from host.scenarios import library_names, load_scenario

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "examples" / "campaign-smoke.toml"
ROBUSTNESS = REPO / "examples" / "campaign-robustness.toml"
SENSOR_FAULTS = REPO / "examples" / "campaign-sensor-faults.toml"
PROBES = REPO / "examples" / "campaign-probes.toml"
STALE_BRANCH = REPO / "examples" / "campaign-stale-branch.toml"
CORNERS = REPO / "examples" / "campaign-corners.toml"
DESIGN_SPACE = REPO / "examples" / "campaign-design-space.toml"
MONTE_CARLO = REPO / "examples" / "campaign-monte-carlo.toml"
SENSOR_BIAS = REPO / "examples" / "campaign-sensor-bias.toml"

SHORT = """
name = "short"
seed = 1
steps = ["Rest for 1 minute"]
[initial]
soc = 0.5
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def bundled(tmp_path: Path, plan: Any) -> Path:
    """The run's bundle written to a folder, as a campaign writes it; its scenario path."""
    folder = tmp_path / "runs" / plan.run_id
    for name, text in {**plan.files, SCENARIO_FILE: plan.scenario_toml}.items():
        write(folder, name, text)
    return folder / SCENARIO_FILE


def test_smoke_campaign_is_a_dozen_runs_across_two_axes() -> None:
    spec = load_spec(SMOKE)
    plans = expand(spec)
    assert len(plans) == 12
    assert spec.axis_names == ["seed", "sensor"]
    combos = {(p.axes["seed"], p.axes["sensor"]) for p in plans}
    assert len(combos) == 12
    assert len({p.run_id for p in plans}) == 12
    assert all(len(p.run_id) == 12 and int(p.run_id, 16) >= 0 for p in plans)


def test_run_ids_are_stable_and_follow_the_inputs(tmp_path: Path) -> None:
    scenario = write(tmp_path, "s.toml", SHORT)
    spec = write(tmp_path, "c.toml", 'scenarios = ["s.toml"]\n[axes]\nseed = [1, 2]\n')
    first = [p.run_id for p in expand(load_spec(spec))]
    assert first == [p.run_id for p in expand(load_spec(spec))]
    # The same combinations from a copy elsewhere: the same runs.
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(scenario, other / "s.toml")
    shutil.copy(spec, other / "c.toml")
    assert [p.run_id for p in expand(load_spec(other / "c.toml"))] == first
    # A changed scenario is a different run.
    scenario.write_text(SHORT.replace("soc = 0.5", "soc = 0.6"))
    changed = [p.run_id for p in expand(load_spec(spec))]
    assert set(changed).isdisjoint(first)


def test_a_target_for_the_whole_campaign_runs_every_run_there(tmp_path: Path) -> None:
    """`campaign --target`: every run of every group gets the target, as an axis of its own
    (so rows and ids tell the runs on a chip from those on the desktop interpreter), and
    a file that picks a target or an interpreter itself is refused, not overridden."""
    write(tmp_path, "s.toml", SHORT)
    spec = write(
        tmp_path,
        "c.toml",
        '[axes]\nseed = [1, 2]\n[[group]]\nname = "a"\nscenarios = ["s.toml"]\n'
        '[[group]]\nname = "b"\nscenarios = ["s.toml"]\naxes = { ambient_degC = [5.0] }\n',
    )
    desktop = expand(load_spec(spec))
    chip = expand(on_target(load_spec(spec), "unix-32"))
    assert len(chip) == len(desktop) == 4
    assert all(p.options == {"target": "unix-32"} and p.axes["target"] == "unix-32" for p in chip)
    assert all("--target unix-32" in p.reproduce(tmp_path) for p in chip)
    assert {p.run_id for p in chip}.isdisjoint(p.run_id for p in desktop)
    # the scenarios themselves are the same (their header comment names the target)

    def body(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("#")]

    assert [body(p.scenario_toml) for p in chip] == [body(p.scenario_toml) for p in desktop]
    with pytest.raises(InputError) as info:
        on_target(load_spec(spec), "z80")
    assert info.value.source == "--target" and "unknown target" in info.value.reason
    own = write(tmp_path, "own.toml", 'scenarios = ["s.toml"]\n[axes]\ntarget = ["unix-64"]\n')
    with pytest.raises(InputError) as info:
        on_target(load_spec(own), "unix-32")
    assert info.value.source == "--target" and "sets its own target" in info.value.reason


def test_axes_cross_and_variants_set_the_scenario(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", SHORT)
    write(tmp_path, "b.toml", SHORT.replace('"short"', '"other"'))
    spec = write(
        tmp_path,
        "c.toml",
        """
scenarios = ["a.toml", "b.toml"]
[axes]
seed = [4, 5, 6]
mismatch.capacity_factor = [0.8, 1.0]
[variants.start]
exact = {}
none = { initial = { state_file = false } }
stale = { "initial.firmware_soc" = 0.9, "initial.firmware_branch" = "charge" }
""",
    )
    plans = expand(load_spec(spec))
    assert len(plans) == 2 * 3 * 2 * 3
    plan = next(
        p
        for p in plans
        if p.scenario == "b.toml"
        and p.axes == {"seed": "5", "mismatch.capacity_factor": "0.8", "start": "stale"}
    )
    scenario = load_scenario(bundled(tmp_path, plan))
    assert scenario.name == "other" and scenario.seed == 5 == plan.seed
    assert scenario.mismatch.capacity_factor == 0.8
    assert scenario.initial.firmware_soc == 0.9 and scenario.initial.firmware_branch == "charge"
    assert scenario.initial.soc == 0.5  # the scenario's own keys stay
    none = next(p for p in plans if p.axes["start"] == "none")
    assert load_scenario(bundled(tmp_path, none)).initial.state_file is False


def test_groups_are_a_union_with_the_shared_axes(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", SHORT)
    write(tmp_path, "b.toml", SHORT.replace('"short"', '"other"'))
    spec = write(
        tmp_path,
        "c.toml",
        """
[axes]
seed = [1, 2]
[[group]]
name = "plain"
scenarios = ["a.toml", "b.toml"]
[[group]]
name = "hot"
scenarios = ["a.toml"]
axes = { ambient_degC = [35.0, 45.0] }
""",
    )
    plans = expand(load_spec(spec))
    assert [p.group for p in plans].count("plain") == 4
    hot = [p for p in plans if p.group == "hot"]
    assert len(hot) == 4 and {p.axes["ambient_degC"] for p in hot} == {"35.0", "45.0"}


def test_builtin_names_and_patterns(tmp_path: Path) -> None:
    spec = write(tmp_path, "c.toml", 'scenarios = ["*"]\n')
    assert [p.scenario for p in expand(load_spec(spec))] == library_names()
    spec = write(tmp_path, "c.toml", 'scenarios = ["link-loss", "hot-*"]\n')
    assert [p.scenario for p in expand(load_spec(spec))] == ["link-loss", "hot-soak"]


def test_a_cell_axis_over_a_scenarios_missing_cell_leaves_it_unread(tmp_path: Path) -> None:
    """Only the references a run uses are checked: an axis that sets every run's cell
    replaces the scenario's own, as `--cell` does for `emulate`."""
    write(tmp_path, "s.toml", 'cell = "gone.toml"\n' + SHORT)
    spec = write(tmp_path, "c.toml", 'scenarios = ["s.toml"]\n[axes]\ncell = ["sisn-lco-2ah"]\n')
    (plan,) = expand(load_spec(spec))
    assert plan.files == {} and 'cell = "sisn-lco-2ah"' in plan.scenario_toml


def test_a_run_carries_the_files_its_scenario_reads(tmp_path: Path) -> None:
    """Cell files (with the file they extend) and profiles travel with the run: its folder
    is reproducible after the campaign's own files are gone."""
    src = tmp_path / "src"
    write(src, "cells/base.toml", 'extends = "sisn-lco-2ah"\n[limits]\nwindow_top_mAh_g = 1500.0\n')
    write(src, "cells/derived.toml", 'extends = "base.toml"\n[cell]\nname = "derived"\n')
    write(src, "profiles/p.csv", "time_s,current_A\n0,1.0\n30,0.0\n60,0.0\n")
    scenario = SHORT.replace('"Rest for 1 minute"', '"Run ../profiles/p.csv"')
    write(src, "scenarios/s.toml", 'cell = "../cells/derived.toml"\n' + scenario)
    spec = write(src, "c.toml", 'scenarios = ["scenarios/s.toml"]\n')
    (plan,) = expand(load_spec(spec))
    assert sorted(plan.files) == ["files/base.toml", "files/derived.toml", "files/p.csv"]
    path = bundled(tmp_path, plan)
    shutil.rmtree(src)
    scenario_obj = load_scenario(path)
    design = resolve_design(scenario_obj)
    assert design.name == "derived" and design.limits.window_top_mAh_g == 1500.0
    run_step = scenario_obj.steps[0]
    assert run_step.text == "Run files/p.csv"  # pyright: ignore[reportAttributeAccessIssue]


def test_robustness_campaign_regenerates_issue_9s_matrix(tmp_path: Path) -> None:
    spec = load_spec(ROBUSTNESS)
    plans = expand(spec)
    scenarios = {p.scenario for p in plans}
    assert {Path(s).name for s in scenarios} >= {
        "full-cycles.toml",
        "partial-cycles.toml",
        "short-rests.toml",
        "cold-charge.toml",
        "cold-charge-5c.toml",
        "pulses-near-empty.toml",
        "drive-near-empty.toml",
        "aged-80.toml",
        "pack-4s.toml",
    }
    assert len(plans) == 9 * 5 * 12 + 5 * 5 * 12
    axes = {name: {p.axes.get(name) for p in plans} for name in spec.axis_names}
    assert axes["start"] == {"exact", "stale-high", "stale-low", "stale-near", "none"}
    # the near-stale start is relative: each scenario keeps its own true start SOC
    for near in (p for p in plans if p.axes.get("start") == "stale-near"):
        initial = load_scenario(bundled(tmp_path, near)).initial
        assert initial.firmware_soc_error == -0.06 and initial.firmware_soc is None
    perturbations = axes["perturbation"]
    assert len(perturbations) == 12 and "nominal" in perturbations  # 7 mismatch + 4 sensor
    # Every scenario meets every start and every perturbation.
    for scenario in scenarios:
        mine = [p for p in plans if p.scenario == scenario and p.group == "default cells"]
        if mine:
            assert len(mine) == 5 * 12
    # The cold charges: one at the charge gate's edge (the probe read less the firmware's
    # sensor bound is at the derating table's first row), one well inside the cold row, so
    # that the matrix charges in the cold under the anode limit and not only at the gate.
    read_less_bound = {}
    for scenario in scenarios:
        if "cold-charge" in Path(scenario).name:
            sc = load_scenario(ROBUSTNESS.parent / scenario)
            cfg = build_config(resolve_design(sc))
            assert sc.initial.temp_degC is not None
            gate_degC = cfg["ccl_temp_ddegC"][0] / 10
            read_less_bound[Path(scenario).name] = (
                sc.initial.temp_degC - cfg["t_sense_ddegC"] / 10 - gate_degC
            )
            assert cfg["ccl_temp_mA"][0] > 0
    assert abs(read_less_bound["cold-charge.toml"]) < 0.5, read_less_bound
    assert read_less_bound["cold-charge-5c.toml"] >= 2.0, read_less_bound


def test_sensor_faults_campaign_puts_each_fault_on_both_windows(tmp_path: Path) -> None:
    spec = load_spec(SENSOR_FAULTS)
    plans = expand(spec)
    assert len(plans) == 48
    steps = {p.scenario: load_scenario(bundled(tmp_path, p)).steps for p in plans}
    texts = " | ".join(s.text for scenario in steps.values() for s in scenario).lower()
    for fault in ("stick current sensor at 0 ma", "stick current sensor at 100 ma",
                  "stick current sensor |", "step current gain by -30%",
                  "short thermistor 1", "open thermistor 1"):  # fmt: skip
        assert fault in texts, fault
    # every fault runs where 4.2 V ends a charge and where the anode window's top does
    for scenario in {p.scenario for p in plans}:
        cells = {p.axes.get("cell") for p in plans if p.scenario == scenario}
        assert len(cells) == 2 and any(c and "window-1500" in c for c in cells), cells


BAD_SPECS = [
    ("", "scenarios", "missing"),
    ('scenarios = ["s.toml"]\nworkers = 3\n', "workers", "unknown key"),
    ('scenarios = ["no-such-builtin"]\n', "scenarios[0]", "no built-in scenario"),
    ('scenarios = ["nope.toml"]\n', "scenarios[0]", "no such scenario file"),
    ('scenarios = ["x/*.toml"]\n', "scenarios[0]", "no file matches"),
    ('scenarios = ["s.toml", "./s.toml"]\n', "scenarios[1]", "already listed"),
    ('scenarios = ["s.toml"]\ntimeout_s = 0\n', "timeout_s", "1..604800"),
    ('scenarios = ["s.toml"]\n[axes]\nseed = 3\n', "axes.seed", "list of values"),
    ('scenarios = ["s.toml"]\n[axes]\nseed = []\n', "axes.seed", "at least one"),
    ('scenarios = ["s.toml"]\n[axes]\nseed = [1, 1]\n', "axes.seed[1]", "twice"),
    ('scenarios = ["s.toml"]\n[variants.v]\na = 3\n', "variants.v.a", "table of settings"),
    (
        'scenarios = ["s.toml"]\n[axes]\nseed = [1]\n[variants.v]\na = { seed = 2 }\n',
        "axes",
        "both set 'seed'",
    ),
    (
        'scenarios = ["s.toml"]\n[variants.v]\na = {}\nb = { seed = 1 }\n',
        "axes",
        "the same run as",
    ),
    (
        'scenarios = ["s.toml"]\n[axes]\nmismatch.capacity_factor = [1.0, 5.0]\n',
        "mismatch.capacity_factor",
        "outside the plausible",
    ),
    ('scenarios = ["s.toml"]\n[axes]\nwarp = [1]\n', "warp", "unknown key"),
    ('scenarios = ["s.toml"]\n[axes]\nmicropython = ["nope"]\n', "axes.micropython[0]", "no such"),
    ('scenarios = ["s.toml"]\n[axes]\ncell = ["nope.toml"]\n', "axes.cell[0]", "nope.toml"),
    # refused only by the run's own check (its cells, their designs), once expanded
    (
        'scenarios = ["s.toml"]\n[variants.v]\nsame = {}\nfour = { bms_cell = "sisn-lco-2ah-4s" }'
        "\n",
        "variants.v.four",
        "4 cell(s) in series",
    ),
    ('scenarios = ["s.toml"]\n[[group]]\nscenarios = ["s.toml"]\n', "scenarios", "group"),
    ("scenarios = [", "toml", ""),
]


@pytest.mark.parametrize(("text", "field", "reason"), BAD_SPECS)
def test_bad_campaign_file_names_file_field_and_reason(
    tmp_path: Path, text: str, field: str, reason: str
) -> None:
    write(tmp_path, "s.toml", SHORT)
    spec = write(tmp_path, "bad.toml", text)
    with pytest.raises(InputError) as info:
        expand(load_spec(spec))
    assert str(spec) in info.value.source
    assert field in info.value.field
    assert reason in info.value.reason


def test_builtin_campaign_is_every_builtin_x_3_seeds_x_2_mismatch() -> None:
    plans = expand(load_spec(REPO / "examples" / "campaign-builtin.toml"))
    assert len(plans) == len(library_names()) * 3 * 2
    drawn = [p for p in plans if p.axes["mismatch"] == "drawn" and p.scenario == "full-cycle"]
    # Each seed draws its own cell from the ranges.
    assert len({p.run_id for p in drawn}) == 3


def test_the_probe_campaign_bundles_every_scenario_with_its_files(tmp_path: Path) -> None:
    """The probes beyond the matrix: 12 scenarios x 3 starts x 4 perturbations, each run's
    bundle loadable on its own (the drives' profile travels with them), packs among them."""
    plans = expand(load_spec(PROBES))
    assert len(plans) == 144
    cells = set()
    for plan in plans:
        scenario = load_scenario(bundled(tmp_path, plan))
        design = resolve_design(scenario)
        check_scenario(scenario, design, can_cut_power=True)  # its profiles are there
        cells.add(design.n_series)
    assert cells == {1, 4}


def test_the_stale_branch_campaign_starts_every_run_from_a_stale_file(tmp_path: Path) -> None:
    """The stale-branch probe: 3 scenarios x 9 stale starts x 3 tables on the window cell,
    each run's bundle loadable on its own, every start a state file the BMS last saw (its
    SOC off the truth, its branch named), half of them on the branch the cell is not on."""
    plans = expand(load_spec(STALE_BRANCH))
    assert len(plans) == 81
    other = 0
    for plan in plans:
        scenario = load_scenario(bundled(tmp_path, plan))
        check_scenario(scenario, resolve_design(scenario), can_cut_power=True)
        init = scenario.initial
        assert init.firmware_soc_error != 0.0 and init.firmware_branch is not None
        assert scenario.cell is not None and scenario.cell.endswith("window-1500.toml")
        other += init.firmware_branch != init.branch
    assert other == (5 + 5 + 4) * 3, other  # "c" starts off the two discharge-branch scenarios


def test_the_corner_campaign_puts_every_bound_at_once_on_its_stressing_paths(
    tmp_path: Path,
) -> None:
    """The corner probes: 8 scenarios x 4 starts x 3 perturbations, each run's bundle
    loadable on its own (the window cells and the drive's profile travel with it), single
    cells and a 4-series pack, the window top below 4.2 V's in most, a charger that ignores
    the CCL in one; "all low" and "all high" carry every mismatch and both sensor errors."""
    plans = expand(load_spec(CORNERS))
    assert len(plans) == 96
    cells, windows, rogue, combined = set(), 0, 0, 0
    for plan in plans:
        scenario = load_scenario(bundled(tmp_path, plan))
        design = resolve_design(scenario)
        check_scenario(scenario, design, can_cut_power=True)
        cells.add(design.n_series)
        windows += design.limits.window_top_mAh_g < 1600.0
        rogue += not scenario.honour_bms_limits
        m, sensors = scenario.mismatch, scenario.sensors
        combined += (
            (m.capacity_factor != 1.0 or m.hysteresis_rate_factor != 1.0)
            and sensors.current_bias_mA != 0.0
            and sensors.current_gain_bias_ppm != 0.0
        )
    assert cells == {1, 4}
    assert windows == 6 * 12 and rogue == 12, (windows, rogue)
    assert combined == 8 * 4 * 2, combined


def test_the_design_space_campaign_spans_the_claims_and_the_firmwares_capacities(
    tmp_path: Path,
) -> None:
    """Cells the matrix never runs: 6 single-cell scenarios x 2 starts x 3 perturbations on
    each of 4 designs, each run's bundle loadable on its own with its cell file, every
    design within claims 1-13 and configurable: capacities a decade either side of the
    default's (the 20 Ah cell at the firmware's largest capacity) and the anode at both ends
    of claim 1's 1,000-2,200 mAh/g, its window top there."""
    plans = expand(load_spec(DESIGN_SPACE))
    assert len(plans) == 144
    designs = {}
    for plan in plans:
        scenario = load_scenario(bundled(tmp_path, plan))
        design = resolve_design(scenario)
        check_scenario(scenario, design, can_cut_power=True)
        designs[design.name] = design
    assert len(designs) == 4
    for design in designs.values():
        claims = check_claims(design).values()
        assert all(c.status == SATISFIED for c in claims), design.name
        cfg = build_config(design)  # InputError if the firmware could not take it
        assert cfg["window_top_dmAhg"] == round(10 * design.limits.window_top_mAh_g)
    capacity_mAh = sorted(round(d.capacity_Ah * 1000) for d in designs.values())
    assert capacity_mAh[0] == 200 and capacity_mAh[-1] == 19984, capacity_mAh
    c_n = sorted(round(d.c_n_mAh_g) for d in designs.values())
    assert c_n[0] == 1000 and c_n[-1] == 2200, c_n


def test_the_monte_carlo_campaign_moves_every_factor_at_once_inside_the_matrixs_bounds(
    tmp_path: Path,
) -> None:
    """The matrix's 8 scenarios x 3 starts x 8 seeds, the probes' and corners' 20 x 2 x 4,
    and 8- and 16-series packs (6 and 5 scenarios x 2 spread draws x 3 starts x 2 seeds),
    each run's bundle loadable on its own: every run moves every mismatch at once (the
    aged cell all but its capacity, already at the firmware's bound) and draws its current
    sensor's errors, each inside the matrix's bounds; a seed is one cell in every scenario
    and start, and the seeds are different cells, the branch gap among what they move."""
    plans = expand(load_spec(MONTE_CARLO))
    assert len(plans) == 192 + 160 + 72 + 60 + 90
    cells: dict[str, set[tuple[float, ...]]] = {}
    gap_moved = 0
    packs: dict[str, set[str]] = {}
    for plan in plans:
        scenario = load_scenario(bundled(tmp_path, plan))
        design = resolve_design(scenario)
        check_scenario(scenario, design, can_cut_power=True)
        if plan.group.endswith("packs"):
            # each file one draw of a spread wider than the 4-series preset's, within the
            # firmware's cell count and capacity (build_config raises InputError if not)
            assert design.pack.capacity_spread > 0.02 and design.pack.soc_spread > 0.01
            packs.setdefault(plan.group, set()).add(design.name)
            cfg = build_config(design)
            assert cfg["n_cells"] == design.n_series in (8, 16), design.name
        m, sensors = scenario.mismatch, scenario.sensors
        aged = plan.scenario.endswith("aged-80.toml")
        assert (
            -20.0 <= m.ocv_charge_offset_mV <= 20.0 and -20.0 <= m.ocv_discharge_offset_mV <= 20.0
        )
        assert 0.5 <= m.hysteresis_rate_factor <= 2.0 and 0.7 <= m.resistance_factor <= 2.0
        assert (m.capacity_factor == 1.0) if aged else (0.8 <= m.capacity_factor < 1.0)
        assert m.hysteresis_rate_factor != 1.0 and m.resistance_factor != 1.0
        assert sensors.current_offset_mA == 7.0 and sensors.current_gain_ppm == 5000.0
        gap_moved += abs(m.ocv_charge_offset_mV - m.ocv_discharge_offset_mV) > 5.0
        drawn = (m.ocv_charge_offset_mV, m.ocv_discharge_offset_mV, m.hysteresis_rate_factor)
        cells.setdefault(plan.axes["seed"], set()).add(drawn)
    assert len(cells) == 8 + 4 + 2 + 3
    assert all(len(drawn) == 1 for drawn in cells.values()), cells
    assert len({next(iter(drawn)) for drawn in cells.values()}) == 8 + 4 + 2 + 3
    assert {group: len(names) for group, names in packs.items()} == {
        "8-series packs": 2,
        "16-series 20 Ah packs": 2,
    }
    assert gap_moved >= len(plans) // 2, gap_moved
    # the sample-period group: each period its own run of the same cell, the file's own
    # period replaced (2 s in every robustness scenario)
    periods = [p for p in plans if p.group == "sample periods"]
    assert {load_scenario(bundled(tmp_path, p)).sample_period_s for p in periods} == {
        1.0,
        5.0,
        10.0,
    }
    probes = {p.scenario for p in plans if p.group == "probes and corners"}
    assert len(probes) == 20
    assert all(s.startswith(("probes/", "corners/")) for s in probes)


def test_the_sensor_bias_campaign_reaches_the_firmwares_sensor_bounds_and_twice_them(
    tmp_path: Path,
) -> None:
    """The sensor-bias probe: 7 scenarios x 9 biases x 2 starts, each bundle loadable on its
    own; every cell channel or every probe off by the bound the BMS is configured with
    (v_sense_mV, t_sense_ddegC) and by twice it, each way, so a change of either bound
    that the campaign does not follow fails here."""
    plans = expand(load_spec(SENSOR_BIAS))
    assert len(plans) == 126
    cell_biases: set[float] = set()
    temp_biases: set[float] = set()
    v_sense_mV = t_sense_degC = None
    for plan in plans:
        scenario = load_scenario(bundled(tmp_path, plan))
        design = resolve_design(scenario)
        check_scenario(scenario, design, can_cut_power=True)
        cfg = build_config(design)
        v_sense_mV, t_sense_degC = cfg["v_sense_mV"], cfg["t_sense_ddegC"] / 10
        s = scenario.sensors
        assert s.cell_bias_mV == 0.0 or s.temp_bias_degC == 0.0  # one error at a time
        cell_biases.add(s.cell_bias_mV)
        temp_biases.add(s.temp_bias_degC)
    assert v_sense_mV and t_sense_degC
    assert cell_biases == {0.0} | {k * v_sense_mV for k in (-2, -1, 1, 2)}
    assert temp_biases == {0.0} | {k * t_sense_degC for k in (-2, -1, 1, 2)}

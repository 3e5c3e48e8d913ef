"""`sisnbms design`: a cell design's derived quantities and its claims check.

A report, so it exits 0 even when claims are violated; 2 on a bad cell file.
"""

from __future__ import annotations

import argparse
from typing import Any

from cellmodel import DEFAULT_CELL, load_cell
from cellmodel.claims import check_claims
from cellmodel.design import CellDesign, derived
from host.cli.output import emit, emit_json

_DERIVED_LABELS = (
    ("anode_areal_mAh_cm2", "anode areal capacity", "mAh/cm2", "{:.2f}"),
    ("cathode_areal_mAh_cm2", "cathode areal capacity", "mAh/cm2", "{:.2f}"),
    ("np_ratio", "N/P ratio", "", "{:.3f}"),
    ("cn_dn_mAh_cm3", "C_N x D_N", "mAh/cm3", "{:,.0f}"),
    ("cp_dp_mAh_cm3", "C_P x D_P", "mAh/cm3", "{:,.0f}"),
    ("volumetric_ratio", "(C_N x D_N)/(C_P x D_P)", "", "{:.2f}"),
    ("capacity_Ah", "cell capacity", "Ah", "{:.3f}"),
    ("anode_mass_g", "anode active-layer mass", "g", "{:.3f}"),
    ("anode_utilization_at_full_mAh_g", "anode utilization at full", "mAh/g", "{:,.0f}"),
    ("mean_discharge_V", "mean discharge voltage", "V", "{:.3f}"),
    ("energy_Wh", "cell energy", "Wh", "{:.2f}"),
    ("pack_energy_Wh", "pack energy", "Wh", "{:.2f}"),
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "design",
        help="show a cell design's derived quantities and check it against claims 1-13",
        description="Derived design quantities and the claims check of a cell file.",
    )
    p.add_argument(
        "--cell",
        default=DEFAULT_CELL,
        metavar="NAME_OR_FILE",
        help=f"preset name or cell TOML file (default {DEFAULT_CELL})",
    )
    p.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    p.set_defaults(func=run)


def report(design: CellDesign) -> dict[str, Any]:
    return {
        "cell": design.name,
        "source": design.source,
        "n_series": design.n_series,
        "derived": derived(design),
        "aging": {
            "capacity_retention": design.aging.capacity_retention,
            "resistance_growth": design.aging.resistance_growth,
        },
        "claims": {str(n): r.as_dict() for n, r in check_claims(design).items()},
    }


def run(args: argparse.Namespace) -> int:
    design = load_cell(args.cell, "--cell", args.cell)
    rep = report(design)
    if args.json:
        emit_json(rep)
    else:
        emit(_table(design, rep))
    return 0


def _table(design: CellDesign, rep: dict[str, Any]) -> str:
    lines = [f"cell {design.name} ({design.source})"]
    if design.description:
        lines.append(f"  {design.description}")
    lines.append(f"  {design.n_series} cell(s) in series\n")
    d = rep["derived"]
    for key, label, unit, fmt in _DERIVED_LABELS:
        lines.append(f"  {label:<28} {fmt.format(d[key]):>10} {unit}")
    aging = design.aging
    if aging.capacity_retention < 1.0 or aging.resistance_growth > 1.0:
        lines.append(
            f"\n  simulated cell aged: {aging.capacity_retention:.0%} of the design capacity, "
            f"resistance x{aging.resistance_growth:g}\n  (the design above and the BMS "
            "configuration made from it are the fresh cell's)"
        )
    lines.append("\n  claim  status          detail")
    for n, r in rep["claims"].items():
        lines.append(f"  {n:>5}  {r['status']:<15} {r['detail']}")
    counts = {
        s: sum(1 for r in rep["claims"].values() if r["status"] == s)
        for s in ("satisfied", "violated", "not_applicable")
    }
    lines.append(
        f"\n  {counts['satisfied']} satisfied, {counts['violated']} violated, "
        f"{counts['not_applicable']} not applicable"
    )
    return "\n".join(lines)

"""Check a cell design against claims 1-13 (shared reference claims.txt).

Each claim is "satisfied", "violated" or "not_applicable", with a detail string
listing every limitation and the design's number for it. A dependent claim
carries all of its parent's limitations, so when the parent is not satisfied
the dependent claim cannot be evaluated on its own: it is reported
not_applicable ("depends on claim N, violated"), and its own limitation is
still listed in the detail. Claim 5 ("silicon as a major component") counts
silicon as major when it has the largest mass fraction of the alloy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cellmodel.design import CellDesign

SATISFIED = "satisfied"
VIOLATED = "violated"
NOT_APPLICABLE = "not_applicable"

PARENT = {2: 1, 3: 1, 4: 3, 6: 5, 7: 5, 8: 5, 9: 5, 10: 5, 11: 5, 12: 5, 13: 12}

_PVA_NAMES = {"pva", "polyvinylalcohol", "poly(vinylalcohol)", "pvoh", "pval"}


@dataclass(frozen=True)
class ClaimResult:
    number: int
    status: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class _Test:
    ok: bool
    text: str


def _shown(value: float, digits: int, *bounds: float) -> str:
    """value to `digits` significant digits, or more where fewer would print a bound it is
    not (C_N 2,200.4 against 2,200 must not read "2,200 ... NO")."""
    text = f"{value:,.{digits}g}"
    for more in range(digits + 1, 13):
        if not any(value != b and float(text.replace(",", "")) == b for b in bounds):
            break
        text = f"{value:,.{more}g}"
    return text


def _in_range(label: str, value: float, lo: float, hi: float, unit: str) -> _Test:
    ok = lo <= value <= hi
    shown = _shown(value, 4, lo, hi)
    return _Test(ok, f"{label} {shown} {unit} in {lo:,g}-{hi:,g} {unit}: {_yn(ok)}")


def _at_most(label: str, value: float, hi: float) -> _Test:
    ok = value <= hi
    return _Test(ok, f"{label} {_shown(value, 3, hi)} <= {hi:g}: {_yn(ok)}")


def _yn(ok: bool) -> str:
    return "yes" if ok else "NO"


def _composition_text(d: CellDesign) -> str:
    return ", ".join(f"{el} {frac * 100:g} %" for el, frac in d.anode.composition.items())


def _si_sn_alloy(d: CellDesign) -> _Test:
    comp = d.anode.composition
    ok = comp.get("Si", 0.0) > 0 and comp.get("Sn", 0.0) > 0
    return _Test(ok, f"alloy of silicon and tin ({_composition_text(d)}): {_yn(ok)}")


def _si_major(d: CellDesign) -> _Test:
    comp = d.anode.composition
    si = comp.get("Si", 0.0)
    ok = si > 0 and all(si >= x for x in comp.values())
    return _Test(ok, f"silicon the major component ({_composition_text(d)}): {_yn(ok)}")


def _layer_parts(d: CellDesign) -> _Test:
    binder = ", ".join(d.anode.binder) or "none"
    additive = ", ".join(d.anode.conductive_additive) or "none"
    ok = bool(d.anode.binder) and bool(d.anode.conductive_additive)
    return _Test(
        ok, f"active material + binder ({binder}) + conductive additive ({additive}): {_yn(ok)}"
    )


def _binder_names(binder: str) -> set[str]:
    """The name as written, and without or within its parentheses ("Polyvinyl alcohol
    (PVA)": also "polyvinylalcohol" and "pva"), without case, spaces, hyphens or '_'."""
    b = binder.lower()
    names = {b, re.sub(r"\([^()]*\)", "", b), *re.findall(r"\(([^()]*)\)", b)}
    return {re.sub(r"[\s_-]", "", n) for n in names}


def _pva(d: CellDesign) -> _Test:
    ok = any(_binder_names(b) & _PVA_NAMES for b in d.anode.binder)
    return _Test(
        ok, f"polyvinyl alcohol among binders ({', '.join(d.anode.binder) or 'none'}): {_yn(ok)}"
    )


def _own_tests(d: CellDesign) -> dict[int, list[_Test]]:
    a, k = d.anode, d.cathode
    diameter = _in_range("particle diameter", a.particle_diameter_um, 0.05, 2.0, "um")
    c_n = _in_range("C_N", a.capacity_mAh_g, 1000, 2200, "mAh/g")
    d_n = _in_range("D_N", a.density_g_cm3, 0.9, 1.5, "g/cm3")
    anode_thick = _in_range("anode layer thickness", a.thickness_um, 10, 50, "um")
    ratio = (a.capacity_mAh_g * a.density_g_cm3) / (k.capacity_mAh_g * k.density_g_cm3)
    return {
        1: [_si_sn_alloy(d), diameter, c_n, d_n],
        2: [anode_thick],
        3: [_layer_parts(d)],
        4: [_pva(d)],
        5: [
            _si_major(d),
            _at_most("(C_N x D_N)/(C_P x D_P)", ratio, 8.0),
            _in_range("C_N x D_N", a.capacity_mAh_g * a.density_g_cm3, 1200, 2500, "mAh/cm3"),
            c_n,
            d_n,
        ],
        6: [diameter],
        7: [_si_sn_alloy(d)],
        8: [anode_thick],
        9: [_in_range("cathode layer thickness", k.thickness_um, 50, 150, "um")],
        10: [_in_range("anode collector", a.collector_thickness_um, 6, 30, "um")],
        11: [_in_range("cathode collector", k.collector_thickness_um, 6, 30, "um")],
        12: [_layer_parts(d)],
        13: [_pva(d)],
    }


def check_claims(design: CellDesign) -> dict[int, ClaimResult]:
    """Claims 1..13 in order, each with its status and the numbers that decided it."""
    tests = _own_tests(design)
    results: dict[int, ClaimResult] = {}
    for number in range(1, 14):
        own = tests[number]
        own_ok = all(t.ok for t in own)
        detail = "; ".join(t.text for t in own)
        parent = PARENT.get(number)
        if parent is not None and results[parent].status != SATISFIED:
            why = "violated" if results[parent].status == VIOLATED else "not applicable"
            results[number] = ClaimResult(
                number, NOT_APPLICABLE, f"depends on claim {parent}, {why}; {detail}"
            )
            continue
        status = SATISFIED if own_ok else VIOLATED
        prefix = f"with claim {parent}; " if parent is not None else ""
        results[number] = ClaimResult(number, status, prefix + detail)
    return results

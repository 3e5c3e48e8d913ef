"""Si-Sn anode cell model: design and claims check, equivalent circuit, experiments.

Pure numpy; no I/O beyond reading cell, profile and (in bdf) output files.
Current is positive on discharge everywhere in this package.
"""

from cellmodel.cellfile import DEFAULT_CELL, list_cells, load_cell, resolve_cell
from cellmodel.design import CellDesign
from cellmodel.errors import InputError
from cellmodel.pack import PackModel, ProfileRun, StepResult

__all__ = [
    "DEFAULT_CELL",
    "CellDesign",
    "InputError",
    "PackModel",
    "ProfileRun",
    "StepResult",
    "list_cells",
    "load_cell",
    "resolve_cell",
]

"""The closed loop: scenario -> cell model -> sensors -> firmware -> switches -> cell model.

`run_scenario` is the entry point for `sisnbms emulate` and `sisnbms hil`.
"""

from host.emulator.run import RunResult, check_run, resolve_design, run_scenario

__all__ = ["RunResult", "check_run", "resolve_design", "run_scenario"]

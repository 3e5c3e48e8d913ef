"""The one exception for bad user input (files, fields, text), shared by cellmodel and host,
and its kind for a step as written."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(ValueError):
    """Bad input: names where it came from, which field, and why.

    The CLI maps it to exit code 2.
    """

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source = str(source)
        self.field = field
        self.reason = reason
        super().__init__(f"{self.source}: {field}: {reason}")


class StepError(InputError):
    """Bad input in an experiment step as written: the profile its `Run` names missing or
    no file, its period out of range, more periods than a step may have. Not an error
    inside a file the step reads (a profile's rows name that file: a plain InputError).

    cellmodel raises it with the source and field its caller gave (an experiment's
    `--experiment`, `step 3`); a caller that names the step its own way (a scenario: its
    file, the step's field and text, host.scenarios.steps.check_steps) takes `reason`.
    """


def unknown_key(key: str, known: Iterable[str], what: str = "key") -> str:
    """The reason a key no table takes is refused, in every kind of file alike: the known
    key it is nearest to when one is near (a typo: `sead`, `capacity_facter`), then all of
    them, in the order given."""
    names = list(known)
    by_lower = {n.lower(): n for n in names}
    near = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    hint = f"did you mean {by_lower[near[0]]!r}? " if near else ""
    return f"unknown {what}; {hint}known: {', '.join(names)}"

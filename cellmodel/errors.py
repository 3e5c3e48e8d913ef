"""The one exception for bad user input (files, fields, text), shared by cellmodel and host,
and its kind for a step as written."""

from __future__ import annotations


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
